#include "sim/simulator.h"

#include <algorithm>
#include <cstring>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "protocol/app_authority.h"
#include "protocol/envelope.h"
#include "release/rollout.h"

namespace peerstack::sim {

uint64_t SeededRandom::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

crypto::SigningKey KeyFrom(SeededRandom& rng) {
  crypto::Seed seed{};
  for (size_t i = 0; i < seed.size(); i += 8) {
    const uint64_t r = rng.Next();
    std::memcpy(seed.data() + i, &r, 8);
  }
  return crypto::SigningKey::FromSeed(seed);
}

std::string UrlOf(size_t i) { return "sim://" + std::to_string(i); }

// As the daemon queues them (core/node/network_service.cpp): probes and syncs may be dropped
// under pressure, and a newer sync to a peer replaces the one still waiting.
bool Droppable(const std::string& type) {
  return type == "ping" || type == "pingreq" || type == "ack" || type == "sync" ||
         type == "appdata" || type == "appsync" || type == "appops";
}

bool AppType(const std::string& type) {
  return type == "appdata" || type == "appsync" || type == "appops";
}

constexpr char kAppPlugin[] = "sim";

// A node's wall clock: the simulated time, off by a skew of its own.
class SkewedClock final : public Clock {
 public:
  SkewedClock(const int64_t* now, int64_t skew) : now_(now), skew_(skew) {}
  int64_t SteadyMs() const override { return *now_; }
  int64_t WallMs() const override { return std::max<int64_t>(0, *now_ + skew_); }

 private:
  const int64_t* now_;
  int64_t skew_;
};

}  // namespace

// One sender's outgoing queue towards one destination.
struct Simulator::Link {
  explicit Link(const transport::QueueLimits& limits) : queue(limits) {}
  transport::PeerQueue<protocol::Envelope> queue;
  int64_t retry_at = -1;  // a kRetry is scheduled then (one is enough)
};

// The release model's state of one node (core/release/manager.cpp's, reduced).
struct Simulator::NodeRelease {
  // On "disk": kept across crashes.
  std::set<std::string> blobs;            // sha256 of the blobs held
  std::string running = kGenesisRelease;  // release event hash, or "genesis"
  std::string code = kGenesisCode;
  std::string before = kGenesisRelease;  // what ran before the last switch
  std::set<std::string> failed;          // releases that failed here
  std::set<std::string> healthy;         // releases reported healthy from here
  // In memory: a crash forgets it (a restart starts the watch anew, as the daemon's resume).
  int64_t switched_at = 0;
  std::map<std::string, size_t> in_flight;        // sha256 -> the peer asked
  std::map<std::string, std::set<size_t>> tried;  // sha256 -> peers that failed it
  std::map<std::string, int64_t> retry_at;        // sha256 -> when to start over
};

// The app data model's state of one node (see AppDataConfig).
struct Simulator::NodeApp {
  std::string db;  // its database file: the "disk", kept across crashes
  std::unique_ptr<SkewedClock> clock;
  std::unique_ptr<SeededRandom> rng;          // its peer choices and its writes
  std::unique_ptr<appdata::Replica> replica;  // open while the process runs
  size_t events_seen = static_cast<size_t>(-1);
  uint64_t written = 0;
};

struct Simulator::Node {
  size_t index = 0;
  std::string url;
  std::unique_ptr<crypto::SigningKey> key;
  std::string key_hex;
  std::unique_ptr<SeededRandom> rng;
  std::unique_ptr<protocol::Engine> engine;
  // The node's "disk": events in the order stored (interned in Simulator::wires_).
  std::vector<const std::string*> persisted;
  std::string checkpoint;  // the package of the checkpoint stored (JSON), or empty
  bool up = false;
  bool silent = false;  // frozen: receives, sends and ticks nothing
  int64_t start_at = 0;
  int64_t down_until = 0;
  int64_t admitted_at = -1;
  uint64_t generation = 0;       // lives: a crash ends one, and the queues with it
  bool move_on_restart = false;  // MoveNow: restarts at a new URL with an empty disk
  uint64_t event_bytes_in = 0;   // event wires and checkpoint packages delivered to it
  uint64_t event_bytes_at_admission = 0;
  uint64_t tick_serial = 0;       // only the latest tick scheduled runs
  std::map<size_t, Link> queues;  // by destination; only the busy or failing ones
  NodeRelease release;
  std::unique_ptr<NodeApp> app;  // with AppDataConfig::writes > 0
};

Simulator::Simulator(SimConfig config)
    : config_(config),
      net_rng_(config.seed * 0x2545f4914f6cdd1dULL + 7),
      releases_(config.seed * 0x9e3779b97f4a7c15ULL + 11) {
  SeededRandom keys(config.seed);
  const std::string code = kGenesisCode;
  for (size_t i = 0; i < config_.nodes; ++i) {
    auto n = std::make_unique<Node>();
    n->index = i;
    n->url = UrlOf(i);
    n->key = std::make_unique<crypto::SigningKey>(KeyFrom(keys));
    n->key_hex = crypto::HexEncode(n->key->public_key().data(), 32);
    n->rng = std::make_unique<SeededRandom>(config.seed * 31 + i);
    legit_keys_.insert(crypto::HexEncode(n->key->public_key().data(), 32));
    by_url_[n->url] = i;
    nodes_.push_back(std::move(n));
  }
  for (int i = 0; i < 3; ++i) attacker_keys_.push_back(KeyFrom(keys));
  side_.assign(config_.nodes, 0);
  peak_queued_to_.assign(config_.nodes, 0);

  // Node 0 creates the network; nodes 1..founders-1 are founding members with it.
  const size_t founders = std::max<size_t>(1, std::min(config_.founders, config_.nodes));
  protocol::GenesisParams params;
  params.code_hash = code;
  for (size_t i = 1; i < founders; ++i) {
    params.founders.emplace_back(crypto::HexEncode(nodes_[i]->key->public_key().data(), 32),
                                 nodes_[i]->url);
  }
  auto genesis = protocol::MakeGenesis(*nodes_[0]->key, nodes_[0]->url, 0, params);
  const std::string wire = protocol::Encode(*genesis);
  const protocol::Ledger founded = std::move(protocol::Ledger::FromGenesis(wire)).value();
  for (size_t i = 0; i < founders; ++i) {
    nodes_[i]->persisted.push_back(Keep(wire));
    nodes_[i]->engine = std::make_unique<protocol::Engine>(
        EngineConfigFor(*nodes_[i]), *nodes_[i]->key, founded, nodes_[i]->rng.get());
    nodes_[i]->up = true;
    nodes_[i]->admitted_at = 0;
    ScheduleTick(static_cast<int64_t>(i % 100), i);
  }
  for (size_t i = founders; i < config_.nodes; ++i) {
    nodes_[i]->start_at =
        config_.joins_from_ms + static_cast<int64_t>(i - founders + 1) * config_.join_spacing_ms;
    ScheduleTick(nodes_[i]->start_at, i);
  }
  // Silent founders: never node 0 (every joiner's seed), and few enough that the others
  // still make a quorum of the founding members. Picked with a generator of their own, so a
  // run with silent nodes has the same keys and node randomness as the same seed without
  // (the network's draws differ once the traffic does).
  const size_t max_silent = founders - protocol::QuorumOf(params, founders);
  if (config_.silent > 0 && max_silent > 0) {
    std::vector<size_t> candidates;
    for (size_t i = 1; i < founders; ++i) candidates.push_back(i);
    SeededRandom pick(config_.seed * 0x9e3779b97f4a7c15ULL + 3);
    for (size_t k = 0; k < std::min(config_.silent, max_silent); ++k) {
      const size_t j = k + pick.Next() % (candidates.size() - k);
      std::swap(candidates[k], candidates[j]);
      silent_nodes_.push_back(candidates[k]);
    }
    std::sort(silent_nodes_.begin(), silent_nodes_.end());
    const bool thaws = config_.silent_until_ms > config_.silent_from_ms;
    if (thaws) thaw_at_ = config_.silent_until_ms;
    for (size_t i : silent_nodes_) {
      Push(MakeDelivery(config_.silent_from_ms, Kind::kFreeze, i));
      if (thaws) Push(MakeDelivery(config_.silent_until_ms, Kind::kThaw, i));
    }
  }
  for (size_t c = 0; c < config_.cuts.size(); ++c) {
    Push(MakeDelivery(config_.cuts[c].from_ms, Kind::kCut, 0, c));
    Push(MakeDelivery(config_.cuts[c].until_ms, Kind::kHeal, 0, c));
  }
  for (size_t k = 0; k < config_.release.plans.size(); ++k) {
    const ReleasePlan& p = config_.release.plans[k];
    Push(MakeDelivery(p.at_ms, Kind::kPublish, config_.release.publisher, k));
  }
  if (config_.appdata.writes > 0) {
    SeededRandom skews(config_.seed * 0x632be59bd9b4e019ULL + 5);
    for (size_t i = 0; i < config_.nodes; ++i) {
      auto a = std::make_unique<NodeApp>();
      a->db = config_.appdata.dir + "/node" + std::to_string(i) + ".db";
      const int64_t skew = config_.appdata.clock_skew_ms;
      a->clock = std::make_unique<SkewedClock>(&now_, skew > 0 ? skews.Between(-skew, skew) : 0);
      a->rng = std::make_unique<SeededRandom>(config_.seed * 77 + i);
      nodes_[i]->app = std::move(a);
      AppOpen(i);
    }
  }
}

