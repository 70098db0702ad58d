#include "node/network_service.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "base/rate_limit.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "http/client.h"
#include "http/static_files.h"
#include "protocol/engine.h"
#include "protocol/envelope.h"

namespace peerstack::node {
namespace {

class KernelRandom final : public protocol::Random {
 public:
  uint64_t Next() override {
    uint64_t v = 0;
    crypto::RandomBytes(reinterpret_cast<uint8_t*>(&v), sizeof v);
    return v;
  }
};

// Messages the protocol repeats by itself (SWIM probes, anti-entropy rounds): the transport
// may drop them under pressure, and a newer sync to a peer replaces one still waiting.
bool Droppable(const std::string& type) {
  return type == "ping" || type == "pingreq" || type == "ack" || type == "sync";
}

bool ValidType(std::string_view t) {
  if (t.empty() || t.size() > 16) return false;
  return std::all_of(t.begin(), t.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

}  // namespace

std::string CodeHashOf(const json::Value& plugin_status) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (const json::Value* loaded = plugin_status.find("loaded"); loaded && loaded->is_array()) {
    for (const json::Value& p : loaded->as_array()) {
      const std::string* name = p.find_string("name");
      const std::string* sha = p.find_string("sha256");
      if (name && sha) pairs.emplace_back(*name, *sha);
    }
  }
  return protocol::CodeHashOf(std::move(pairs));
}

namespace {
void Shuffle(std::vector<std::string>* v) {
  for (size_t i = v->size(); i > 1; --i) {
    uint8_t r = 0;
    crypto::RandomBytes(&r, 1);
    std::swap((*v)[i - 1], (*v)[r % i]);
  }
}

// What a node answers at <url>/p2p/identity?nonce=N: its key, the nonce signed (checked by
// the caller, who knows which key it expects), and its relay port if it runs one.
struct Identity {
  std::string key, sig;
  int relay = 0;
};

http::ClientRequest IdentityRequest(const std::string& url, const std::string& nonce,
                                    const std::string& host_header, std::chrono::milliseconds timeout) {
  http::ClientRequest req;
  req.url = url + "/p2p/identity?nonce=" + nonce;
  if (!host_header.empty()) req.headers.push_back({"host", host_header});
  req.timeout = timeout;
  req.max_response_bytes = 4096;
  return req;
}

Result<Identity> ParseIdentity(const http::ClientResponse& r) {
  if (r.status != 200) return Status::Error("unreachable", "answered " + std::to_string(r.status));
  auto body = json::Parse(r.body, {4096, 4});
  if (!body) return Status::Error("not_a_node", "no identity at this URL");
  const std::string* key = body->find_string("key");
  const std::string* sig = body->find_string("sig");
  if (!key || !sig || key->size() != 64 || sig->size() != 128 || !crypto::HexDecode(*key) ||
      !crypto::HexDecode(*sig)) {
    return Status::Error("not_a_node", "no identity at this URL");
  }
  Identity id{*key, *sig};
  if (const int64_t* relay = body->find_int("relay"); relay && *relay > 0 && *relay < 65536) {
    id.relay = static_cast<int>(*relay);
  }
  return id;
}

// Blocking, for the tunnel manager's thread (its own checks): the same request and parse.
Result<Identity> FetchIdentity(const std::string& url, const std::string& nonce, const std::string& ca_file,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
  http::ClientRequest req = IdentityRequest(url, nonce, "", timeout);
  req.ca_file = ca_file;
  auto r = http::Fetch(req);
  if (!r) return Status::Error("unreachable", r.status().message());
  return ParseIdentity(*r);
}

// "a=1&b=2" -> value of `name`, percent-decoded; false when absent or malformed.
bool QueryParam(const std::string& query, std::string_view name, std::string* out) {
  size_t at = 0;
  while (at <= query.size()) {
    size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    const std::string_view part(query.data() + at, end - at);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=') {
      return http::PercentDecode(part.substr(name.size() + 1), out);
    }
    at = end + 1;
  }
  return false;
}

// The nonce of /p2p/identity and /p2p/reach: hex, 1-64 characters.
bool ValidNonce(const std::string& nonce) {
  return !nonce.empty() && nonce.size() <= 64 && crypto::HexDecode(nonce).has_value();
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]";
}

// 429 with Retry-After: what every limit of the peer protocol answers.
http::Response TooMany(std::string_view message) {
  http::Response r = http::JsonError(429, "busy", message);
  r.set("retry-after", "1");
  return r;
}

// Messages per second that one key may send, per type. Strangers (keys that are not members:
// joiners, and anyone) get a small budget per key and a total for all of them, because keys
// cost nothing to make; a join makes every member challenge a URL, so joins are the scarcest.
// Members get a larger budget per key: a sponsor forwards every join it handles, a node that
// catches up answers many syncs. (A node just admitted is still a stranger to members that
// have not heard of it yet: strangers get a little of every type.) Legitimate traffic stays far below: a member probes one peer
// and syncs with one peer a second.
struct TypeLimit {
  const char* type;
  int stranger_per_key;
  int stranger_total;
  int member_per_key;
};
constexpr TypeLimit kTypeLimits[] = {
    {"join", 2, 20, 100},       {"challenge", 10, 200, 100}, {"answer", 20, 200, 100},
    {"approval", 10, 200, 200}, {"accepted", 10, 200, 50},   {"refused", 10, 200, 50},
    {"event", 10, 200, 1000},   {"events", 10, 200, 200},    {"sync", 5, 100, 100},
    {"ping", 10, 200, 100},     {"pingreq", 10, 200, 100},   {"ack", 10, 200, 100},
    {"evict", 10, 200, 20},     {"evictapproval", 10, 200, 50},
};
// Per source address, all types, before a signature is checked (it costs CPU). Loopback is
// exempt: tunnelled and relayed requests all arrive from there.
constexpr int kPerAddressPerSecond = 500;

http::Response StatusError(int http_status, const Status& s) {
  return http::JsonError(http_status, s.code(), s.message());
}
}  // namespace

