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
#include "base/metrics.h"
#include "base/rate_limit.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "http/client.h"
#include "http/static_files.h"
#include "protocol/app_authority.h"
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

namespace {
void Shuffle(std::vector<std::string>* v) {
  for (size_t i = v->size(); i > 1; --i) {
    uint8_t r = 0;
    crypto::RandomBytes(&r, 1);
    std::swap((*v)[i - 1], (*v)[r % i]);
  }
}

// Messages per second that one key may send, per type. Strangers (keys that are not members:
// joiners, and anyone) get a small budget per key and a total for all of them, because keys
// cost nothing to make; a join makes every member challenge a URL, so joins are the scarcest.
// Members get a larger budget per key: a sponsor forwards every join it handles, a node that
// catches up answers many syncs. (A node just admitted is still a stranger to members that
// have not heard of it yet: strangers get a little of every type.) Legitimate traffic stays far
// below: a member probes one peer and syncs with one peer a second.
struct TypeLimit {
  const char* type;
  int stranger_per_key;
  int stranger_total;
  int member_per_key;
};
constexpr TypeLimit kTypeLimits[] = {
    {"join", 2, 20, 100},
    {"challenge", 10, 200, 100},
    {"answer", 20, 200, 100},
    {"approval", 10, 200, 200},
    {"accepted", 10, 200, 50},
    {"refused", 10, 200, 50},
    {"event", 10, 200, 1000},
    {"events", 10, 200, 200},
    {"sync", 5, 100, 100},
    {"ping", 10, 200, 100},
    {"pingreq", 10, 200, 100},
    {"ack", 10, 200, 100},
    {"evict", 10, 200, 20},
    {"evictapproval", 10, 200, 50},
    {"ckptpropose", 5, 100, 20},
    {"ckptapproval", 10, 200, 50},
    // App data (members only): pushes of a writer's ops, marks, answers with ops.
    {"appdata", 0, 0, 200},
    {"appsync", 0, 0, 50},
    {"appops", 0, 0, 200},
};

bool AppType(const std::string& t) { return t == "appdata" || t == "appsync" || t == "appops"; }
// Per source address, all types, before a signature is checked (it costs CPU). Loopback is
// exempt: tunnelled and relayed requests all arrive from there.
constexpr int kPerAddressPerSecond = 500;

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
  int64_t join_started_ms = 0;  // steady: when this node asked to join (0: it did not)
  metrics::AtomicHistogram join_seconds{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}};
  size_t ledger_size = 0;  // events in the ledger at the last Drive (on_change when it moves)

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
  std::vector<std::string> Peers(
      size_t most,
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
    ec.checkpoint_every = o.checkpoint_every;
    ec.checkpoint_quiet_ms = o.checkpoint_quiet_ms;
    ec.verify_cache = &verify_cache;
    ec.invitation = o.invitation;
    return ec;
  }

  // With mu held: store what the engine accepted, then queue what it wants sent. An error
  // when the store refused (a full disk): nothing is sent, and the caller must not
  // acknowledge.
  Status Drive(protocol::Output& out) {
    if (!out.new_events.empty() || out.rebased) {
      store::WriteBatch batch;
      std::vector<std::string> added;  // keys of admitted members, for the log
      auto record = [&](const std::string& w) {
        auto e = protocol::Decode(w);
        batch.events.push_back({protocol::HashOf(w), e ? e->kind : "unknown", w});
        return e;
      };
      const protocol::Ledger* l = engine ? engine->ledger() : nullptr;
      const bool rebased = out.rebased && l;
      if (rebased) {
        // A new checkpoint: the store keeps the genesis, the package and what is above it
        // (new_events among them, or pruned).
        batch.replace_events = true;
        for (const std::string& w : l->StoredEvents()) record(w);
        batch.meta.emplace_back("checkpoint", json::Serialize(l->CheckpointPackage()));
        PS_LOG(kInfo, "network") << "checkpoint " << l->checkpoint_seq() << ": " << l->size()
                                 << " events kept";
      }
      for (const std::string& w : out.new_events) {
        auto e = rebased ? protocol::Decode(w) : record(w);
        if (e && e->kind == "member-added") {
          const std::string* key = e->body.find("request")->find_string("key");
          if (key) added.push_back(*key);
        }
      }
      if (auto s = o.store->Write(batch); !s.ok()) {
        PS_LOG(kError, "network") << "cannot store events, not acknowledging them: "
                                  << s.ToString();
        return Status::Error("cannot_store", "cannot store the event: " + s.ToString());
      }

      for (const std::string& key : added) {
        PS_LOG(kInfo, "network") << "member added: " << protocol::NodeIdForHex(key)
                                 << (key == key_hex ? " (this node)" : "");
        if (key == key_hex && join_started_ms > 0) {
          join_seconds.Observe(static_cast<double>(o.clock->SteadyMs() - join_started_ms) / 1000);
          join_started_ms = 0;
        }
      }
    }
    // The ledger grew (events stored above, or a joiner's ledger arrived): tell the release
    // manager now rather than at its next tick.
    if (const size_t n = engine && engine->ledger() ? engine->ledger()->size() : 0;
        n != ledger_size) {
      ledger_size = n;
      if (o.on_change) o.on_change();
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
    // Standing on a checkpoint: its package, verified from the genesis, then what is above.
    auto package = d.o.store->GetMeta("checkpoint");
    if (!package) return package.status();
    Result<protocol::Ledger> ledger = Status::Error("bad_state", "no ledger");
    if (*package && !(*package)->empty()) {
      auto parsed = json::Parse(**package, {.max_bytes = size_t{256} << 20});
      if (!parsed)
        return Status::Error("bad_state", "stored checkpoint: " + parsed.status().message());
      ledger = protocol::Ledger::FromCheckpoint(events->front().body, *parsed);
    } else {
      ledger = protocol::Ledger::FromGenesis(events->front().body);
    }
    if (!ledger) {
      return Status::Error("bad_state",
                           "stored genesis or checkpoint is invalid: " + ledger.status().message());
    }
    ledger->set_verify_cache(&d.verify_cache);
    for (size_t i = 1; i < events->size(); ++i) {
      auto r = ledger->Add((*events)[i].body);
      if (!r || *r == protocol::Ledger::Added::kMissingParents) {
        PS_LOG(kError, "network") << "stored event " << (*events)[i].hash
                                  << " is not valid here; skipped";
      }
    }
    if (ledger->IsMember(d.key_hex) || d.o.join_url.empty()) {
      PS_LOG(kInfo, "network") << "network " << ledger->network_id() << ", "
                               << ledger->state().members.size() << " members, " << ledger->size()
                               << " events";
      d.engine = std::make_unique<protocol::Engine>(d.EngineConfigFor(), *d.o.key,
                                                    std::move(ledger).value(), &d.random);
    }
  } else if (d.o.join_url.empty()) {
    protocol::GenesisParams params;
    params.code_hash = d.o.any_code ? std::string() : d.o.code_hash;
    params.publishers = d.o.publishers;
    params.publisher_threshold = d.o.publisher_threshold;
    params.admission = d.o.admission;
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
      PS_LOG(kInfo, "network") << "announcing the new address " << self_url << " (was " << me->url
                               << ")";
    }
    d.engine->AnnounceAddress(self_url, d.WallMs(), &out, via);
    (void)d.Drive(out);  // logged; the tick repeats the announcement
  }
  if (!d.engine) {
    PS_LOG(kInfo, "network") << "asking " << d.o.join_url << " to admit this node";
    d.engine =
        std::make_unique<protocol::Engine>(d.EngineConfigFor(), *d.o.key, d.o.join_url, &d.random);
    d.join_started_ms = d.o.clock->SteadyMs();
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
  if (!ValidType(type) || limit == d.by_type.end())
    return http::JsonError(404, "not_found", "no such message type");
  const std::string* key = request.header("x-peerstack-key");
  const std::string* sig = request.header("x-peerstack-signature");
  if (request.body.size() > protocol::kMaxEnvelopeBytes)
    return http::JsonError(413, "too_large", "message too large");
  if (!http::IsLoopbackHost(request.remote_address)) {
    std::lock_guard<std::mutex> lock(d.limits_mu);
    if (!d.by_address.Admit(request.remote_address, d.o.clock->SteadyMs())) {
      return http::TooMany("too many messages from this address; try again in a second");
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
  if (AppType(type) && !member)
    return http::JsonError(403, "not_member", "app data comes from members only");
  {
    std::lock_guard<std::mutex> lock(d.limits_mu);
    RateLimit& budget = member ? limit->second.members : limit->second.strangers;
    if (!budget.Admit(*key, d.o.clock->SteadyMs())) {
      return http::TooMany(member ? "too many " + type + " messages; try again in a second"
                                  : "too many " + type +
                                        " messages from non-members; try again in a second");
    }
  }
  if (AppType(type)) {
    Result<protocol::Envelope> envelope = Status::Error("not_ready", "the network is not started");
    {
      std::lock_guard<std::mutex> lock(d.mu);
      if (d.engine)
        envelope = protocol::Open(type, request.body, *key, d.engine->ledger(), d.self_url);
    }
    if (!envelope) {
      return http::JsonError(envelope.status().code() == "not_ready" ? 503 : 400,
                             envelope.status().code(), envelope.status().message());
    }
    if (!d.o.app_message) return http::JsonError(404, "not_found", "this node keeps no app data");
    if (auto s = d.o.app_message(*key, envelope->from, type, envelope->body); !s.ok()) {
      return http::JsonError(s.code() == "cannot_store" ? 503 : 400, s.code(), s.message());
    }
    return http::JsonResponse(202, "{\"ok\":true}");
  }
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine) return http::JsonError(503, "not_ready", "the network is not started");
  auto envelope = protocol::Open(type, request.body, *key, d.engine->ledger(), d.self_url);
  if (!envelope) return http::JsonError(400, envelope.status().code(), envelope.status().message());
  if (member) d.o.transport->Heard(envelope->from);  // it answers again: no more backoff for it
  const int64_t now = d.WallMs();
  protocol::Output out;
  d.engine->Receive(*envelope, now, &out);
  if (auto s = d.Drive(out); !s.ok()) return http::JsonError(503, s.code(), s.message());
  return http::JsonResponse(202, "{\"ok\":true}");
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

Result<std::string> NetworkService::Join(const std::string& given_url) {
  Impl& d = *impl_;
  const std::string url = given_url.empty() ? d.o.join_url : given_url;
  if (url.empty()) return Status::Error("no_url", "send {\"url\": ...} or start with --join");
  if (!http::ParseUrl(url).ok())
    return Status::Error("bad_url", "not an http:// or https:// URL: " + url);
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.engine && d.engine->is_member()) {
    return Status::Error("already_member",
                         "this node is a member of network " + d.engine->ledger()->network_id() +
                             "; use an empty data dir and --join to join another");
  }
  d.engine = std::make_unique<protocol::Engine>(d.EngineConfigFor(), *d.o.key, url, &d.random);
  d.refusals.clear();
  d.join_started_ms = d.o.clock->SteadyMs();
  protocol::Output out;
  d.engine->Tick(d.WallMs(), &out);
  (void)d.Drive(out);  // a joiner stores nothing until it is admitted
  return url;
}

Result<NetworkService::SyncReport> NetworkService::Sync() {
  Impl& d = *impl_;
  auto snapshot = [&] {
    std::lock_guard<std::mutex> lock(d.mu);
    const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
    return std::make_pair(l ? l->size() : 0, l ? l->StateHash() : std::string());
  };
  const auto before = snapshot();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!d.engine) return Status::Error("not_started", "the network is not started");
    protocol::Output out;
    d.engine->SyncWithAll(&out);
    if (auto s = d.Drive(out); !s.ok()) return s;
  }
  // Wait for the answers: until nothing changed for 300 ms, 3 s at most (the answers arrive
  // as requests on the public listener; there is no single event to wait on).
  auto last = before;
  const int64_t start = d.o.clock->SteadyMs();
  int64_t quiet_since = start;
  while (d.o.clock->SteadyMs() - start < 3000 && d.o.clock->SteadyMs() - quiet_since < 300) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = snapshot();
    if (now != last) {
      last = now;
      quiet_since = d.o.clock->SteadyMs();
    }
  }
  const auto after = snapshot();
  return SyncReport{static_cast<int64_t>(after.first) - static_cast<int64_t>(before.first),
                    after.first, before.second, after.second};
}

