#include "node/node.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>

#include "base/files.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/service.h"
#include "bundle/bundle.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "dashboard/dashboard.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "http/static_files.h"
#include "http/url.h"
#include "json/json.h"
#include "node/admin_routes.h"
#include "node/appdata_service.h"
#include "node/network_service.h"
#include "node/reachability.h"
#include "plugins/plugin_host.h"
#include "protocol/event.h"
#include "protocol/invitation.h"
#include "release/manager.h"
#include "store/blob_store.h"
#include "store/key_file.h"
#include "store/store.h"
#include "transport/transport.h"
#include "tunnel/relay.h"
#include "tunnel/tunnel.h"

namespace peerstack::node {
namespace {

// Routes that exist only on the admin listener. The public listener answers them 404 so the
// SPA fallback cannot make them look like pages (and nothing about them leaks).
constexpr const char* kAdminOnlyPaths[] = {"/status",      "/sync",     "/join",    "/leave",
                                           "/evict",       "/releases", "/recover", "/publishers",
                                           "/invitations", "/metrics"};
// (The dashboard's /login and /dashboard/... are not among them: on the public listener those
// are the app's own paths; the dashboard is never there.)

}  // namespace

struct Node::Impl {
  Config config;
  SystemClock clock;
  std::string version;
  int lock_fd = -1;
  std::unique_ptr<crypto::SigningKey> key;
  std::string node_id;
  std::string public_key_hex;
  std::string admin_token;
  std::shared_ptr<store::Store> store;
  std::unique_ptr<plugins::PluginHost> plugin_host;
  std::unique_ptr<transport::Transport> transport;  // outgoing peer traffic, one event loop
  std::unique_ptr<NetworkService> network;
  std::shared_ptr<appdata::Replica> replica;  // replicated collections (plugins' app data)
  std::unique_ptr<transport::Transport> app_transport;  // app data's own peer traffic
  std::unique_ptr<AppDataService> appdata;
  std::unique_ptr<Reachability> reachability;  // /p2p/identity, /p2p/reach, witnesses, relays
  std::unique_ptr<release::ReleaseManager> releases;  // what runs; fetching, switching, reports
  std::unique_ptr<dashboard::Dashboard> dashboard;    // the operator's page and its sessions
  // Relayed connections are handed to the public server from the relay provider's threads,
  // which may outlive the server by a few seconds at shutdown: they go through this gate.
  struct AdoptGate {
    std::mutex mu;
    http::Server* server = nullptr;
  };
  std::shared_ptr<AdoptGate> adopt_gate = std::make_shared<AdoptGate>();
  std::unique_ptr<tunnel::Manager> tunnels;
  std::unique_ptr<tunnel::RelayServer> relay;
  mutable std::mutex url_mu;
  std::string tunnel_url;  // the URL a provider made us reachable at (empty: none yet)
  std::string tunnel_via;  // and which provider
  // The frontend of the release that runs (std::atomic_load/store): replaced whole on a switch.
  std::shared_ptr<const http::StaticFiles> front;

  std::shared_ptr<const http::StaticFiles> Front() const { return std::atomic_load(&front); }
  void SetFront(std::shared_ptr<const http::StaticFiles> f) {
    std::atomic_store(&front, std::move(f));
  }
  std::shared_ptr<const http::StaticFiles> MakeFront(const std::string& root) {
    http::StaticFilesOptions so;
    so.root = root;
    so.clock = &clock;
    return std::make_shared<const http::StaticFiles>(std::move(so));
  }
  http::Response ServeFront(const http::Request& r) const {
    auto f = Front();
    if (!f) {
      http::Response resp =
          http::JsonError(503, "installing", "this node is installing its release; retry shortly");
      resp.set("retry-after", "1");
      return resp;
    }
    return f->Handle(r);
  }
  http::Router public_router;
  http::Router admin_router;
  http::ServerPtr public_server;
  http::ServerPtr admin_server;
  int64_t started_ms = 0;  // clock.SteadyMs() at Start
  int64_t started_wall_ms = 0;
  std::atomic<bool> network_started{false};
  std::atomic<bool> admin_ready{false};  // every part wired: the admin routes may run

  std::string Path(const char* name) const { return config.data_dir + "/" + name; }

  std::string SelfUrl() const {
    {
      std::lock_guard<std::mutex> lock(url_mu);
      if (!tunnel_url.empty()) return tunnel_url;
    }
    return LocalUrl();
  }