struct NetworkService::Impl {
  NetworkOptions o;
  std::string self_url;
  std::string self_via;
  std::string key_hex;
  KernelRandom random;
  crypto::VerifyCache verify_cache;

  mutable std::mutex mu;  // engine, last_seen, refusals
  std::unique_ptr<protocol::Engine> engine;
  std::vector<std::string> refusals;

  std::atomic<uint16_t> relay_port{0};
  std::mutex reach_mu;  // rate limits of /p2p/reach
  RateLimit reach_by_source{5, 1000, 1000000};
  RateLimit reach_by_url{1, 1000, 50};
  std::mutex limits_mu;  // the /p2p/<type> limits
  RateLimit by_address{kPerAddressPerSecond, 1000, 20000};
  struct Budgets {
    RateLimit strangers, members;
  };
  std::map<std::string, Budgets> by_type = [] {
    std::map<std::string, Budgets> m;
    for (const TypeLimit& t : kTypeLimits) {
      m.emplace(t.type, Budgets{RateLimit(t.stranger_per_key, 1000, t.stranger_total),
                                RateLimit(t.member_per_key, 1000, t.member_per_key * 256)});
    }
    return m;
  }();

  std::mutex tick_mu;  // the timer thread's wake-up
  std::condition_variable tick_cv;
  bool stopping = false;
  std::thread ticker;

  int64_t WallMs() const { return o.clock->WallMs(); }