void Simulator::AppOpen(size_t i) {
  Node& n = *nodes_[i];
  if (!n.app) return;
  NodeApp& a = *n.app;
  appdata::ReplicaOptions o;
  o.db_path = a.db;
  o.clock = a.clock.get();
  o.key = std::make_unique<crypto::SigningKey>(*n.key);
  SeededRandom* rng = a.rng.get();
  o.random = [rng] { return rng->Next(); };
  o.verify_cache = &verify_cache_;
  o.durable = false;
  auto r = appdata::Replica::Open(std::move(o));
  if (!r) return;  // CheckAppData reports it (no hash)
  a.replica = std::move(r).value();
  (void)a.replica->Declare(kAppPlugin, {{"notes", appdata::Rule::kMembers, false}});
  a.events_seen = static_cast<size_t>(-1);
}

// As the node's appdata service does at its tick, and the plugin's writes.
void Simulator::AppTick(size_t i) {
  Node& n = *nodes_[i];
  if (!n.app || !n.app->replica || !n.engine || !n.engine->is_member()) return;
  NodeApp& a = *n.app;
  const protocol::Ledger& l = *n.engine->ledger();
  std::vector<appdata::Peer> peers;
  const std::string self = key_of(i);
  for (const protocol::Member& m : l.state().members) {
    peers.push_back({m.key, m.url, m.key == self || n.engine->IsOnline(m.url, now_)});
  }
  if (l.size() != a.events_seen) {
    a.events_seen = l.size();
    a.replica->SetAuthority(protocol::AppAuthority(l), std::move(peers));
  } else {
    a.replica->SetPeers(std::move(peers));
  }
  const AppDataConfig& c = config_.appdata;
  if (now_ >= c.writes_from_ms && now_ < c.writes_until_ms && stats_.app_writes < c.writes &&
      a.rng->Unit() < c.write_chance) {
    const std::string key = "k" + std::to_string(a.rng->Next() % std::max<size_t>(1, c.keys));
    Status st = c.delete_one_in > 0 && a.rng->Next() % static_cast<uint64_t>(c.delete_one_in) == 0
                    ? a.replica->Delete(kAppPlugin, "notes", key)
                    : a.replica->Put(kAppPlugin, "notes", key,
                                     "v" + std::to_string(i) + "." + std::to_string(a.written));
    if (st.ok()) {
      ++a.written;
      ++stats_.app_writes;
    }
  }
  std::vector<appdata::Outgoing> out;
  a.replica->Tick(&out);
  AppEmit(i, out);
}

void Simulator::AppEmit(size_t from, std::vector<appdata::Outgoing>& out) {
  if (out.empty()) return;
  protocol::Output o;
  for (appdata::Outgoing& m : out) {
    auto body = json::Parse(m.body, {1 << 20, 32});  // as the daemon's envelope is read
    if (!body) continue;
    protocol::Envelope e;
    e.from = nodes_[from]->url;
    e.to = std::move(m.to);
    e.type = std::move(m.type);
    e.body = std::move(body).value();
    o.messages.push_back(std::move(e));
  }
  Emit(from, o);
}

std::string Simulator::app_data_hash(size_t node) const {
  const Node& n = *nodes_[node];
  return n.app && n.app->replica ? n.app->replica->DataHash(kAppPlugin) : "";
}

std::string Simulator::CheckAppData() const {
  if (config_.appdata.writes == 0) return "";
  std::string hash;
  for (const auto& n : nodes_) {
    if (n->silent) continue;
    if (!n->up || !n->app->replica) return "node " + std::to_string(n->index) + " is down";
    const std::string h = n->app->replica->DataHash(kAppPlugin);
    if (hash.empty()) hash = h;
    if (h != hash) return "node " + std::to_string(n->index) + " holds other app data";
  }
  return "";
}

Simulator::~Simulator() = default;

Simulator::Delivery Simulator::MakeDelivery(int64_t at, Kind kind, size_t node, size_t peer) {
  Delivery d;
  d.at = at;
  d.kind = kind;
  d.node = node;
  d.peer = peer;
  return d;
}

void Simulator::Push(Delivery d) {
  d.seq = seq_++;
  queue_.push(std::move(d));
}

void Simulator::ScheduleTick(int64_t at, size_t node) {
  Delivery d = MakeDelivery(at, Kind::kTick, node);
  d.generation = ++nodes_[node]->tick_serial;
  Push(std::move(d));
}

bool Simulator::Blocked(size_t a, size_t b) const {
  if (cut_links_.count({std::min(a, b), std::max(a, b)})) return true;
  return now_ < partition_until_ && side_[a] != side_[b];
}

void Simulator::SetLinkDown(size_t a, size_t b, bool down) {
  const auto key = std::make_pair(std::min(a, b), std::max(a, b));
  if (down) {
    cut_links_.insert(key);
  } else {
    cut_links_.erase(key);
  }
}