  // The URL of the public listener as configured (before any tunnel).
  std::string LocalUrl() const {
    if (!config.public_url.empty()) return config.public_url;
    const uint16_t port = public_server ? public_server->port() : config.port;
    std::string host = config.bind;
    if (host == "0.0.0.0" || host == "::" || host.empty()) host = "127.0.0.1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(port);
  }

  Status LockDataDir() {
    const std::string path = Path(kLockFile);
    lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) return Status::Error("io_error", "cannot open " + path);
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return Status::Error("data_dir_busy",
                           "another node is running with data dir " + config.data_dir);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd, 0) == 0) (void)!::write(lock_fd, pid.data(), pid.size());
    return Status::Ok();
  }

  json::Value StatusJson() const {
    const int64_t uptime_ms = clock.SteadyMs() - started_ms;
    auto stats_json = [](const http::ServerPtr& s) -> json::Value {
      if (!s) return nullptr;
      const http::ServerStats st = s->stats();
      return json::Object{{"connections", st.connections},
                          {"open_connections", st.open_connections},
                          {"rejected", st.rejected},
                          {"requests", st.requests},
                          {"timeouts", st.timeouts}};
    };
    return json::Object{
        {"node", json::Object{{"id", node_id},
                              {"public_key", public_key_hex},
                              {"url", SelfUrl()},
                              {"version", version},
                              {"started_at", started_wall_ms},
                              {"uptime_ms", uptime_ms}}},
        {"network", network->StatusJson()},
        {"ports", json::Object{{"public", public_server ? public_server->port() : 0},
                               {"admin", admin_server ? admin_server->port() : 0}}},
        {"listeners",
         json::Object{{"public", stats_json(public_server)}, {"admin", stats_json(admin_server)}}},
        {"downloads", json::Object{{"in_flight", static_cast<int64_t>(downloads.load())},
                                   {"limit", static_cast<int64_t>(kMaxDownloads)}}},
        {"plugins", plugin_host ? plugin_host->StatusJson() : json::Value(nullptr)},
        {"appdata", appdata ? appdata->StatusJson() : json::Value(nullptr)},
        {"release", releases ? releases->StatusJson() : json::Value(nullptr)},
        {"dev", config.dev},
        {"tunnel", TunnelJson()},
        {"transport", TransportJson()},
        {"relay", relay ? json::Value(json::Object{{"port", relay->port()},
                                                   {"relayed", relay->relayed_nodes()}})
                        : json::Value(nullptr)},
    };
  }

  // GET /metrics (docs/operations.md, "Metrics"): each module writes its own figures.
  std::string MetricsText() const {
    metrics::Writer w;
    w.Gauge("peerstack_build_info", "The node's version (the value is always 1).", 1,
            {{"version", version}});
    w.Gauge("peerstack_uptime_seconds", "Seconds since the node started.",
            static_cast<double>(clock.SteadyMs() - started_ms) / 1000);
    const std::pair<const char*, const http::ServerPtr*> listeners[] = {{"public", &public_server},
                                                                        {"admin", &admin_server}};
    w.Family("peerstack_http_requests_total", "counter",
             "HTTP answers sent, by listener and status class.");
    for (const auto& [name, server] : listeners) {
      if (!*server) continue;
      const http::ServerStats st = (*server)->stats();
      for (size_t c = 1; c <= 5; ++c) {
        w.Sample("peerstack_http_requests_total",
                 {{"listener", name}, {"code", std::to_string(c) + "xx"}},
                 static_cast<double>(st.by_class[c]));
      }
    }
    w.Family("peerstack_http_open_connections", "gauge", "Connections open now, by listener.");
    for (const auto& [name, server] : listeners) {
      if (*server) {
        w.Sample("peerstack_http_open_connections", {{"listener", name}},
                 static_cast<double>((*server)->stats().open_connections));
      }
    }
    network->WriteMetrics(w);
    w.Gauge("peerstack_release_running", "The release this node runs (0: its own files).",
            static_cast<double>(releases ? releases->running_version().value_or(0) : 0));
    w.Family("peerstack_tunnel_up", "gauge",
             "1 for the provider this node is reached through, 0 for the others configured.");
    const tunnel::State ts = tunnels ? tunnels->state() : tunnel::State{};
    for (const std::string& p : SplitList(config.tunnel)) {
      w.Sample("peerstack_tunnel_up", {{"provider", p}}, ts.provider == p ? 1 : 0);
    }
    if (relay) {
      w.Counter("peerstack_relay_bytes_total",
                "Bytes this node relayed for members behind NAT, both directions.",
                static_cast<double>(relay->relayed_bytes()));
      w.Gauge("peerstack_relay_nodes", "Members this node relays for now.",
              static_cast<double>(relay->relayed_nodes()));
    }
    {
      const transport::TransportStats st = transport->stats();
      const uint64_t sent = st.totals.sent, failed = st.totals.failed, dropped = st.totals.dropped;
      w.Family("peerstack_peer_messages_total", "counter",
               "Messages to peers, by outcome (dropped: waited too long or the queue was full).");
      w.Sample("peerstack_peer_messages_total", {{"outcome", "sent"}}, static_cast<double>(sent));
      w.Sample("peerstack_peer_messages_total", {{"outcome", "failed"}},
               static_cast<double>(failed));
      w.Sample("peerstack_peer_messages_total", {{"outcome", "dropped"}},
               static_cast<double>(dropped));
    }
    if (plugin_host) plugin_host->WriteMetrics(w);
    metrics::WriteProcess(w);
    return w.text();
  }

  // Outgoing peer traffic: per peer what waits, what is in flight, and how it went.
  json::Value TransportJson() const {
    const transport::TransportStats st = transport->stats();
    json::Array peers;
    for (const transport::PeerStats& p : st.peers) {
      peers.push_back(json::Object{{"peer", p.peer},
                                   {"queued", p.queued},
                                   {"in_flight", p.in_flight},
                                   {"connections", p.connections},
                                   {"backing_off", p.backing_off},
                                   {"sent", p.counters.sent},
                                   {"failed", p.counters.failed},
                                   {"dropped", p.counters.dropped},
                                   {"last_error", p.last_error},
                                   {"rtt_ms", p.rtt_ms}});
    }
    return json::Object{{"connections_opened", st.connections_opened},
                        {"exchanges", st.exchanges},
                        {"peers", std::move(peers)}};
  }

  json::Value TunnelJson() const {
    if (!tunnels) return json::Object{{"provider", "none"}, {"url", LocalUrl()}};
    const tunnel::State st = tunnels->state();
    json::Array failures;
    for (const auto& [p, why] : st.failures) {
      failures.push_back(json::Object{{"provider", p}, {"error", why}});
    }
    return json::Object{{"provider", st.provider.empty() ? "unreachable" : st.provider},
                        {"url", st.url},
                        {"failures", std::move(failures)}};
  }

  void WireRoutes() {
    // The /nodes contract, and whether this node offers its /download now (the public page
    // shows the link only then; building the file is left to the first real download).
    auto nodes = [this](const http::Request&) {
      json::Value v = network->NodesJson();
      v.as_object().emplace("download", releases->running_version().has_value());
      return http::JsonResponse(200, json::Serialize(v));
    };
    public_router.Add("GET", "/nodes", nodes);
    const http::Handler not_found = [](const http::Request&) {
      return http::JsonError(404, "not_found", "no such route");
    };
    for (const char* path : kAdminOnlyPaths) {
      public_router.Add("*", path, not_found);
      public_router.AddPrefix("*", std::string(path) + "/", not_found);
    }
    public_router.AddPrefix("*", "/api/", [this](const http::Request& r) {
      return plugin_host->Handle(r, /*admin=*/false);
    });
    public_router.Add("GET", "/p2p/identity",
                      [this](const http::Request& r) { return reachability->HandleIdentity(r); });
    public_router.Add("GET", "/p2p/reach",
                      [this](const http::Request& r) { return reachability->HandleReach(r); });
    public_router.AddPrefix("*", "/p2p/blob/",
                            [this](const http::Request& r) { return releases->HandleBlob(r); });
    public_router.AddPrefix("*", "/p2p/",
                            [this](const http::Request& r) { return network->HandleMessage(r); });
    public_router.Add("GET", "/download", [this](const http::Request& r) { return Download(r); });
    public_router.SetFallback([this](const http::Request& r) { return ServeFront(r); });

    admin_router.Add("GET", "/status", [this](const http::Request&) {
      return http::JsonResponse(200, json::Serialize(StatusJson()));
    });
    admin_router.Add("GET", "/nodes", nodes);
    // A one-time login code for the dashboard (`peerstack dashboard` prints the link).
    admin_router.Add("POST", "/dashboard/codes", [this](const http::Request&) {
      const std::string code = dashboard->NewCode();
      return http::JsonResponse(
          201, json::Serialize(
                   json::Object{{"code", code},
                                {"url", "http://127.0.0.1:" + std::to_string(admin_server->port()) +
                                            "/login?code=" + code}}));
    });
    admin_router.Add("GET", "/metrics", [this](const http::Request&) {
      http::Response resp;
      resp.body = MetricsText();
      resp.set("content-type", "text/plain; version=0.0.4; charset=utf-8");
      return resp;
    });
    AddNetworkAdminRoutes(admin_router, *network, *releases);
    admin_router.AddPrefix("*", "/api/", [this](const http::Request& r) {
      return plugin_host->Handle(r, /*admin=*/true);
    });
  }

  // Builds the --tunnel providers and picks the first that makes this node reachable.
  void StartTunnels() {
    tunnel::ManagerOptions mo;
    for (const std::string& name : SplitList(config.tunnel)) {
      if (name == "direct") {
        mo.providers.push_back(tunnel::MakeDirectProvider(LocalUrl()));
      } else if (name == "upnp") {
        mo.providers.push_back(tunnel::MakeUpnpProvider(config.bind, public_server->port(),
                                                        std::chrono::seconds(config.upnp_lease_s)));
      } else if (name == "command") {
        if (config.tunnel_command.empty()) {
          PS_LOG(kWarn, "tunnel") << "`command` needs --tunnel-command; skipped";
          continue;
        }
        mo.providers.push_back(tunnel::MakeCommandProvider(
            config.tunnel_command, config.tunnel_url_pattern, public_server->port()));
      } else if (name == "relay") {
        // --relay-via first, then the relays the join URL's node and the members run.
        auto candidates = [this, fixed = SplitList(config.relay_via)] {
          std::vector<std::string> all = fixed;
          for (std::string& r : reachability->FindRelays()) {
            if (std::find(all.begin(), all.end(), r) == all.end()) all.push_back(std::move(r));
          }
          return all;
        };
        mo.providers.push_back(
            tunnel::MakeRelayProvider(candidates, *key, [gate = adopt_gate](int fd) {
              std::lock_guard<std::mutex> lock(gate->mu);
              if (!gate->server) {
                ::close(fd);
                return false;
              }
              return gate->server->Adopt(fd);
            }));
      }
    }
    if (mo.providers.empty()) return;
    mo.verify = [this](const std::string& url) { return reachability->VerifyIdentity(url); };
    mo.on_change = [this](const std::string& url, const std::string& via) {
      {
        std::lock_guard<std::mutex> lock(url_mu);
        tunnel_url = url;
        tunnel_via = via == "direct" ? "" : via;  // the default: no need to say it
      }
      if (plugin_host) plugin_host->SetPublicUrl(url);
      if (network_started) network->AnnounceUrl(url, via == "direct" ? "" : via);
    };
    tunnels = std::make_unique<tunnel::Manager>(std::move(mo));
    tunnels->Start();
  }

  // GET /download: this node's runtime with the app it runs and a network card appended
  // (core/bundle/bundle.h), built once per release into DATA_DIR/downloads/ (temp file and
  // rename: never half written) and kept in memory while that release runs; served whole or
  // by byte range (a broken download resumes; the ETag is the release, so a range of another
  // release's file is never spliced on). kMaxDownloads are in flight at once (a slot is held
  // until the last byte is written, Response::hold), then 429 with Retry-After.
  static constexpr int kMaxDownloads = 8;
  std::mutex download_mu;
  std::atomic<int> downloads{0};
  std::string download_release;                       // under download_mu
  std::shared_ptr<const std::string> download_bytes;  // under download_mu
  // ?invite= files, by invitation hash (a resumed download gets the same bytes); the last few.
  std::map<std::string, std::shared_ptr<const std::string>> invite_bytes;  // under download_mu
  Result<std::pair<std::string, std::shared_ptr<const std::string>>> Bundle() {
    auto app = releases->running();
    if (!app) return Status::Error("installing", "this node runs no release yet");
    std::lock_guard<std::mutex> lock(download_mu);
    if (download_bytes && download_release == app->id) return std::pair{app->id, download_bytes};
    const std::string path = Path("downloads") + "/" + app->id + ".run";
    if (!files::Exists(path)) {
      auto runtime = bundle::RuntimeOf("/proc/self/exe");
      if (!runtime) return runtime.status();
      auto card = network->Card(8);
      if (!card) return card.status();
      bundle::Contents c;
      c.card.network = card->network;
      c.card.genesis = card->genesis;
      c.card.publishers = card->publishers;
      c.card.threshold = card->threshold;
      c.card.bootstrap = card->bootstrap;
      if (app->id.rfind("local-", 0) != 0) {
        auto signed_release = network->SignedRelease(app->id);
        if (!signed_release) return signed_release.status();
        c.manifest = signed_release->first;
        c.signatures = signed_release->second;
      }
      store::BlobStore blobs(Path(kBlobsDir));
      for (const protocol::FileEntry& f : app->files) {
        auto bytes = blobs.Get(f.sha256, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
        if (!bytes) return bytes.status();
        c.files.emplace_back(f, std::move(bytes).value());
      }
      if (auto s = files::MakeDirs(Path("downloads")); !s.ok()) return s;
      if (auto s = files::WriteFileAtomic(path, bundle::Build(*runtime, c), 0755); !s.ok())
        return s;
      PS_LOG(kInfo, "node") << "built the download of "
                            << (app->version ? "release " + std::to_string(app->version)
                                             : std::string("release 0"));
    }
    auto bytes = files::ReadFile(path, static_cast<size_t>(bundle::kMaxBundleBytes));
    if (!bytes) return bytes.status();
    download_release = app->id;
    download_bytes = std::make_shared<const std::string>(std::move(bytes).value());
    invite_bytes.clear();
    return std::pair{app->id, download_bytes};
  }
  // The release's file with this invitation on its card, built from memory once per
  // invitation (kept for resumes; the four newest).
  Result<std::shared_ptr<const std::string>> InviteBundle(const std::string& release,
                                                          const std::string& plain,
                                                          const std::string& token,
                                                          const std::string& hash) {
    std::lock_guard<std::mutex> lock(download_mu);
    if (release != download_release)
      return Status::Error("installing", "the release changed; retry");
    if (auto it = invite_bytes.find(hash); it != invite_bytes.end()) return it->second;
    auto bytes = bundle::WithInvitation(plain, token);
    if (!bytes) return bytes.status();
    if (invite_bytes.size() >= 4) invite_bytes.erase(invite_bytes.begin());
    return invite_bytes[hash] = std::make_shared<const std::string>(std::move(bytes).value());
  }

  http::Response Download(const http::Request& r) {
    if (downloads.fetch_add(1) >= kMaxDownloads) {
      downloads.fetch_sub(1);
      return http::TooMany(std::to_string(kMaxDownloads) +
                           " downloads are being served; retry shortly");
    }
    // The slot: given back when the answer is written (the server keeps the response's hold),
    // or at once when no answer takes it.
    std::shared_ptr<void> slot(&downloads, [](std::atomic<int>* n) { n->fetch_sub(1); });
    auto b = Bundle();
    if (!b) {
      PS_LOG(kError, "node") << "cannot build the download: " << b.status().ToString();
      return http::JsonError(503, b.status().code(),
                             "cannot build the download: " + b.status().message());
    }
    std::shared_ptr<const std::string> bytes = b->second;
    std::string etag = "\"" + b->first + "\"";
    // ?invite=TOKEN: the same file with the invitation on its card, refused here with the
    // members' reason when it would not admit anyone now.
    std::string invite;
    if (http::QueryParam(r.query, "invite", &invite)) {
      auto inv = network->CheckInvitation(invite);
      if (!inv)
        return http::JsonError(inv.status().code() == "bad_invitation" ? 400 : 409,
                               inv.status().code(), inv.status().message());
      auto with = InviteBundle(b->first, *b->second, invite, inv->Hash());
      if (!with)
        return http::JsonError(503, with.status().code(),
                               "cannot build the download: " + with.status().message());
      bytes = *with;
      etag = "\"" + b->first + "-" + inv->Hash().substr(0, 16) + "\"";
    }
    http::Response resp = http::RangedBody(r, *bytes, etag, "application/octet-stream");
    resp.set("content-disposition", "attachment; filename=\"peerstack-" +
                                        bundle::Fingerprint(network->network_id()) + ".run\"");
    resp.hold = std::move(slot);
    return resp;
  }

  // The dashboard's files and login need nothing; every other route the bearer token, or the
  // dashboard's session cookie (and its CSRF token when the request changes state).
  // Until Start has wired every part (the admin listener serves first), the routes wait.
  http::Response AdminHandle(const http::Request& r) const {
    if (!admin_ready.load()) {
      http::Response resp = http::JsonError(503, "starting", "the node is starting; retry shortly");
      resp.set("retry-after", "1");
      return resp;
    }
    if (auto page = dashboard->Handle(r)) return std::move(*page);
    const std::string* auth = r.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const bool bearer =
        auth && auth->compare(0, kBearer.size(), kBearer) == 0 &&
        crypto::ConstantTimeEqual(std::string_view(*auth).substr(kBearer.size()), admin_token);
    // A session may not make login codes: only the token's holder hands out sessions.
    const auto access = bearer || r.path == "/dashboard/codes" ? dashboard::Dashboard::Access::kNone
                                                               : dashboard->Check(r);
    if (!bearer && access == dashboard::Dashboard::Access::kBadToken) {
      return http::JsonError(403, "bad_csrf",
                             "the dashboard's session token is missing or wrong: log in again");
    }
    if (!bearer && access != dashboard::Dashboard::Access::kGranted) {
      http::Response resp =
          http::JsonError(401, "unauthorized", "send Authorization: Bearer <DATA_DIR/admin.token>");
      resp.set("www-authenticate", "Bearer");
      return resp;
    }
    return admin_router.Handle(r);
  }
};