  // The join node's URL, then up to `most` other members' URLs in random order; each kept
  // only if keep(url, via) (the join node's via reads "").
  std::vector<std::string> Peers(size_t most,
                                 const std::function<bool(const std::string& url, const std::string& via)>& keep) const {
    std::vector<std::string> members;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (const protocol::Ledger* l = engine ? engine->ledger() : nullptr) {
        for (const auto& m : l->state().members) {
          if (m.key != key_hex && !m.url.empty() && m.url != o.join_url && keep(m.url, m.via)) {
            members.push_back(m.url);
          }
        }
      }
    }
    Shuffle(&members);
    if (members.size() > most) members.resize(most);
    if (!o.join_url.empty() && keep(o.join_url, "")) members.insert(members.begin(), o.join_url);
    return members;
  }

  protocol::EngineConfig EngineConfigFor() {
    protocol::EngineConfig ec;
    ec.url = self_url;
    ec.via = self_via;
    ec.code_hash = o.code_hash;
    ec.sync_interval_ms = o.sync_interval_ms;
    ec.verify_cache = &verify_cache;
    return ec;
  }

  // With mu held: store what the engine accepted, then queue what it wants sent. An error
  // when the store refused (a full disk): nothing is sent, and the caller must not
  // acknowledge.
  Status Drive(protocol::Output& out) {
    if (!out.new_events.empty()) {
      store::WriteBatch batch;
      std::vector<std::string> added;  // keys of admitted members, for the log
      for (const std::string& w : out.new_events) {
        auto e = protocol::Decode(w);
        batch.events.push_back({protocol::HashOf(w), e ? e->kind : "unknown", w});
        if (e && e->kind == "member-added") {
          const std::string* key = e->body.find("request")->find_string("key");
          if (key) added.push_back(*key);
        }
      }
      if (auto s = o.store->Write(batch); !s.ok()) {
        PS_LOG(kError, "network") << "cannot store events, not acknowledging them: " << s.ToString();
        return s;
      }
      for (const std::string& key : added) {
        PS_LOG(kInfo, "network") << "member added: " << protocol::NodeIdForHex(key)
                                 << (key == key_hex ? " (this node)" : "");
      }
    }
    for (const std::string& r : out.refusals) {
      PS_LOG(kError, "network") << "join refused: " << r;
      refusals.push_back(r);
      if (refusals.size() > 16) refusals.erase(refusals.begin());
    }
    for (protocol::Envelope& e : out.messages) Post(std::move(e));
    return Status::Ok();
  }

  // Signs a message (domain "p2p/<type>" over the exact body bytes) and hands it to the
  // transport, which never blocks.
  void Post(protocol::Envelope e) {
    protocol::Sealed sealed = protocol::Seal(e, *o.key);
    transport::Message m;
    m.peer = e.to;
    m.path = std::move(sealed.path);
    m.body = std::move(sealed.body);
    m.headers = {{"content-type", "application/json"},
                 {"x-peerstack-key", std::move(sealed.key_hex)},
                 {"x-peerstack-signature", std::move(sealed.sig_hex)}};
    m.droppable = Droppable(e.type);
    if (e.type == "sync") m.supersedes = "sync";
    if (!o.transport->Send(std::move(m))) {
      PS_LOG(kDebug, "network") << e.type << " to " << e.to << " not queued (its queue is full)";
    }
  }

  void TickLoop() {
    std::unique_lock<std::mutex> lock(tick_mu);
    while (!stopping) {
      tick_cv.wait_for(lock, std::chrono::milliseconds(100));
      if (stopping) break;
      lock.unlock();
      {
        std::lock_guard<std::mutex> engine_lock(mu);
        protocol::Output out;
        engine->Tick(WallMs(), &out);
        (void)Drive(out);  // logged; the next tick or sync repeats what matters
      }
      lock.lock();
    }
  }
};

NetworkService::NetworkService(NetworkOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->o = std::move(options);
  const auto& pub = impl_->o.key->public_key();
  impl_->key_hex = crypto::HexEncode(pub.data(), pub.size());
}

NetworkService::~NetworkService() { Stop(); }

Status NetworkService::Start(const std::string& self_url, const std::string& via) {
  Impl& d = *impl_;
  d.self_url = self_url;
  d.self_via = via;
  auto events = d.o.store->Events();
  if (!events) return events.status();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!events->empty()) {
    if (events->front().kind != "genesis") {
      return Status::Error("bad_state", "the first stored event is not a genesis event");
    }
    auto ledger = protocol::Ledger::FromGenesis(events->front().body);
    if (!ledger) {
      return Status::Error("bad_state", "stored genesis is invalid: " + ledger.status().message());
    }
    ledger->set_verify_cache(&d.verify_cache);
    for (size_t i = 1; i < events->size(); ++i) {
      auto r = ledger->Add((*events)[i].body);
      if (!r || *r != protocol::Ledger::Added::kAdded) {
        PS_LOG(kError, "network") << "stored event " << (*events)[i].hash << " is not valid here; skipped";
      }
    }
    if (ledger->IsMember(d.key_hex) || d.o.join_url.empty()) {
      PS_LOG(kInfo, "network") << "network " << ledger->network_id() << ", "
                               << ledger->state().members.size() << " members, "
                               << ledger->size() << " events";
      d.engine = std::make_unique<protocol::Engine>(d.EngineConfigFor(), *d.o.key,
                                                    std::move(ledger).value(), &d.random);
    }
  } else if (d.o.join_url.empty()) {
    protocol::GenesisParams params;
    params.code_hash = d.o.code_hash;
    auto genesis = protocol::MakeGenesis(*d.o.key, self_url, d.WallMs(), params);
    if (!genesis) return genesis.status();
    const std::string wire = protocol::Encode(*genesis);
    store::WriteBatch batch;
    batch.events.push_back({protocol::HashOf(wire), "genesis", wire});
    batch.meta.emplace_back("network_id", protocol::HashOf(wire));
    if (auto s = d.o.store->Write(batch); !s.ok()) return s;
    PS_LOG(kInfo, "network") << "created network " << protocol::HashOf(wire);
    d.engine = std::make_unique<protocol::Engine>(
        d.EngineConfigFor(), *d.o.key, std::move(protocol::Ledger::FromGenesis(wire)).value(),
        &d.random);
  }
  if (d.engine && d.engine->is_member()) {
    // Back at another URL (a new port, a new tunnel): tell the network.
    protocol::Output out;
    const protocol::Member* me = d.engine->ledger()->state().FindMemberByKey(d.key_hex);
    if (me && me->url != self_url) {
      PS_LOG(kInfo, "network") << "announcing the new address " << self_url << " (was " << me->url << ")";
    }
    d.engine->AnnounceAddress(self_url, d.WallMs(), &out, via);
    (void)d.Drive(out);  // logged; the tick repeats the announcement
  }
  if (!d.engine) {
    PS_LOG(kInfo, "network") << "asking " << d.o.join_url << " to admit this node";
    d.engine = std::make_unique<protocol::Engine>(d.EngineConfigFor(), *d.o.key, d.o.join_url,
                                                  &d.random);
  }
  d.ticker = std::thread([impl = impl_] { impl->TickLoop(); });
  return Status::Ok();
}