bool Simulator::SeesOnline(size_t observer, size_t target) const {
  const auto& o = nodes_[observer];
  return o->engine && o->engine->IsOnline(nodes_[target]->url, now_);
}

std::optional<size_t> Simulator::Enqueue(size_t from, protocol::Envelope e) {
  const std::string& t = e.type;
  if (t == "ping" || t == "pingreq" || t == "ack") {
    ++stats_.probe_messages;
  } else if (AppType(t)) {
    ++stats_.app_messages;
  } else {
    ++stats_.messages;
    if (t == "event") {
      ++stats_.event_messages;
    } else if (t == "sync" || t == "events") {
      ++stats_.sync_messages;
    } else {
      ++stats_.join_messages;
    }
  }
  auto to = by_url_.find(e.to);
  if (to == by_url_.end() || to->second == from) return std::nullopt;  // nobody there
  Node& n = *nodes_[from];
  Link& link = n.queues.try_emplace(to->second, config_.transport.queue).first->second;
  const bool droppable = Droppable(t);
  std::string supersedes = t == "sync" || t == "appsync" ? t : "";
  if (link.queue.Push(std::move(e), droppable, std::move(supersedes), now_) !=
      transport::Pushed::kQueued) {
    ++stats_.queue_dropped;
  }
  peak_queued_to_[to->second] = std::max(peak_queued_to_[to->second], link.queue.size());
  stats_.max_queued = std::max(stats_.max_queued, link.queue.size());
  return to->second;
}

void Simulator::Pump(size_t from, size_t to) {
  Node& n = *nodes_[from];
  auto it = n.queues.find(to);
  if (it == n.queues.end()) return;
  if (!n.up || n.silent) return;  // a frozen process starts nothing
  transport::PeerQueue<protocol::Envelope>& q = it->second.queue;
  stats_.queue_dropped += q.Expire(now_);
  while (auto m = q.Take(now_)) {
    const Node& dest = *nodes_[to];
    if (dest.up && !dest.silent) {
      stats_.max_wait_ms = std::max(stats_.max_wait_ms, now_ - m->queued_ms);
    }
    Transmit(from, to, std::move(m->payload), /*via_queue=*/true);
  }
  if (q.size() > 0 && q.backing_off(now_)) {
    // Wake up when the backoff ends.
    const int64_t hi = q.retry_at_ms();
    if (it->second.retry_at != hi) {
      it->second.retry_at = hi;
      Delivery d = MakeDelivery(hi, Kind::kRetry, from, to);
      d.generation = n.generation;
      Push(std::move(d));
    }
  } else if (q.idle() && q.failures() == 0) {
    n.queues.erase(it);  // indistinguishable from a new queue: keep no memory for it
  }
}

void Simulator::Transmit(size_t from, size_t to, protocol::Envelope e, bool via_queue) {
  Delivery d = MakeDelivery(0, Kind::kArrive, to, from);
  d.generation = from == kNobody ? 0 : nodes_[from]->generation;
  d.completes = via_queue;
  d.taken_at = now_;
  const bool faulty = now_ < config_.faults_until_ms;
  if (from != kNobody && Blocked(from, to)) {
    ++stats_.dropped;
    if (via_queue) {  // nothing answers across a cut: the exchange times out
      d.kind = Kind::kTimeout;
      d.node = from;
      d.peer = to;
      d.at = now_ + config_.transport.request_timeout_ms;
      Push(std::move(d));
    }
    return;
  }
  if (faulty && net_rng_.Unit() < config_.loss) {
    ++stats_.dropped;
    if (!via_queue) return;
    d.lost = true;  // the exchange still ends (and succeeds if the peer is there)
    d.at = now_ + net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms);
    Push(std::move(d));
    return;
  }
  if (e.type == "join" && !e.body.find("sponsor")) {
    captured_requests_.push_back(*e.body.find("request"));  // the attacker listens
  }
  const int64_t delay = net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms);
  if (faulty && net_rng_.Unit() < config_.duplication) {
    Delivery dup = d;
    dup.completes = false;
    dup.at = now_ + net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms);
    dup.envelope = e;
    Push(std::move(dup));
  }
  d.at = now_ + delay;
  d.envelope = std::move(e);
  Push(std::move(d));
}

void Simulator::Complete(size_t from, size_t to, uint64_t generation, bool ok) {
  Node& n = *nodes_[from];
  if (n.generation != generation) return;  // the sender crashed since: that queue is gone
  auto it = n.queues.find(to);
  if (it == n.queues.end()) return;
  it->second.queue.Done(ok, now_);
  if (!ok) ++stats_.exchanges_failed;
  Pump(from, to);
}

void Simulator::HeardFrom(size_t receiver, size_t sender) {
  Node& n = *nodes_[receiver];
  auto it = n.queues.find(sender);
  if (it == n.queues.end() || it->second.queue.failures() == 0) return;
  it->second.queue.Heard();  // it answers again: no more backoff for it
  Pump(receiver, sender);
}

void Simulator::Route(protocol::Envelope e) {
  auto to = by_url_.find(e.to);
  if (to == by_url_.end()) return;
  auto from = by_url_.find(e.from);
  Transmit(from == by_url_.end() ? kNobody : from->second, to->second, std::move(e),
           /*via_queue=*/false);
}