Status NetworkService::Leave() {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine) return Status::Error("not_started", "the network is not started");
  protocol::Output out;
  if (auto s = d.engine->Leave(d.WallMs(), &out); !s.ok()) return s;
  if (auto s = d.Drive(out); !s.ok()) return s;
  PS_LOG(kInfo, "network") << "left the network";
  return Status::Ok();
}

Status NetworkService::Evict(const std::string& node_id) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  std::string key;
  if (l) {
    for (const protocol::Member& m : l->state().members) {
      if (m.id == node_id) key = m.key;
    }
  }
  if (key.empty()) return Status::Error("not_found", "no member with id " + node_id);
  protocol::Output out;
  if (auto s = d.engine->StartEviction(key, d.WallMs(), &out); !s.ok()) return s;
  if (auto s = d.Drive(out); !s.ok()) return s;
  PS_LOG(kInfo, "network") << "asked the members to evict " << node_id;
  return Status::Ok();
}

Status NetworkService::PublishRelease(const protocol::Manifest& manifest,
                                      const std::vector<protocol::PublisherSignature>& sigs) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine || !d.engine->is_member())
    return Status::Error("not_member", "this node is not a member");
  protocol::Output out;
  if (auto s = d.engine->PublishRelease(manifest, sigs, d.WallMs(), &out); !s.ok()) return s;
  if (auto s = d.Drive(out); !s.ok()) return s;
  PS_LOG(kInfo, "network") << "published release " << manifest.version << ", code "
                           << manifest.CodeHash();
  return Status::Ok();
}