void NetworkService::Stop() {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.tick_mu);
    if (d.stopping) return;
    d.stopping = true;
  }
  d.tick_cv.notify_all();
  if (d.ticker.joinable()) d.ticker.join();
}

http::Response NetworkService::HandleMessage(const http::Request& request) {
  Impl& d = *impl_;
  if (request.method != "POST") return http::JsonError(405, "method_not_allowed", "POST only");
  const std::string type = request.path.substr(5);  // after "/p2p/"
  auto limit = d.by_type.find(type);
  if (!ValidType(type) || limit == d.by_type.end()) return http::JsonError(404, "not_found", "no such message type");
  const std::string* key = request.header("x-peerstack-key");
  const std::string* sig = request.header("x-peerstack-signature");
  if (request.body.size() > protocol::kMaxEnvelopeBytes) return http::JsonError(413, "too_large", "message too large");
  if (!IsLoopbackHost(request.remote_address)) {
    std::lock_guard<std::mutex> lock(d.limits_mu);
    if (!d.by_address.Admit(request.remote_address, d.o.clock->SteadyMs())) {
      return TooMany("too many messages from this address; try again in a second");
    }
  }
  // The signature over the raw bytes first; only then is the body parsed (protocol/envelope.h).
  if (auto s = protocol::Verify(type, request.body, key, sig); !s.ok()) {
    return http::JsonError(s.code() == "too_large" ? 413 : 401, s.code(), s.message());
  }
  bool member = false;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    member = d.engine && d.engine->ledger() && d.engine->ledger()->IsMember(*key);
  }
  {
    std::lock_guard<std::mutex> lock(d.limits_mu);
    RateLimit& budget = member ? limit->second.members : limit->second.strangers;
    if (!budget.Admit(*key, d.o.clock->SteadyMs())) {
      return TooMany(member ? "too many " + type + " messages; try again in a second"
                            : "too many " + type + " messages from non-members; try again in a second");
    }
  }
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine) return http::JsonError(503, "not_ready", "the network is not started");
  auto envelope = protocol::Open(type, request.body, *key, d.engine->ledger(), d.self_url);
  if (!envelope) return http::JsonError(400, envelope.status().code(), envelope.status().message());
  if (member) d.o.transport->Heard(envelope->from);  // it answers again: no more backoff for it
  const int64_t now = d.WallMs();
  protocol::Output out;
  d.engine->Receive(*envelope, now, &out);
  if (auto s = d.Drive(out); !s.ok()) return http::JsonError(503, "cannot_store", s.message());
  return http::JsonResponse(202, "{\"ok\":true}");
}

http::Response NetworkService::HandleIdentity(const http::Request& request) {
  const Impl& d = *impl_;
  std::string nonce;
  if (!QueryParam(request.query, "nonce", &nonce) || !ValidNonce(nonce)) {
    return http::JsonError(400, "bad_nonce", "send ?nonce=<hex, at most 64 characters>");
  }
  const crypto::Signature sig = d.o.key->SignWithDomain("identity", nonce);
  json::Object answer{{"key", d.key_hex}, {"sig", crypto::HexEncode(sig.data(), sig.size())}};
  if (const uint16_t relay = d.relay_port.load(); relay != 0) answer.emplace("relay", relay);
  return http::JsonResponse(200, json::Serialize(std::move(answer)));
}

void NetworkService::set_relay_port(uint16_t port) { impl_->relay_port = port; }

std::vector<std::string> NetworkService::FindRelays() const {
  // A relayed member cannot relay for others.
  const auto urls = impl_->Peers(4, [](const std::string&, const std::string& via) { return via.empty() || via == "upnp"; });
  std::vector<std::string> relays;
  for (const std::string& url : urls) {
    auto parsed = http::ParseUrl(url);
    auto id = parsed ? FetchIdentity(url, "00", impl_->o.ca_file, std::chrono::milliseconds(1500)) : Status::Error("bad_url", "");
    if (id && id->relay != 0) relays.push_back(parsed->host + ":" + std::to_string(id->relay));
  }
  return relays;
}