void Simulator::Emit(size_t from, protocol::Output& out) {
  Node& n = *nodes_[from];
  // Persist first, then send: what is acknowledged is on "disk". A new checkpoint replaces
  // what is stored by its package and the events above its cut.
  if (out.rebased && n.engine && n.engine->ledger()) {
    const protocol::Ledger& l = *n.engine->ledger();
    n.persisted.clear();
    for (const std::string& w : l.StoredEvents()) n.persisted.push_back(Keep(w));
    n.checkpoint = json::Serialize(l.CheckpointPackage());
  } else {
    for (const std::string& w : out.new_events) n.persisted.push_back(Keep(w));
  }
  // Queue all, then start them (the transport pumps after the whole output is queued, so a
  // second sync in one output replaces the first before either goes out).
  std::vector<size_t> touched;
  for (auto& e : out.messages) {
    if (auto to = Enqueue(from, std::move(e))) touched.push_back(*to);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (size_t to : touched) Pump(from, to);
}

void Simulator::NoteAdmitted(size_t i) {
  Node& n = *nodes_[i];
  if (n.admitted_at < 0 && n.engine && n.engine->is_member()) {
    n.admitted_at = now_;
    n.event_bytes_at_admission = n.event_bytes_in;
  }
}

void Simulator::CrashNow(size_t node, int64_t down_ms) { Crash(node, down_ms); }

void Simulator::Crash(size_t i, int64_t down_ms) {
  Node& n = *nodes_[i];
  n.up = false;
  n.engine.reset();
  n.queues.clear();             // with the process; what is on the wire still arrives
  n.release.in_flight.clear();  // and the fetcher's memory
  n.release.tried.clear();
  n.release.retry_at.clear();
  if (n.app) n.app->replica.reset();  // closed with the process; its file stays
  n.down_until = now_ + (down_ms > 0 ? down_ms : net_rng_.Between(300, 2000));
  ++n.generation;
  ScheduleTick(n.down_until, i);
}

void Simulator::MoveNow(size_t node, int64_t down_ms) {
  Crash(node, down_ms);
  nodes_[node]->move_on_restart = true;
}

protocol::EngineConfig Simulator::EngineConfigFor(const Node& n) {
  protocol::EngineConfig ec;
  ec.url = n.url;
  ec.code_hash = n.release.code;  // the recorded release's (release.json)
  ec.verify_cache = &verify_cache_;
  ec.event_pool = &event_pool_;
  ec.checkpoint_every = config_.checkpoint_every;
  ec.checkpoint_fallback_ms = config_.checkpoint_fallback_ms;
  ec.checkpoint_quiet_ms = config_.checkpoint_quiet_ms;
  ec.checkpoint_quiet_events = config_.checkpoint_quiet_events;
  return ec;
}

Result<protocol::Ledger> Simulator::LoadDisk(const Node& n, protocol::EventPool* pool,
                                             crypto::VerifyCache* cache, bool strict) const {
  Result<protocol::Ledger> ledger = Status::Error("empty", "nothing stored");
  if (n.checkpoint.empty()) {
    ledger = protocol::Ledger::FromGenesis(*n.persisted.front());
  } else {
    auto package = json::Parse(n.checkpoint, {.max_bytes = 64 << 20});
    if (!package) return package.status();
    ledger = protocol::Ledger::FromCheckpoint(*n.persisted.front(), *package);
  }
  if (!ledger) return Status::Error("bad_disk", "stored checkpoint: " + ledger.status().message());
  ledger->set_verify_cache(cache);
  ledger->set_event_pool(pool);
  for (size_t k = 1; k < n.persisted.size(); ++k) {
    auto r = ledger->Add(*n.persisted[k]);
    if (!r && strict) {
      return Status::Error("bad_disk", "stored an invalid event: " + r.status().message());
    }
  }
  return ledger;
}

void Simulator::Restart(size_t i) {
  Node& n = *nodes_[i];
  if (n.move_on_restart) {  // nobody answers at the old URL any more
    n.move_on_restart = false;
    by_url_.erase(n.url);
    n.url = UrlOf(i) + "." + std::to_string(n.generation);
    by_url_[n.url] = i;
    n.persisted.clear();
    n.checkpoint.clear();
  }
  const protocol::EngineConfig ec = EngineConfigFor(n);
  n.release.switched_at = now_;  // the daemon's resume starts the health watch anew
  AppOpen(i);
  if (!n.persisted.empty()) {
    auto ledger = LoadDisk(n, &event_pool_, nullptr, /*strict=*/false);
    if (ledger && ledger->IsMember(crypto::HexEncode(n.key->public_key().data(), 32))) {
      n.engine =
          std::make_unique<protocol::Engine>(ec, *n.key, std::move(ledger).value(), n.rng.get());
      n.up = true;
      return;
    }
  }
  n.engine = std::make_unique<protocol::Engine>(ec, *n.key, UrlOf(0), n.rng.get());
  n.up = true;
}

void Simulator::Handle(Delivery& d) {
  Node& n = *nodes_[d.node];
  switch (d.kind) {
    case Kind::kArrive:
      return Arrive(d);
    case Kind::kTimeout:
      return Complete(d.node, d.peer, d.generation, /*ok=*/false);
    case Kind::kRetry:
      if (d.generation != n.generation) return;
      if (auto it = n.queues.find(d.peer); it != n.queues.end() && it->second.retry_at == d.at) {
        it->second.retry_at = -1;
      }
      return Pump(d.node, d.peer);
    case Kind::kFreeze:
      n.silent = true;  // its pending tick finds it so and stops
      return;
    case Kind::kThaw: {
      n.silent = false;
      ScheduleTick(now_, d.node);
      std::vector<size_t> peers;
      for (const auto& [to, link] : n.queues) peers.push_back(to);
      for (size_t to : peers) Pump(d.node, to);  // what waited too long expires now
      return;
    }
    case Kind::kCut:
    case Kind::kHeal:
      for (size_t a : config_.cuts[d.peer].a) {
        for (size_t b : config_.cuts[d.peer].b) SetLinkDown(a, b, d.kind == Kind::kCut);
      }
      return;
    case Kind::kPublish:
      return Publish(d.peer);
    case Kind::kFetch:
      return ServeFetch(d);
    case Kind::kFetched:
      return FetchDone(d);
    case Kind::kTick:
      break;
  }
  if (d.generation != n.tick_serial) return;  // superseded (a crash, a thaw)
  if (n.silent) return;                       // frozen: the thaw starts ticking again
  if (!n.up) {
    if (n.persisted.empty() && !n.engine && now_ >= n.start_at && n.down_until == 0) {
      // A joiner starting: it knows the genesis node's URL (its seed).
      n.engine =
          std::make_unique<protocol::Engine>(EngineConfigFor(n), *n.key, UrlOf(0), n.rng.get());
      n.up = true;
    } else if (n.down_until != 0 && now_ >= n.down_until) {
      Restart(d.node);
    } else {
      return;
    }
  }
  protocol::Output out;
  n.engine->Tick(now_, &out);
  Emit(d.node, out);
  NoteAdmitted(d.node);
  if (!config_.release.plans.empty()) ReleaseTick(d.node);
  AppTick(d.node);
  ScheduleTick(now_ + config_.tick_ms, d.node);
}

void Simulator::Arrive(Delivery& d) {
  Node& n = *nodes_[d.node];
  if (!n.up || n.silent) {
    if (!d.lost) ++stats_.dropped;
    if (d.completes) {
      if (n.silent) {  // it took the connection and never answers
        Delivery t = MakeDelivery(d.taken_at + config_.transport.request_timeout_ms, Kind::kTimeout,
                                  d.peer, d.node);
        t.generation = d.generation;
        Push(std::move(t));
      } else {  // nobody listens there: refused at once
        Complete(d.peer, d.node, d.generation, /*ok=*/false);
      }
    }
    return;
  }
  if (!d.lost && AppType(d.envelope.type)) {
    // As the daemon: from members only (by the receiver's ledger), never to the engine.
    const protocol::Ledger* l = n.engine->ledger();
    if (d.peer != kNobody && n.app && n.app->replica && l && l->IsMember(key_of(d.peer))) {
      HeardFrom(d.node, d.peer);
      std::vector<appdata::Outgoing> out;
      (void)n.app->replica->Receive(key_of(d.peer), nodes_[d.peer]->url, d.envelope.type,
                                    d.envelope.body, &out);
      AppEmit(d.node, out);
    }
  } else if (!d.lost) {
    if (const std::string* w = d.envelope.body.find_string("event");
        w && d.envelope.type == "event") {
      n.event_bytes_in += w->size();
    } else if (const json::Value* l = d.envelope.body.find("events");
               l && l->is_array() && d.envelope.type == "events") {
      for (const json::Value& v : l->as_array())
        n.event_bytes_in += v.is_string() ? v.as_string().size() : 0;
      if (const json::Value* package = d.envelope.body.find("checkpoint")) {
        n.event_bytes_in += json::Serialize(*package).size();
      }
    }
    if (d.peer != kNobody) {
      HeardFrom(d.node, d.peer);
      // As the daemon's envelope is opened: a member's key speaks from its ledger URL.
      protocol::BindSender(&d.envelope, key_of(d.peer), n.engine->ledger());
    }
    protocol::Output out;
    n.engine->Receive(d.envelope, now_, &out);
    Emit(d.node, out);
    NoteAdmitted(d.node);
  }
  if (d.completes) Complete(d.peer, d.node, d.generation, /*ok=*/true);
}

void Simulator::Attack() {
  if (captured_requests_.empty()) return;
  const json::Value& captured = captured_requests_[net_rng_.Next() % captured_requests_.size()];
  auto request = protocol::ParseJoinRequest(captured);
  if (!request) return;
  const size_t target = net_rng_.Next() % nodes_.size();
  const std::string to = nodes_[target]->url;
  const std::string attacker = "sim://attacker";
  auto send = [&](std::string type, json::Value body) {
    ++stats_.forged_injected;
    Route(protocol::Envelope{attacker, to, std::move(type), std::move(body)});
  };
  const crypto::SigningKey& evil = attacker_keys_[net_rng_.Next() % attacker_keys_.size()];
  // With checkpoints, one forgery in three is a checkpoint's.
  if (config_.checkpoint_every > 0 && net_rng_.Next() % 3 == 0) {
    const protocol::Ledger* l = nodes_[target]->engine ? nodes_[target]->engine->ledger() : nullptr;
    if (!l) return;
    if (net_rng_.Next() % 2 == 0) {
      // The true state at the target's heads, "approved" by the attacker's keys.
      auto p = l->ProposeCheckpoint();
      if (!p) return;
      std::vector<protocol::Approval> approvals;
      for (const auto& k : attacker_keys_) {
        approvals.push_back(protocol::MakeCheckpointApproval(k, l->network_id(), *p));
      }
      protocol::Event e;
      e.kind = "checkpoint";
      e.parents = p->cut;
      e.time_ms = now_;
      e.body = protocol::Ledger::CheckpointBody(*p, approvals);
      auto signed_event = protocol::Sign(std::move(e), evil);
      send("event", json::Object{{"event", protocol::Encode(*signed_event)}});
      return;
    }
    // A real checkpoint's package whose state names the attacker a member.
    for (const auto& n : nodes_) {
      const protocol::Ledger* held = n->engine ? n->engine->ledger() : nullptr;
      if (!held || held->checkpoint_seq() == 0) continue;
      json::Value package = held->CheckpointPackage();
      json::Array& members =
          package.as_object()["state"].as_object()["state"].as_object()["members"].as_array();
      members.push_back(json::Object{
          {"joined", now_},
          {"key", crypto::HexEncode(evil.public_key().data(), evil.public_key().size())},
          {"url", attacker},
          {"via", ""}});
      send("events", json::Object{{"checkpoint", std::move(package)},
                                  {"events", json::Array{held->genesis_wire()}},
                                  {"heads", json::Array{}}});
      return;
    }
    return;
  }
  switch (net_rng_.Next() % 5) {
    case 0:  // replay a captured request as is (stale later, or of an admitted member)
      send("join", json::Object{{"request", captured}});
      break;
    case 1: {  // forged approvals from non-members, sent to the would-be sponsor
      auto a = protocol::MakeApproval(evil, request->network, request->Hash());
      send("approval", json::Object{{"approval", a.ToJson()}, {"request", request->Hash()}});
      break;
    }
    case 2: {  // the attacker's own key in a request whose URL is a real node's
      auto forged = protocol::MakeJoinRequest(evil, to, "c0de", request->network, "ee", now_);
      send("join", json::Object{{"request", forged.ToJson()}});
      break;
    }
    case 3: {  // a tampered request: the signature no longer matches
      json::Value tampered = captured;
      tampered.as_object()["key"] =
          crypto::HexEncode(evil.public_key().data(), evil.public_key().size());
      send("join", json::Object{{"request", tampered}});
      break;
    }
    default: {  // a member-added event admitting the attacker with a forged certificate
      auto own = protocol::MakeJoinRequest(evil, attacker, "c0de", request->network, "ff", now_);
      std::vector<protocol::Approval> approvals;
      for (const auto& k : attacker_keys_) {
        approvals.push_back(protocol::MakeApproval(k, request->network, own.Hash()));
      }
      protocol::Event e;
      e.kind = "member-added";
      const protocol::Ledger* l =
          nodes_[target]->engine ? nodes_[target]->engine->ledger() : nullptr;
      if (!l) return;
      e.parents = l->Heads();
      e.time_ms = now_;
      e.body = protocol::Ledger::MemberAddedBody(own, approvals);
      auto signed_event = protocol::Sign(std::move(e), evil);
      send("event", json::Object{{"event", protocol::Encode(*signed_event)}});
    }
  }
}

bool Simulator::Converged() const {
  if (!CheckConvergence().empty()) return false;
  return config_.appdata.writes == 0 ||
         (now_ >= config_.appdata.writes_until_ms && CheckAppData().empty());
}

namespace {

// Takes the earliest delivery out of the heap without copying its envelope: the heap orders
// by (at, seq) only, which a move leaves intact, so pop() is still correct afterwards.
template <typename Heap>
auto PopTop(Heap& heap) {
  auto d = std::move(const_cast<typename Heap::value_type&>(heap.top()));
  heap.pop();
  return d;
}

}  // namespace

void Simulator::RunUntil(int64_t until_ms) {
  while (!queue_.empty() && queue_.top().at <= until_ms) {
    Delivery d = PopTop(queue_);
    now_ = d.at;
    Handle(d);
  }
  now_ = until_ms;
}

void Simulator::Run(bool stop_when_converged) {
  int64_t next_fault = 200;
  int64_t next_attack = 50;
  int64_t next_check = 0;  // convergence is checked every 50 simulated ms, not per delivery
  while (!queue_.empty() && queue_.top().at <= config_.run_ms) {
    Delivery d = PopTop(queue_);
    now_ = d.at;
    // Fault injection happens between deliveries, at seeded times.
    if (now_ < config_.faults_until_ms && now_ >= next_fault) {
      next_fault = now_ + net_rng_.Between(200, 1500);
      if (config_.partitions && net_rng_.Unit() < 0.4) {
        for (size_t i = 0; i < side_.size(); ++i) side_[i] = net_rng_.Next() % 2;
        partition_until_ = std::min(config_.faults_until_ms, now_ + net_rng_.Between(200, 1500));
      }
      if (config_.crashes && net_rng_.Unit() < 0.4) {
        const size_t i = net_rng_.Next() % nodes_.size();
        const Node& n = *nodes_[i];
        if (n.up && !n.silent && n.engine && n.engine->is_member()) Crash(i);
      }
    }
    if (config_.adversary && now_ >= next_attack) {
      next_attack = now_ + net_rng_.Between(20, 200);
      Attack();
    }
    Handle(d);
    // Checked until converged, and again after a thaw until the thawed nodes caught up.
    const bool thawed = thaw_at_ >= 0 && now_ >= thaw_at_;
    const bool pending = stats_.converged_at_ms < 0 || (thawed && stats_.caught_up_at_ms < 0);
    if (pending && now_ >= config_.faults_until_ms && now_ >= next_check) {
      next_check = now_ + 50;
      if (Converged()) {
        if (stats_.converged_at_ms < 0) stats_.converged_at_ms = now_;
        if (thawed) stats_.caught_up_at_ms = now_;
        if (stop_when_converged && (thaw_at_ < 0 || thawed)) return;
      }
    }
  }
}

size_t Simulator::members_at(size_t node) const {
  const auto& n = nodes_[node];
  return n->engine && n->engine->ledger() ? n->engine->ledger()->state().members.size() : 0;
}

int64_t Simulator::started_at(size_t node) const { return nodes_[node]->start_at; }

int64_t Simulator::admitted_at(size_t node) const { return nodes_[node]->admitted_at; }

size_t Simulator::queued_to(size_t node) const {
  size_t n = 0;
  for (const auto& from : nodes_) {
    if (auto it = from->queues.find(node); it != from->queues.end()) n += it->second.queue.size();
  }
  return n;
}

std::string Simulator::CheckConvergence() const {
  const protocol::Ledger* first = nullptr;
  std::vector<std::string> heads;
  for (const auto& n : nodes_) {
    if (n->silent) continue;  // still frozen: it catches up after its thaw
    if (!n->up || !n->engine) return "node " + std::to_string(n->index) + " is down";
    if (!n->engine->is_member()) return "node " + std::to_string(n->index) + " never joined";
    const protocol::Ledger* l = n->engine->ledger();
    if (!first) {
      first = l;
      heads = l->Heads();
      continue;
    }
    // The same heads are the same events, so the same state (CheckSafety checks the fold):
    // only ledgers with other heads need their state hashes compared.
    if (l->Heads() != heads && l->StateHash() != first->StateHash()) {
      return "node " + std::to_string(n->index) + " has another state hash";
    }
  }
  const size_t members = nodes_.front()->engine->ledger()->state().members.size();
  if (members != nodes_.size()) {
    return "the network has " + std::to_string(members) + " members, expected " +
           std::to_string(nodes_.size());
  }
  return "";
}

std::string Simulator::CheckSafety() const {
  // Its own pool and cache: every event and signature judged here once, apart from the engines.
  crypto::VerifyCache safety_cache(1 << 20);
  protocol::EventPool safety_pool;
  // Nodes that stored the same events in the same order are replayed once (at N = 1000 most
  // of them did). Of the nodes holding the same heads, the first 64 have their folded state
  // compared with the replayed one (each comparison costs O(N): all of them would make the
  // check O(N^2) at N = 10,000; every node of the tests' networks is compared).
  std::set<std::pair<std::vector<const std::string*>, std::string>> replayed;
  std::map<std::vector<std::string>, std::pair<std::string, size_t>> rebuilt;  // heads -> (hash, n)
  for (const auto& n : nodes_) {
    if (n->persisted.empty()) continue;
    // The state the engine holds, folded event by event, is the one replayed from scratch.
    if (const protocol::Ledger* live = n->engine ? n->engine->ledger() : nullptr) {
      auto [it, fresh] = rebuilt.try_emplace(live->Heads());
      if (fresh) it->second.first = live->RebuiltStateHash();
      if (++it->second.second <= 64 && live->StateHash() != it->second.first) {
        return "node " + std::to_string(n->index) +
               ": its incremental state is not the replayed one";
      }
    }
    // Replaying a node's stored events into a fresh ledger must accept every one of them:
    // nothing entered without a valid certificate as of its parents.
    if (!replayed.insert({n->persisted, n->checkpoint}).second) continue;
    auto ledger = LoadDisk(*n, &safety_pool, &safety_cache, /*strict=*/true);
    if (!ledger) return "node " + std::to_string(n->index) + ": " + ledger.status().message();
    for (const protocol::Member& m : ledger->state().members) {
      if (!legit_keys_.count(m.key)) {
        return "node " + std::to_string(n->index) + " admitted a key nobody legit holds";
      }
    }
  }
  return "";
}

// ---- the release model ----------------------------------------------------------------

namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

template <typename T>
void Shuffle(std::vector<T>* list, SeededRandom& rng) {
  for (size_t i = list->size(); i > 1; --i) std::swap((*list)[i - 1], (*list)[rng.Next() % i]);
}

}  // namespace