Status NetworkService::ChangePublishers(const std::vector<std::string>& keys, int64_t threshold,
                                        const std::vector<protocol::PublisherSignature>& sigs) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine || !d.engine->is_member())
    return Status::Error("not_member", "this node is not a member");
  protocol::Output out;
  if (auto s = d.engine->ChangePublishers(keys, threshold, sigs, d.WallMs(), &out); !s.ok())
    return s;
  if (auto s = d.Drive(out); !s.ok()) return s;
  PS_LOG(kWarn, "network") << "publisher set changed: " << keys.size() << " keys, threshold "
                           << threshold;
  return Status::Ok();
}

int64_t NetworkService::next_publishers_seq() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->engine ? impl_->engine->next_publishers_seq() : 1;
}

Status NetworkService::ReportRelease(const std::string& release_event, const std::string& status,
                                     const std::string& reason) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine) return Status::Error("not_member", "this node is not a member");
  protocol::Output out;
  if (auto s = d.engine->ReportRelease(release_event, status, reason, d.WallMs(), &out); !s.ok())
    return s;
  return d.Drive(out);
}

void NetworkService::SetCodeHash(const std::string& code) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (code != d.o.code_hash) {
    PS_LOG(kInfo, "network") << "this node's code is now " << code.substr(0, 16);
  }
  d.o.code_hash = code;
  if (d.engine) d.engine->SetCodeHash(code);
}