namespace {



// May /p2p/reach fetch from a host with these (numeric) addresses? Every one must be allowed;
// the one to connect to (so that a second lookup cannot lead elsewhere), or "".
std::string CheckedAddress(const std::vector<std::string>& addresses, bool loopback_ok) {
  std::string chosen;
  for (const std::string& text : addresses) {
    in_addr v4{};
    in6_addr v6{};
    bool ok = false;
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
      const uint32_t a = ntohl(v4.s_addr);
      const bool loopback = (a >> 24) == 127;
      const bool link_local = (a >> 16) == 0xA9FE;  // 169.254/16
      const bool bad = a == 0 || (a >> 28) == 0xE || a == 0xFFFFFFFF || link_local;
      ok = !bad && (loopback_ok || !loopback);
      if (ok && chosen.empty()) chosen = text;
    } else if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
      const bool bad = IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) || IN6_IS_ADDR_MULTICAST(&v6) ||
                       IN6_IS_ADDR_V4MAPPED(&v6);
      ok = !bad && (loopback_ok || !IN6_IS_ADDR_LOOPBACK(&v6));
      if (ok && chosen.empty()) chosen = "[" + text + "]";
    }
    if (!ok) return "";
  }
  return chosen;
}

}  // namespace

http::Response NetworkService::HandleReach(const http::Request& request) {
  Impl& d = *impl_;
  std::string url, nonce;
  if (!QueryParam(request.query, "url", &url) || !QueryParam(request.query, "nonce", &nonce) ||
      !ValidNonce(nonce) || url.size() > 512) {
    return http::JsonError(400, "bad_request", "send ?url=<the node's URL>&nonce=<hex, at most 64 characters>");
  }
  auto parsed = http::ParseUrl(url);
  if (!parsed || url.find_first_of("?#") != std::string::npos) {
    return http::JsonError(400, "bad_url", "url must be http[s]://host[:port][/base path]");
  }
  // Not a reflector: one check per URL per second, five per second per source, fifty in all
  // (the answer carries only a key and a signature, never what the URL returned).
  {
    std::lock_guard<std::mutex> lock(d.reach_mu);
    const int64_t now = d.o.clock->SteadyMs();
    if (!d.reach_by_source.Admit(request.remote_address, now) || !d.reach_by_url.Admit(url, now)) {
      return TooMany("too many reachability checks; try again in a second");
    }
  }
  // Loopback targets only for a node that is itself on loopback (one machine, tests); never
  // link-local (cloud metadata), unspecified or multicast addresses. Errors say no more than
  // "cannot reach": no port or path scanning through us.
  const bool self_on_loopback = [&] {
    std::lock_guard<std::mutex> lock(d.mu);
    auto self = http::ParseUrl(d.self_url);
    return self && IsLoopbackHost(self->host);
  }();
  // Resolve once (on the transport's loop), check every address, fetch from the checked one;
  // nothing here blocks the server's thread or holds one of its own.
  auto responder = request.Defer();
  if (!responder) return http::JsonError(500, "internal", "reachability checks need a server");
  auto unreachable = [url] { return http::JsonError(502, "unreachable", "cannot reach " + url); };
  // Too many checks in flight is no verdict on the URL: 429, as for the rate limits.
  auto busy = [] { return TooMany("too many reachability checks; try again in a second"); };
  std::string name = parsed->host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  transport::Transport* transport = d.o.transport;
  transport->Resolve(name, [=](Result<std::vector<std::string>> addresses) {
    if (!addresses && addresses.status().code() == "busy") return responder->Send(busy());
    const std::string address = addresses ? CheckedAddress(*addresses, self_on_loopback) : "";
    if (address.empty()) return responder->Send(unreachable());
    const size_t path_at = url.find('/', url.find("//") + 2);
    const std::string port = ":" + std::to_string(parsed->port);
    const std::string host = parsed->host.find(':') != std::string::npos ? "[" + parsed->host + "]" : parsed->host;
    // https: connect to the checked address, verify the certificate for the URL's name.
    http::ClientRequest req = IdentityRequest(std::string(parsed->tls ? "https://" : "http://") + address + port +
                                                  (path_at == std::string::npos ? "" : url.substr(path_at)),
                                              nonce, host + port, std::chrono::milliseconds(3000));
    if (parsed->tls) req.server_name = name;
    transport->Fetch(std::move(req), [responder, unreachable, busy](Result<http::ClientResponse> r) {
      if (!r && r.status().code() == "busy") return responder->Send(busy());
      auto id = r ? ParseIdentity(*r) : Result<Identity>(r.status());
      if (!id) return responder->Send(unreachable());
      responder->Send(
          http::JsonResponse(200, json::Serialize(json::Object{{"key", id->key}, {"sig", id->sig}})));
    });
  });
  return http::Response::Deferred();
}