const PublishedRelease* Simulator::FindRelease(const std::string& id) const {
  auto it = releases_.by_event.find(id);
  return it == releases_.by_event.end() ? nullptr : &releases_.published[it->second];
}

void Simulator::Publish(size_t plan) {
  const ReleasePlan& p = config_.release.plans[plan];
  const size_t from = config_.release.publisher;
  Node& n = *nodes_[from];
  // Not now (down, silent, not a member yet, or the plan before is not out): at the next tick.
  if (plan != releases_.published.size() || !n.up || n.silent || !n.engine ||
      !n.engine->is_member()) {
    Push(MakeDelivery(now_ + config_.tick_ms, Kind::kPublish, from, plan));
    return;
  }
  protocol::Manifest m;
  m.network = n.engine->ledger()->network_id();
  m.version = static_cast<int64_t>(plan) + 1;
  m.created_ms = now_;
  m.expires_ms = now_ + 86400000;
  m.rollout = p.rollout;
  for (size_t j = 0; j < p.files; ++j) {
    // File 0 is the same in every release (an unchanged plugin); the others change each time.
    std::string content = "sim " + std::to_string(config_.seed) + " file " + std::to_string(j);
    if (j > 0) content += " of version " + std::to_string(m.version);
    protocol::FileEntry f;
    f.role = j % 2 == 0 ? "plugin" : "front";
    f.path = j % 2 == 0 ? "p" + std::to_string(j) + ".so" : "app/f" + std::to_string(j) + ".js";
    f.sha256 = crypto::Sha256Hex(content);
    f.size = p.file_bytes + static_cast<int64_t>(j) * 1000;
    releases_.blob_bytes[f.sha256] = f.size;
    m.files.push_back(std::move(f));
  }
  std::sort(m.files.begin(), m.files.end(), [](const auto& a, const auto& b) {
    return std::tie(a.role, a.path) < std::tie(b.role, b.path);
  });
  // Node 0 made the network: its key is the only publisher.
  const std::vector<protocol::PublisherSignature> sigs{protocol::SignManifest(*nodes_[0]->key, m)};
  protocol::Output out;
  const Status published = n.engine->PublishRelease(m, sigs, now_, &out);
  if (!published.ok() || out.new_events.empty()) {
    if (releases_.violation.empty()) {
      releases_.violation = "at " + std::to_string(now_) + " ms release " +
                            std::to_string(m.version) +
                            " was not published: " + published.message();
    }
    return;
  }
  PublishedRelease r;
  r.event = protocol::HashOf(out.new_events.back());
  r.time_ms = now_;
  r.code = m.CodeHash();
  r.manifest = std::move(m);
  r.plan = plan;
  // The publishing node holds the files (the daemon refuses to publish without them).
  for (size_t h : p.holders) {
    for (const auto& f : r.manifest.files) nodes_[h]->release.blobs.insert(f.sha256);
  }
  for (const auto& f : r.manifest.files) n.release.blobs.insert(f.sha256);
  releases_.by_event[r.event] = releases_.published.size();
  releases_.published.push_back(std::move(r));
  Emit(from, out);
}