Result<std::unique_ptr<Node>> Node::Open(const Config& config, std::string version) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->version = std::move(version);
  if (auto s = files::MakeDirs(config.data_dir); !s.ok()) return s;
  if (auto s = impl->LockDataDir(); !s.ok()) return s;
  // A ports.json left by a killed node names ports that are not ours (yet): gone until this
  // node is ready to serve.
  ::unlink(impl->Path(kPortsFile).c_str());

  bool created = false;
  auto key = store::LoadOrCreateNodeKey(impl->Path(kKeyFile), &created);
  if (!key) return key.status();
  impl->key = std::make_unique<crypto::SigningKey>(std::move(key).value());
  const auto& pub = impl->key->public_key();
  impl->public_key_hex = crypto::HexEncode(pub.data(), pub.size());
  impl->node_id = protocol::NodeIdFor(pub);
  PS_LOG(kInfo, "node") << (created ? "created" : "loaded") << " node key, id " << impl->node_id;

  auto token = store::LoadOrCreateToken(impl->Path(kTokenFile));
  if (!token) return token.status();
  impl->admin_token = std::move(token).value();
  impl->dashboard = std::make_unique<dashboard::Dashboard>(&impl->clock);

  auto store = store::OpenSqliteStore(impl->Path(kStoreFile));
  if (!store) return store.status();
  impl->store = std::move(store).value();

  if (!files::Exists(config.front_dir)) {
    PS_LOG(kWarn, "node") << "frontend directory " << config.front_dir
                          << " does not exist; / will answer 404";
  }
  appdata::ReplicaOptions ao;
  ao.db_path = impl->Path(kStoreFile);
  ao.clock = &impl->clock;
  ao.key = std::make_unique<crypto::SigningKey>(*impl->key);
  ao.random = [] {
    uint64_t v = 0;
    crypto::RandomBytes(reinterpret_cast<uint8_t*>(&v), sizeof v);
    return v;
  };
  auto replica = appdata::Replica::Open(std::move(ao));
  if (!replica) return replica.status();
  impl->replica = std::move(replica).value();

  plugins::PluginHostOptions po;
  po.plugins_dir = config.plugins_dir;
  po.appdata = impl->replica;
  po.cache_dir = impl->Path(kBlobsDir);  // the release's blobs are loaded where they are
  po.store = impl->store;
  po.info = plugins::HostInfo{impl->node_id, "", impl->SelfUrl(), impl->version};
  po.timeout = std::chrono::milliseconds(config.plugin_timeout_ms);
  po.dev = config.dev;
  po.load_dir = config.dev;  // outside dev mode the release manager says what runs
  impl->plugin_host = std::make_unique<plugins::PluginHost>(std::move(po));
  impl->plugin_host->Start();
  if (config.dev) {
    PS_LOG(kWarn, "node") << "DEV MODE: serving unsigned local plugins and files from "
                          << config.plugins_dir << " and " << config.front_dir
                          << "; releases are not installed";
    impl->SetFront(impl->MakeFront(config.front_dir));
  }

  transport::TransportOptions to;
  to.clock = &impl->clock;
  to.ca_file = config.ca_file;
  impl->app_transport = std::make_unique<transport::Transport>(to);
  impl->transport = std::make_unique<transport::Transport>(std::move(to));

  Impl* d = impl.get();
  release::ReleaseManagerOptions rm;
  rm.clock = &impl->clock;
  rm.transport = impl->transport.get();
  rm.data_dir = config.data_dir;
  rm.plugins_dir = config.plugins_dir;
  rm.front_dir = config.front_dir;
  rm.self_key = impl->public_key_hex;
  rm.dev = config.dev;
  rm.view = [d] { return d->network->ReleaseView(); };
  rm.report = [d](const std::string& release, const std::string& status,
                  const std::string& reason) {
    return d->network->ReportRelease(release, status, reason);
  };
  rm.install = [d](const release::App& app) {
    if (auto s = d->plugin_host->Replace(app.plugins, app.best_effort); !s.ok()) return s;
    d->SetFront(d->MakeFront(app.front_root));
    return Status::Ok();
  };
  rm.code_changed = [d](const std::string& code) { d->network->SetCodeHash(code); };
  rm.plugin_calls = [d] { return d->plugin_host->Calls(); };
  if (const char* fault = std::getenv("PEERSTACK_FAULT_BLOBS"); fault && *fault) {
    rm.fault = fault;
    PS_LOG(kWarn, "node") << "test hook PEERSTACK_FAULT_BLOBS=" << fault
                          << ": this node serves blobs wrong on purpose";
  }
  impl->releases = std::make_unique<release::ReleaseManager>(std::move(rm));

  NetworkOptions no;
  no.clock = &impl->clock;
  for (const std::string& p : config.publishers) {
    if (p == "node") {
      no.publishers.push_back(impl->public_key_hex);
    } else if (p.size() == 64 && crypto::HexDecode(p)) {
      std::string lower = p;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      no.publishers.push_back(lower);
    } else {
      auto k = store::LoadKey(p);
      if (!k)
        return Status::Error("bad_flag", "--publisher-key " + p + ": " + k.status().message());
      no.publishers.push_back(crypto::HexEncode(k->public_key().data(), k->public_key().size()));
    }
  }
  no.publisher_threshold = config.publisher_threshold;
  no.admission = !config.admission.empty() ? config.admission : config.dev ? "open" : "invite";
  if (!config.invite.empty()) {
    auto inv = protocol::ParseInvitationToken(config.invite);
    if (!inv) return Status::Error("bad_flag", "--invite: " + inv.status().message());
    no.invitation = inv->ToJson();
  }
  no.on_change = [d] { d->releases->Poke(); };
  no.app_message = [d](const std::string& from_key, const std::string& url, const std::string& type,
                       const json::Value& body) {
    return d->appdata->Receive(from_key, url, type, body);
  };
  no.transport = impl->transport.get();
  no.key = std::make_unique<crypto::SigningKey>(*impl->key);
  no.store = impl->store;
  no.code_hash = impl->releases->initial_code();
  no.any_code = config.dev;
  no.join_url = config.join_url;
  no.checkpoint_every = static_cast<size_t>(config.checkpoint_every);
  no.checkpoint_quiet_ms = config.checkpoint_quiet_ms;
  no.version = impl->version;
  impl->network = std::make_unique<NetworkService>(std::move(no));
  AppDataOptions ado;
  ado.clock = &impl->clock;
  ado.replica = impl->replica;
  ado.network = impl->network.get();
  ado.transport = impl->app_transport.get();
  ado.key = impl->key.get();
  impl->appdata = std::make_unique<AppDataService>(std::move(ado));
  ReachabilityOptions ro;
  ro.key = impl->key.get();
  ro.clock = &impl->clock;
  ro.transport = impl->transport.get();
  ro.ca_file = config.ca_file;
  ro.peers = [network = impl->network.get()](size_t most, const PeerFilter& keep) {
    return network->Peers(most, keep);
  };
  ro.self_url = [network = impl->network.get()] { return network->self_url(); };
  impl->reachability = std::make_unique<Reachability>(std::move(ro));

  impl->WireRoutes();
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
  Stop();
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);
}