tunnel::Reach NetworkService::VerifyIdentity(const std::string& url) const {
  const Impl& d = *impl_;
  // By value: witnesses may answer after the verdict is in and this call has returned.
  auto ours = [self = d.key_hex](const std::string& key, const std::string& nonce, const std::string& sig) {
    return key == self && protocol::VerifyHexSignature(key, "identity", nonce, sig).ok();
  };
  // Asked of peers: a node cannot tell from inside whether others reach it (a router without
  // hairpin NAT fails the self-check of a working mapping; a loopback URL passes it).
  auto self_check = [&] {
    const std::string nonce = crypto::RandomHex(16);
    auto id = FetchIdentity(url, nonce, d.o.ca_file);
    return id && ours(id->key, nonce, id->sig) ? tunnel::Reach::kConfirmed : tunnel::Reach::kRefuted;
  };
  // Three members at most, not always the same ones, and the join node.
  const std::vector<std::string> witnesses =
      d.Peers(3, [&url](const std::string& peer, const std::string&) { return peer != url; });
  if (witnesses.empty()) return self_check();  // alone: the first node of a network
  // All witnesses at once (a silent one costs nothing but its own answer); the first
  // confirmation decides, otherwise every answer is waited for, 5 s at most.
  struct Verdicts {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = 0;
    bool confirmed = false, refuted = false, busy = false;
  };
  auto v = std::make_shared<Verdicts>();
  v->pending = witnesses.size();
  for (const std::string& witness : witnesses) {
    const std::string nonce = crypto::RandomHex(16);
    http::ClientRequest req;
    req.url = witness + "/p2p/reach?url=" + http::PercentEncode(url) + "&nonce=" + nonce;
    req.timeout = std::chrono::milliseconds(5000);
    req.max_response_bytes = 4096;
    d.o.transport->Fetch(std::move(req), [v, witness, url, nonce, ours](Result<http::ClientResponse> r) {
      bool confirmed = false, refuted = false, busy = false;
      if (!r) {
        busy = r.status().code() == "busy";  // ours: too many fetches; down: no verdict
      } else if (r->status == 429) {
        busy = true;
      } else if (r->status == 502) {
        PS_LOG(kInfo, "tunnel") << witness << " cannot reach " << url;
        refuted = true;
      } else if (r->status == 200) {
        auto body = json::Parse(r->body, {4096, 4});
        const std::string* key = body ? body->find_string("key") : nullptr;
        const std::string* sig = body ? body->find_string("sig") : nullptr;
        confirmed = key && sig && ours(*key, nonce, *sig);
        refuted = !confirmed;  // another node answers there
      }  // any other status: an older node, no verdict
      std::lock_guard<std::mutex> lock(v->mu);
      v->confirmed |= confirmed;
      v->refuted |= refuted;
      v->busy |= busy;
      --v->pending;
      v->cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(v->mu);
    v->cv.wait_for(lock, std::chrono::milliseconds(5500), [&] { return v->confirmed || v->pending == 0; });
    if (v->confirmed) return tunnel::Reach::kConfirmed;
    if (v->refuted) return tunnel::Reach::kRefuted;
    if (v->busy || v->pending > 0) return tunnel::Reach::kUnknown;
  }
  // No peer answered at all (they all restart, say, behind paths of their own): the node's
  // own check lets it start; the periodic checks correct it once a peer is back.
  return self_check();
}


void NetworkService::AnnounceUrl(const std::string& url, const std::string& via) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  d.self_url = url;
  d.self_via = via;
  if (!d.engine) return;
  protocol::Output out;
  d.engine->AnnounceAddress(url, d.WallMs(), &out, via);
  (void)d.Drive(out);  // logged; the tick's own-address repair tries again
}

http::Response NetworkService::HandleJoin(const http::Request& request) {
  Impl& d = *impl_;
  std::string url = d.o.join_url;
  if (!request.body.empty()) {
    auto body = json::Parse(request.body, {64 * 1024, 8});
    if (!body) return http::JsonError(400, "bad_json", body.status().message());
    if (const std::string* u = body->find_string("url")) url = *u;
  }
  if (url.empty()) return http::JsonError(400, "no_url", "send {\"url\": ...} or start with --join");
  if (!http::ParseUrl(url).ok()) return http::JsonError(400, "bad_url", "not an http:// or https:// URL: " + url);
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.engine && d.engine->is_member()) {
    return http::JsonError(409, "already_member",
                           "this node is a member of network " + d.engine->ledger()->network_id() +
                               "; use an empty data dir and --join to join another");
  }
  d.engine = std::make_unique<protocol::Engine>(d.EngineConfigFor(), *d.o.key, url, &d.random);
  d.refusals.clear();
  protocol::Output out;
  d.engine->Tick(d.WallMs(), &out);
  (void)d.Drive(out);  // a joiner stores nothing until it is admitted
  return http::JsonResponse(202, json::Serialize(json::Object{{"joining", url}}));
}