void Simulator::ReleaseTick(size_t i) {
  Node& n = *nodes_[i];
  CheckWhole(i);
  if (!n.up || n.silent || !n.engine || !n.engine->ledger()) return;  // waits for a ledger
  HealthWatch(i);
  NodeRelease& r = n.release;
  const protocol::NetworkState& st = n.engine->ledger()->state();
  const std::vector<std::string> accepted = st.AcceptedCodes();
  const bool running_accepted = accepted.empty() || Contains(accepted, r.code);
  release::Target target = release::Target::kKeep;
  if (const PublishedRelease* current = FindRelease(st.release.event)) {
    static const std::map<std::string, protocol::NetworkState::Report> kNone;
    auto reports = st.reports.find(current->event);
    const release::RolloutView view =
        release::Evaluate(current->manifest.rollout, current->event, st.release.time_ms, st.members,
                          reports == st.reports.end() ? kNone : reports->second);
    const int64_t stage =
        release::StageOf(n.engine->key_hex(), current->event, current->manifest.rollout.stages);
    target = release::Decide(view, n.engine->is_member(), stage, running_accepted, now_);
  } else if (!running_accepted) {
    target = release::Target::kCurrent;  // release 0: the local files will do
  }
  const protocol::NetworkState::ReleaseRef* want = target == release::Target::kCurrent ? &st.release
                                                   : target == release::Target::kPrevious
                                                       ? &st.previous
                                                       : nullptr;
  if (!want || want->code == r.code) return;  // nothing to do, or there already
  const PublishedRelease* w = FindRelease(want->event);
  if (!w) {
    // Release 0: every node has those files.
    if (want->code == kGenesisCode) SwitchTo(i, kGenesisRelease);
    return;
  }
  if (r.failed.count(w->event)) return;  // failed here: waits for a newer one
  if (PumpFetches(i, w->manifest, FetchPeers(i, *w))) SwitchTo(i, w->event);
}