Result<NetworkService::CardParts> NetworkService::Card(size_t most) const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  if (!l) return Status::Error("no_network", "this node has no network yet");
  CardParts c;
  c.network = l->network_id();
  if (const std::string* g = l->Wire(c.network)) c.genesis = *g;
  c.publishers = l->state().publishers;
  c.threshold = l->state().params.publisher_threshold;
  c.bootstrap.push_back(d.self_url);
  for (const protocol::Member& m : l->state().members) {
    if (c.bootstrap.size() >= most) break;
    if (m.key != d.key_hex && !m.url.empty()) c.bootstrap.push_back(m.url);
  }
  return c;
}

Result<std::pair<protocol::Manifest, std::vector<protocol::PublisherSignature>>>
NetworkService::SignedRelease(const std::string& event) const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  const std::string* wire = l ? l->Wire(event) : nullptr;
  if (!wire) return Status::Error("not_found", "no release " + event);
  auto e = protocol::Decode(*wire);
  if (!e || e->kind != "release") return Status::Error("not_found", "not a release event");
  auto m = protocol::ParseManifest(*e->body.find("manifest"));
  auto sigs = protocol::ParseSignatures(*e->body.find("signatures"));
  if (!m || !sigs) return Status::Error("not_found", "a malformed release event");
  return std::make_pair(std::move(m).value(), std::move(sigs).value());
}