http::Response NetworkService::HandleSync(const http::Request&) {
  Impl& d = *impl_;
  auto snapshot = [&] {
    std::lock_guard<std::mutex> lock(d.mu);
    const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
    return std::make_pair(l ? l->size() : 0, l ? l->StateHash() : std::string());
  };
  const auto before = snapshot();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    protocol::Output out;
    d.engine->SyncWithAll(&out);
    if (auto s = d.Drive(out); !s.ok()) return StatusError(507, s);
  }
  // Wait for the answers: until nothing changed for 300 ms, 3 s at most.
  auto last = before;
  auto quiet_since = std::chrono::steady_clock::now();
  const auto deadline = quiet_since + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline &&
         std::chrono::steady_clock::now() - quiet_since < std::chrono::milliseconds(300)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = snapshot();
    if (now != last) {
      last = now;
      quiet_since = std::chrono::steady_clock::now();
    }
  }
  const auto after = snapshot();
  return http::JsonResponse(
      200, json::Serialize(json::Object{
               {"added", static_cast<int64_t>(after.first) - static_cast<int64_t>(before.first)},
               {"events", after.first},
               {"state_hash_before", before.second},
               {"state_hash", after.second}}));
}

http::Response NetworkService::HandleLeave(const http::Request&) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  protocol::Output out;
  if (auto s = d.engine->Leave(d.WallMs(), &out); !s.ok()) return StatusError(409, s);
  if (auto s = d.Drive(out); !s.ok()) return StatusError(507, s);
  PS_LOG(kInfo, "network") << "left the network";
  return http::JsonResponse(200, "{\"left\":true}");
}

http::Response NetworkService::HandleEvict(const http::Request& request) {
  Impl& d = *impl_;
  auto body = json::Parse(request.body, {64 * 1024, 8});
  if (!body) return http::JsonError(400, "bad_json", body.status().message());
  const std::string* id = body->find_string("id");
  if (!id) return http::JsonError(400, "no_id", "send {\"id\": <node id>}");
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine->ledger();
  std::string key;
  if (l) {
    for (const protocol::Member& m : l->state().members) {
      if (m.id == *id) key = m.key;
    }
  }
  if (key.empty()) return http::JsonError(404, "not_found", "no member with id " + *id);
  protocol::Output out;
  if (auto s = d.engine->StartEviction(key, d.WallMs(), &out); !s.ok()) return StatusError(409, s);
  if (auto s = d.Drive(out); !s.ok()) return StatusError(507, s);
  PS_LOG(kInfo, "network") << "asked the members to evict " << *id;
  return http::JsonResponse(202, json::Serialize(json::Object{{"evicting", *id}}));
}

http::Response NetworkService::HandleRelease(const http::Request& request,
                                             const json::Value& plugin_status) {
  Impl& d = *impl_;
  json::Value body = json::Object{};
  if (!request.body.empty()) {
    auto parsed = json::Parse(request.body, {1 << 20, 8});
    if (!parsed || !parsed->is_object()) return http::JsonError(400, "bad_json", "send a JSON object");
    body = std::move(parsed).value();
  }
  // The plugins: as given, or this node's loaded set.
  const json::Value* given = body.find("plugins");
  json::Array plugins;
  if (given) {
    if (!given->is_array()) return http::JsonError(400, "bad_plugins", "plugins is a list");
    plugins = given->as_array();
  } else if (const json::Value* loaded = plugin_status.find("loaded")) {
    for (const json::Value& p : loaded->as_array()) {
      plugins.push_back(json::Object{{"name", *p.find_string("name")},
                                     {"sha256", *p.find_string("sha256")},
                                     {"version", *p.find_string("version")}});
    }
  }
  std::sort(plugins.begin(), plugins.end(), [](const json::Value& a, const json::Value& b) {
    const std::string* x = a.find_string("name");
    const std::string* y = b.find_string("name");
    return x && y && *x < *y;
  });
  const int64_t* days = body.find_int("expires_in_days");
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine->ledger();
  if (!l) return http::JsonError(409, "not_member", "this node is not in a network");
  auto manifest = protocol::ParseManifest(json::Object{
      {"expires", d.WallMs() + (days ? *days : 90) * 86400000LL},
      {"plugins", std::move(plugins)},
      {"version", l->state().release_version + 1}});
  if (!manifest) return http::JsonError(400, "bad_manifest", manifest.status().message());
  protocol::Output out;
  if (auto s = d.engine->PublishRelease(*manifest, d.WallMs(), &out); !s.ok()) return StatusError(409, s);
  if (auto s = d.Drive(out); !s.ok()) return StatusError(507, s);
  PS_LOG(kInfo, "network") << "published release " << manifest->version << ", code "
                           << manifest->CodeHash();
  return http::JsonResponse(
      201, json::Serialize(json::Object{{"code", manifest->CodeHash()}, {"manifest", manifest->ToJson()}}));
}