Status Node::Start() {
  Impl& d = *impl_;
  d.started_ms = d.clock.SteadyMs();
  d.started_wall_ms = d.clock.WallMs();

  http::ServerOptions admin;
  admin.name = "admin";
  admin.bind_address = "127.0.0.1";
  admin.port = d.config.admin_port;
  admin.threads = 1;
  admin.limits.max_connections = 64;
  admin.handler = [&d](const http::Request& r) { return d.AdminHandle(r); };
  admin.clock = &d.clock;
  d.admin_server = http::MakeServer(std::move(admin));
  if (auto s = d.admin_server->Start(); !s.ok()) return s;

  http::ServerOptions pub;
  pub.name = "public";
  pub.bind_address = d.config.bind;
  pub.port = d.config.port;
  pub.threads = d.config.threads;
  pub.handler = [&d](const http::Request& r) { return d.public_router.Handle(r); };
  pub.clock = &d.clock;
  d.public_server = http::MakeServer(std::move(pub));
  if (auto s = d.public_server->Start(); !s.ok()) {
    d.admin_server->Stop();
    return s;
  }

  {
    std::lock_guard<std::mutex> lock(d.adopt_gate->mu);
    d.adopt_gate->server = d.public_server.get();
  }
  if (d.config.relay_port >= 0) {
    tunnel::RelayServerOptions ro;
    ro.bind = d.config.bind;
    ro.port = static_cast<uint16_t>(d.config.relay_port);
    auto parsed = http::ParseUrl(d.LocalUrl());
    ro.public_host = parsed ? parsed->host : std::string("127.0.0.1");
    ro.is_member = [&d](const std::string& key) { return d.network->IsMemberKey(key); };
    ro.max_connections_per_node = d.config.relay_connections;
    ro.max_bytes_per_second_per_node = d.config.relay_rate;
    ro.clock = &d.clock;
    d.relay = std::make_unique<tunnel::RelayServer>(std::move(ro));
    if (auto s = d.relay->Start(); !s.ok()) return s;
    d.reachability->set_relay_port(d.relay->port());
  }
  d.transport->Start();
  d.StartTunnels();
  d.plugin_host->SetPublicUrl(d.SelfUrl());
  std::string via;
  {
    std::lock_guard<std::mutex> lock(d.url_mu);
    via = d.tunnel_via;
  }
  if (auto s = d.network->Start(d.SelfUrl(), via); !s.ok()) {
    d.public_server->Stop();
    d.admin_server->Stop();
    return s;
  }
  d.network_started = true;
  d.app_transport->Start();
  d.appdata->Start();
  if (auto s = d.releases->Start(); !s.ok()) {
    d.public_server->Stop();
    d.admin_server->Stop();
    return s;
  }
  if (d.tunnels && d.tunnels->state().provider.empty()) d.tunnels->CheckNow();  // relays known now
  d.plugin_host->SetNetworkId(d.network->network_id());
  const std::string ports = json::Serialize(
      json::Object{{"admin", d.admin_server->port()}, {"public", d.public_server->port()}});
  d.admin_ready = true;
  if (auto s = files::WriteFileAtomic(d.Path(kPortsFile), ports + "\n", 0644); !s.ok()) return s;
  PS_LOG(kInfo, "node") << "serving " << d.SelfUrl() << " (public " << d.config.bind << ":"
                        << d.public_server->port() << ", admin 127.0.0.1:" << d.admin_server->port()
                        << "), network "
                        << (d.network->network_id().empty() ? "(joining)"
                                                            : d.network->network_id());
  // Under systemd (Type=notify): ready once both listeners serve and ports.json says so.
  if (!service::Notify("READY=1\nSTATUS=serving " + d.SelfUrl() +
                       "\nMAINPID=" + std::to_string(::getpid()) + "\n")) {
    PS_LOG(kWarn, "node")
        << "could not tell the service manager (NOTIFY_SOCKET) that the node is ready";
  }
  return Status::Ok();
}