release::NetworkView NetworkService::ReleaseView() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  release::NetworkView v;
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  if (!l) return v;
  const protocol::NetworkState& st = l->state();
  v.has_ledger = true;
  v.is_member = d.engine->is_member();
  v.network_id = st.network_id;
  v.accepted_codes = st.AcceptedCodes();
  v.members = st.members;
  for (const protocol::Member& m : st.members) {
    v.member_keys.push_back(m.key);
    if (m.key != d.key_hex) v.member_urls[m.key] = m.url;
  }
  auto fill = [&](const protocol::NetworkState::ReleaseRef& ref,
                  release::NetworkView::Release* out) {
    out->event = ref.event;
    out->version = ref.version;
    out->code = ref.code;
    out->time_ms = ref.time_ms;
    if (auto it = st.reports.find(ref.event); it != st.reports.end()) out->reports = it->second;
    if (ref.event.empty()) return;
    const std::string* wire = l->Wire(ref.event);
    if (!wire) return;
    auto e = protocol::Decode(*wire);
    if (!e) return;
    if (const json::Value* m = e->body.find("manifest")) {
      if (auto parsed = protocol::ParseManifest(*m)) out->manifest = *parsed;
    }
    if (const protocol::Member* author = st.FindMemberByKey(e->author);
        author && author->key != d.key_hex) {
      out->author_url = author->url;
    }
  };
  fill(st.release, &v.current);
  fill(st.previous, &v.previous);
  return v;
}

Result<protocol::Invitation> NetworkService::Invite(int64_t ttl_ms, const std::string& note) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.engine) return Status::Error("not_member", "this node is not a member");
  auto inv = d.engine->Invite(d.WallMs() + ttl_ms, note);
  if (inv) {
    PS_LOG(kInfo, "network") << "made invitation " << inv->Hash().substr(0, 12)
                             << (note.empty() ? "" : " (" + note + ")");
  }
  return inv;
}

Result<protocol::Invitation> NetworkService::CheckInvitation(const std::string& token) const {
  const Impl& d = *impl_;
  auto inv = protocol::ParseInvitationToken(token);
  if (!inv) return inv.status();
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  if (!l) return Status::Error("bad_invitation", "this node has no network yet");
  const protocol::NetworkState& st = l->state();
  auto used_by = [&](const std::string& h) {
    auto it = st.invitations_used.find(h);
    return it == st.invitations_used.end() ? std::string() : it->second;
  };
  if (auto s = protocol::CheckInvitation(
          *inv, st.network_id, d.WallMs(), [&](const std::string& k) { return l->IsMember(k); },
          used_by);
      !s.ok()) {
    return s;
  }
  return inv;
}

Result<size_t> NetworkService::Recover(const std::optional<std::vector<std::string>>& keep_ids) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  if (!l) return Status::Error("no_network", "this node has no network");
  std::vector<std::string> keep;
  const int64_t now = d.WallMs();
  for (const protocol::Member& m : l->state().members) {
    const bool kept = keep_ids
                          ? std::find(keep_ids->begin(), keep_ids->end(), m.id) != keep_ids->end()
                          : m.key == d.key_hex || d.engine->IsOnline(m.url, now);
    if (kept) keep.push_back(m.key);
  }
  if (keep.empty()) return Status::Error("nobody_kept", "keep names no current member");
  protocol::Output out;
  if (auto s = d.engine->Recover(keep, now, &out); !s.ok()) return s;
  if (auto s = d.Drive(out); !s.ok()) return s;
  PS_LOG(kWarn, "network") << "re-formed the network around " << keep.size() << " members";
  return keep.size();
}

namespace {

// The release a member runs, as far as its reports tell: the newest it reported healthy
// (or the one before a release it reported failed); null when it reported nothing.
json::Value ReleaseOf(const protocol::NetworkState& st, const std::string& key) {
  auto reported =
      [&](const protocol::NetworkState::ReleaseRef& r) -> const protocol::NetworkState::Report* {
    auto it = st.reports.find(r.event);
    if (r.event.empty() || it == st.reports.end()) return nullptr;
    auto mine = it->second.find(key);
    return mine == it->second.end() ? nullptr : &mine->second;
  };
  if (const auto* r = reported(st.release)) {
    return r->status == "healthy" ? st.release.version : std::max<int64_t>(0, st.previous.version);
  }
  if (const auto* r = reported(st.previous); r && r->status == "healthy")
    return st.previous.version;
  return nullptr;
}

}  // namespace