http::Response NetworkService::HandleRecover(const http::Request& request) {
  Impl& d = *impl_;
  json::Value body = json::Object{};
  if (!request.body.empty()) {
    auto parsed = json::Parse(request.body, {64 * 1024, 8});
    if (!parsed || !parsed->is_object()) return http::JsonError(400, "bad_json", "send a JSON object");
    body = std::move(parsed).value();
  }
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine->ledger();
  if (!l) return http::JsonError(409, "no_network", "this node has no network");
  std::vector<std::string> keep;
  const json::Value* ids = body.find("keep");
  const int64_t now = d.WallMs();
  for (const protocol::Member& m : l->state().members) {
    bool kept = false;
    if (ids && ids->is_array()) {
      for (const json::Value& id : ids->as_array()) kept |= id.is_string() && id.as_string() == m.id;
    } else {
      kept = m.key == d.key_hex || d.engine->IsOnline(m.url, now);
    }
    if (kept) keep.push_back(m.key);
  }
  if (keep.empty()) return http::JsonError(400, "nobody_kept", "keep names no current member");
  protocol::Output out;
  if (auto s = d.engine->Recover(keep, now, &out); !s.ok()) return StatusError(409, s);
  if (auto s = d.Drive(out); !s.ok()) return StatusError(507, s);
  PS_LOG(kWarn, "network") << "re-formed the network around " << keep.size() << " members";
  return http::JsonResponse(200, json::Serialize(json::Object{{"kept", static_cast<int64_t>(keep.size())}}));
}

json::Value NetworkService::NodesJson() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  json::Array nodes;
  const int64_t now = d.WallMs();
  if (l) {
    for (const protocol::Member& m : l->state().members) {
      const bool self = m.key == d.key_hex;
      const auto& live = d.engine->liveness();
      auto seen = live.find(m.url);
      const int64_t last = self ? now : (seen == live.end() ? 0 : seen->second.last_heard_ms);
      const bool online = self || d.engine->IsOnline(m.url, now);
      nodes.push_back(json::Object{{"id", m.id},
                                   {"url", self ? d.self_url : m.url},
                                   {"online", online},
                                   {"last_seen", last},
                                   {"version", self ? d.o.version : std::string()},
                                   {"via", m.via.empty() ? std::string("direct") : m.via}});
    }
  }
  return json::Object{{"network", l ? l->network_id() : std::string()}, {"nodes", std::move(nodes)}};
}

json::Value NetworkService::StatusJson() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  json::Array refusals(d.refusals.begin(), d.refusals.end());
  return json::Object{
      {"id", l ? l->network_id() : std::string()},
      {"state_hash", l ? l->StateHash() : std::string()},
      {"members", l ? l->state().members.size() : 0},
      {"events", l ? l->size() : 0},
      {"member", d.engine && d.engine->is_member()},
      {"pending_joins", d.engine ? d.engine->pending_joins() : 0},
      {"pending_approvals", d.engine ? d.engine->pending_approvals() : 0},
      {"join_url", d.o.join_url},
      {"code_hash", d.o.code_hash},
      {"accepted_code", l ? l->state().accepted_code : std::string()},
      {"release", l ? l->state().release_version : 0},
      {"join_refusals", std::move(refusals)},
  };
}

std::string NetworkService::network_id() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const protocol::Ledger* l = impl_->engine ? impl_->engine->ledger() : nullptr;
  return l ? l->network_id() : std::string();
}

bool NetworkService::IsMemberKey(const std::string& key_hex) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const protocol::Ledger* l = impl_->engine ? impl_->engine->ledger() : nullptr;
  return l && l->IsMember(key_hex);
}

bool NetworkService::is_member() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->engine && impl_->engine->is_member();
}

}  // namespace peerstack::node