void Simulator::HealthWatch(size_t i) {
  Node& n = *nodes_[i];
  NodeRelease& r = n.release;
  const PublishedRelease* p = FindRelease(r.running);
  if (!p || r.failed.count(r.running)) return;
  // As the manager: the policy of the release in force or the one before, if it is either.
  const protocol::NetworkState& st = n.engine->ledger()->state();
  const bool listed = st.release.event == p->event || st.previous.event == p->event;
  const int64_t soak = listed ? p->manifest.rollout.soak_ms : 0;
  const int64_t since = now_ - r.switched_at;
  // Healthy once it ran a second (the daemon's crash window), whenever the node is a member by
  // then (a joiner reports once admitted); the soak is waited after the report (rollout.h);
  // failures only within the watch window.
  if (since >= 1000 && !r.healthy.count(r.running)) Report(i, r.running, "healthy", "");
  if (since > std::max(config_.release.watch_ms, soak)) return;  // the watch is over
  const auto& fails = config_.release.plans[p->plan].fails_on;
  if (std::find(fails.begin(), fails.end(), i) != fails.end() &&
      since >= config_.release.fail_after_ms) {
    GoBack(i, "fails on node " + std::to_string(i) + " (the scenario says so)");
  }
}

bool Simulator::Report(size_t i, const std::string& release, const std::string& status,
                       const std::string& reason) {
  Node& n = *nodes_[i];
  if (!n.engine->is_member()) return false;  // a joiner has no voice yet
  protocol::Output out;
  const Status s = n.engine->ReportRelease(release, status, reason, now_, &out);
  Emit(i, out);
  if (!s.ok()) return false;
  if (status == "healthy") {
    n.release.healthy.insert(release);
    ++releases_.stats.healthy_reports;
  } else {
    ++releases_.stats.failed_reports;
  }
  return true;
}

void Simulator::GoBack(size_t i, const std::string& reason) {
  NodeRelease& r = nodes_[i]->release;
  const std::string failed = r.running;
  r.failed.insert(failed);
  Report(i, failed, "failed", reason);
  ++releases_.stats.go_backs;
  const std::string back = r.before;  // a copy: the switch overwrites r.before
  SwitchTo(i, back);                  // it ran before: its files are still here
}

void Simulator::SwitchTo(size_t i, const std::string& release) {
  Node& n = *nodes_[i];
  NodeRelease& r = n.release;
  if (r.running == release) return;
  const PublishedRelease* p = FindRelease(release);
  releases_.switches.push_back({now_, i, r.running, release, n.engine->is_member()});
  r.before = r.running;
  r.running = release;
  r.code = p ? p->code : kGenesisCode;
  r.switched_at = now_;
  n.engine->SetCodeHash(r.code);
  CheckWhole(i);
}

std::vector<size_t> Simulator::FetchPeers(size_t i, const PublishedRelease& r) {
  const protocol::NetworkState& st = nodes_[i]->engine->ledger()->state();
  const std::string& self = nodes_[i]->engine->key_hex();
  std::vector<size_t> first, healthy, rest;
  auto index_of = [&](const std::string& url) -> std::optional<size_t> {
    auto it = by_url_.find(url);
    if (it == by_url_.end() || it->second == i) return std::nullopt;
    return it->second;
  };
  // The author first: its key from the event in this node's ledger.
  if (const std::string* wire = nodes_[i]->engine->ledger()->Wire(r.event)) {
    if (auto e = protocol::Decode(*wire)) {
      if (const protocol::Member* a = st.FindMemberByKey(e->author)) {
        if (auto at = index_of(a->url)) first.push_back(*at);
      }
    }
  }
  // Then the members, by key (as the manager's map of member URLs), healthy reporters first.
  std::map<std::string, std::string> urls;
  for (const protocol::Member& m : st.members) {
    if (m.key != self) urls[m.key] = m.url;
  }
  auto reports = st.reports.find(r.event);
  for (const auto& [key, url] : urls) {
    auto at = index_of(url);
    if (!at || (!first.empty() && *at == first.front())) continue;
    const bool is_healthy = reports != st.reports.end() && reports->second.count(key) &&
                            reports->second.at(key).status == "healthy";
    (is_healthy ? healthy : rest).push_back(*at);
  }
  Shuffle(&healthy, releases_.rng);
  Shuffle(&rest, releases_.rng);
  first.insert(first.end(), healthy.begin(), healthy.end());
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

bool Simulator::PumpFetches(size_t i, const protocol::Manifest& m,
                            const std::vector<size_t>& peers) {
  NodeRelease& r = nodes_[i]->release;
  size_t missing = 0;
  for (const protocol::FileEntry& f : m.files) {
    if (r.blobs.count(f.sha256)) continue;
    ++missing;
    if (r.in_flight.count(f.sha256) || r.in_flight.size() >= config_.release.parallel_fetches) {
      continue;
    }
    if (auto it = r.retry_at.find(f.sha256); it != r.retry_at.end()) {
      if (now_ < it->second) continue;
      r.retry_at.erase(it);
    }
    const std::set<size_t>& tried = r.tried[f.sha256];
    auto next = std::find_if(peers.begin(), peers.end(), [&](size_t p) { return !tried.count(p); });
    if (next == peers.end()) {
      // Every peer failed it: start over after a pause (one may have it by then).
      r.tried.erase(f.sha256);
      r.retry_at[f.sha256] = now_ + config_.release.retry_after_ms;
      continue;
    }
    StartFetch(i, *next, f.sha256);
  }
  return missing == 0;
}

int64_t Simulator::FetchDeadline(int64_t asked_at, const std::string& blob) const {
  const int64_t rate = std::max<int64_t>(1, config_.release.min_rate_bytes_per_s);
  return asked_at + config_.release.fetch_timeout_ms + releases_.blob_bytes.at(blob) * 1000 / rate;
}

void Simulator::StartFetch(size_t client, size_t server, const std::string& blob) {
  nodes_[client]->release.in_flight[blob] = server;
  ++releases_.stats.fetches;
  Delivery d = MakeDelivery(0, Kind::kFetch, server, client);
  d.generation = nodes_[client]->generation;
  d.taken_at = now_;
  d.blob = blob;
  const bool faulty = now_ < config_.faults_until_ms;
  if (Blocked(client, server) || (faulty && net_rng_.Unit() < config_.loss)) {
    // The request never arrives: no answer by the deadline.
    d.kind = Kind::kFetched;
    d.node = client;
    d.peer = server;
    d.at = FetchDeadline(now_, blob);
  } else {
    d.at = now_ + net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms);
  }
  Push(std::move(d));
}