void Node::Stop() {
  Impl& d = *impl_;
  if (d.public_server) (void)service::Notify("STOPPING=1\n");
  {
    std::lock_guard<std::mutex> lock(d.adopt_gate->mu);
    d.adopt_gate->server = nullptr;
  }
  if (d.tunnels) d.tunnels->Stop();
  if (d.relay) d.relay->Stop();
  if (d.public_server) d.public_server->Stop();
  if (d.admin_server) d.admin_server->Stop();
  if (d.public_server || d.admin_server) ::unlink(d.Path(kPortsFile).c_str());
  d.public_server.reset();
  d.admin_server.reset();
  if (d.releases) d.releases->Stop();
  if (d.appdata) d.appdata->Stop();
  if (d.network) d.network->Stop();
  if (d.app_transport) d.app_transport->Stop();
  if (d.transport) d.transport->Stop();
  if (d.plugin_host) d.plugin_host->Stop();
  if (d.store) {
    if (auto s = d.store->Close(); !s.ok()) {
      PS_LOG(kError, "node") << "closing store: " << s.ToString();
    }
    d.store.reset();
  }
}

const std::string& Node::node_id() const { return impl_->node_id; }
std::string Node::network_id() const { return impl_->network->network_id(); }
uint16_t Node::public_port() const {
  return impl_->public_server ? impl_->public_server->port() : 0;
}
uint16_t Node::admin_port() const { return impl_->admin_server ? impl_->admin_server->port() : 0; }

void PrepareProcess() {
  ::signal(SIGPIPE, SIG_IGN);
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace peerstack::node