NetworkService::AppView NetworkService::View(bool with_authority) const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  AppView v;
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  if (!l) return v;
  v.events = l->size();
  const int64_t now = d.WallMs();
  for (const protocol::Member& m : l->state().members) {
    const bool self = m.key == d.key_hex;
    v.members.push_back({m.key, self ? d.self_url : m.url, self || d.engine->IsOnline(m.url, now)});
  }
  if (with_authority) v.authority = protocol::AppAuthority(*l);
  return v;
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
                                   {"release", ReleaseOf(l->state(), m.key)},
                                   {"via", m.via.empty() ? std::string("direct") : m.via},
                                   {"agrees", [&]() -> json::Value {
                                      if (self) return true;
                                      const std::optional<bool> a = d.engine->Agrees(m.url, now);
                                      return a ? json::Value(*a) : json::Value(nullptr);
                                    }()}});
    }
  }
  return json::Object{{"network", l ? l->network_id() : std::string()},
                      {"admission", l ? l->state().params.admission : std::string()},
                      {"nodes", std::move(nodes)}};
}

void NetworkService::WriteMetrics(metrics::Writer& w) const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const protocol::Ledger* l = d.engine ? d.engine->ledger() : nullptr;
  const int64_t now = d.WallMs();
  double online = 0, offline = 0;
  if (l) {
    for (const protocol::Member& m : l->state().members) {
      (m.key == d.key_hex || d.engine->IsOnline(m.url, now) ? online : offline) += 1;
    }
  }
  w.Family("peerstack_members", "gauge",
           "Members of the network, by liveness as this node sees it.");
  w.Sample("peerstack_members", {{"liveness", "online"}}, online);
  w.Sample("peerstack_members", {{"liveness", "offline"}}, offline);
  w.Gauge("peerstack_member", "1 when this node is a member of its network.",
          d.engine && d.engine->is_member() ? 1 : 0);
  w.Gauge("peerstack_events_stored", "Events in this node's copy of the ledger.",
          l ? static_cast<double>(l->size()) : 0);
  w.Gauge("peerstack_release_version", "The release the network's ledger has in force.",
          l ? static_cast<double>(l->state().release_version) : 0);
  w.Gauge("peerstack_joins_pending", "Join requests waiting for approvals.",
          d.engine ? static_cast<double>(d.engine->pending_joins()) : 0);
  w.Gauge("peerstack_join_refusals_recent", "Join refusals this node was told of (the last 16).",
          static_cast<double>(d.refusals.size()));
  w.Family("peerstack_join_duration_seconds", "histogram",
           "From this node's join request to its admission.");
  w.Histogram("peerstack_join_duration_seconds", d.join_seconds.Read());
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
      {"quorum", l ? l->state().Quorum() : 0},
      {"events", l ? l->size() : 0},
      {"member", d.engine && d.engine->is_member()},
      {"pending_joins", d.engine ? d.engine->pending_joins() : 0},
      {"pending_approvals", d.engine ? d.engine->pending_approvals() : 0},
      {"join_url", d.o.join_url},
      {"code_hash", d.o.code_hash},
      {"accepted_code", l ? l->state().accepted_code : std::string()},
      {"release", l ? l->state().release_version : 0},
      {"accepted_codes",
       [&] {
         json::Array a;
         if (l) {
           for (const std::string& c : l->state().AcceptedCodes()) a.push_back(c);
         }
         return a;
       }()},
      {"join_refusals", std::move(refusals)},
      {"admission", l ? l->state().params.admission : std::string()},
      {"invitations_used", l ? l->state().invitations_used.size() : 0},
      {"checkpoint", d.engine ? d.engine->CheckpointStatus() : json::Value()},
  };
}

std::vector<std::string> NetworkService::Peers(
    size_t most,
    const std::function<bool(const std::string& url, const std::string& via)>& keep) const {
  return impl_->Peers(most, keep);
}

std::string NetworkService::self_url() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->self_url;
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