bool Simulator::Serves(size_t server, const std::string& blob) const {
  const Node& s = *nodes_[server];
  if (!s.engine || !s.engine->ledger() || !s.release.blobs.count(blob)) return false;
  // Only the files of the releases in force and before, in its own ledger (HandleBlob).
  const protocol::NetworkState& st = s.engine->ledger()->state();
  for (const std::string* event : {&st.release.event, &st.previous.event}) {
    if (const PublishedRelease* p = FindRelease(*event)) {
      for (const protocol::FileEntry& f : p->manifest.files) {
        if (f.sha256 == blob) return true;
      }
    }
  }
  return false;
}

void Simulator::ServeFetch(const Delivery& d) {
  const size_t server = d.node, client = d.peer;
  const Node& s = *nodes_[server];
  const int64_t deadline = FetchDeadline(d.taken_at, d.blob);
  Delivery back = MakeDelivery(deadline, Kind::kFetched, client, server);
  back.generation = d.generation;
  back.blob = d.blob;
  const int64_t delay = net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms);
  const bool faulty = now_ < config_.faults_until_ms;
  if (!s.up) {
    back.at = std::min(deadline, now_ + delay);  // refused at once
  } else if (s.silent || Blocked(server, client) || (faulty && net_rng_.Unit() < config_.loss)) {
    // No answer (frozen, cut off, or the answer lost): the deadline passes.
  } else {
    const bool found = Serves(server, d.blob);  // else a 404, at once
    const int64_t speed = std::max<int64_t>(1, config_.release.bytes_per_ms);
    const int64_t body = found ? releases_.blob_bytes.at(d.blob) / speed : 0;
    if (now_ + body + delay < deadline) {
      back.at = now_ + body + delay;
      back.found = found;
    }
  }
  Push(std::move(back));
}

void Simulator::FetchDone(const Delivery& d) {
  Node& n = *nodes_[d.node];
  if (n.generation != d.generation) return;  // the node crashed since: the fetch died with it
  NodeRelease& r = n.release;
  r.in_flight.erase(d.blob);
  if (d.found && n.up && !n.silent) {
    r.blobs.insert(d.blob);
    r.tried.erase(d.blob);
    ++releases_.stats.blobs_fetched;
  } else {
    r.tried[d.blob].insert(d.peer);
    ++releases_.stats.fetches_failed;
  }
  ReleaseTick(d.node);  // the answer wakes the manager
}

std::string Simulator::WholeRelease(size_t i) const {
  const NodeRelease& r = nodes_[i]->release;
  if (r.running == kGenesisRelease) {
    return r.code == kGenesisCode ? "" : "runs release 0 with code " + r.code.substr(0, 16);
  }
  const PublishedRelease* p = FindRelease(r.running);
  if (!p) return "runs " + r.running.substr(0, 16) + ", which was never published";
  if (r.code != p->code) {
    return "runs version " + std::to_string(p->manifest.version) + " with another code";
  }
  for (const protocol::FileEntry& f : p->manifest.files) {
    if (!r.blobs.count(f.sha256)) {
      return "runs version " + std::to_string(p->manifest.version) + " without " + f.path;
    }
  }
  return "";
}

void Simulator::CheckWhole(size_t i) {
  if (!releases_.violation.empty()) return;
  const std::string why = WholeRelease(i);
  if (!why.empty()) {
    releases_.violation =
        "at " + std::to_string(now_) + " ms node " + std::to_string(i) + " " + why;
  }
}

std::string Simulator::CheckReleases() const {
  if (!releases_.violation.empty()) return releases_.violation;
  for (const auto& n : nodes_) {
    const std::string why = WholeRelease(n->index);
    if (!why.empty()) return "node " + std::to_string(n->index) + " " + why;
    if (!n->up || n->silent || !n->engine || !n->engine->ledger()) continue;
    const std::vector<std::string> accepted = n->engine->ledger()->state().AcceptedCodes();
    if (!accepted.empty() && !Contains(accepted, n->release.code)) {
      return "node " + std::to_string(n->index) + " runs a code its ledger does not accept";
    }
  }
  return "";
}

const std::string& Simulator::running_release(size_t node) const {
  return nodes_[node]->release.running;
}

const std::string& Simulator::running_code(size_t node) const { return nodes_[node]->release.code; }

const protocol::Engine* Simulator::engine_of(size_t node) const {
  return nodes_[node]->engine.get();
}

const protocol::Ledger* Simulator::ledger_of(size_t node) const {
  const auto& n = nodes_[node];
  return n->engine ? n->engine->ledger() : nullptr;
}

const std::string* Simulator::Keep(const std::string& wire) {
  auto [it, fresh] = wires_.try_emplace(protocol::HashOf(wire));
  if (fresh) it->second = std::make_unique<const std::string>(wire);
  return it->second.get();
}

const std::string& Simulator::key_of(size_t node) const { return nodes_[node]->key_hex; }

const std::string& Simulator::url_of(size_t node) const { return nodes_[node]->url; }

uint64_t Simulator::event_bytes_in(size_t node) const { return nodes_[node]->event_bytes_in; }
uint64_t Simulator::event_bytes_at_admission(size_t node) const {
  return nodes_[node]->event_bytes_at_admission;
}

}  // namespace peerstack::sim
