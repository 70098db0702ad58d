#include "sim/simulator.h"

#include <algorithm>
#include <cstring>

#include "crypto/encoding.h"

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
  return type == "ping" || type == "pingreq" || type == "ack" || type == "sync";
}

}  // namespace

// One sender's outgoing queue towards one destination.
struct Simulator::Link {
  explicit Link(const transport::QueueLimits& limits) : queue(limits) {}
  transport::PeerQueue<protocol::Envelope> queue;
  int64_t retry_at = -1;  // a kRetry is scheduled then (one is enough)
};

struct Simulator::Node {
  size_t index = 0;
  std::string url;
  std::unique_ptr<crypto::SigningKey> key;
  std::unique_ptr<SeededRandom> rng;
  std::unique_ptr<protocol::Engine> engine;
  std::vector<std::string> persisted;  // the node's "disk": events in the order stored
  bool up = false;
  bool silent = false;  // frozen: receives, sends and ticks nothing
  int64_t start_at = 0;
  int64_t down_until = 0;
  int64_t admitted_at = -1;
  uint64_t generation = 0;   // lives: a crash ends one, and the queues with it
  uint64_t tick_serial = 0;  // only the latest tick scheduled runs
  std::map<size_t, Link> queues;  // by destination; only the busy or failing ones
};

Simulator::Simulator(SimConfig config)
    : config_(config), net_rng_(config.seed * 0x2545f4914f6cdd1dULL + 7) {
  SeededRandom keys(config.seed);
  const std::string code = "c0de";
  for (size_t i = 0; i < config_.nodes; ++i) {
    auto n = std::make_unique<Node>();
    n->index = i;
    n->url = UrlOf(i);
    n->key = std::make_unique<crypto::SigningKey>(KeyFrom(keys));
    n->rng = std::make_unique<SeededRandom>(config.seed * 31 + i);
    legit_keys_.insert(crypto::HexEncode(n->key->public_key().data(), 32));
    by_url_[n->url] = i;
    nodes_.push_back(std::move(n));
  }
  for (int i = 0; i < 3; ++i) attacker_keys_.push_back(KeyFrom(keys));
  side_.assign(config_.nodes, 0);
  peak_queued_to_.assign(config_.nodes, 0);

  protocol::EngineConfig ec;
  ec.code_hash = code;
  ec.verify_cache = &verify_cache_;
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
    nodes_[i]->persisted.push_back(wire);
    ec.url = nodes_[i]->url;
    nodes_[i]->engine =
        std::make_unique<protocol::Engine>(ec, *nodes_[i]->key, founded, nodes_[i]->rng.get());
    nodes_[i]->up = true;
    nodes_[i]->admitted_at = 0;
    ScheduleTick(static_cast<int64_t>(i % 100), i);
  }
  for (size_t i = founders; i < config_.nodes; ++i) {
    nodes_[i]->start_at = config_.joins_from_ms +
                          static_cast<int64_t>(i - founders + 1) * config_.join_spacing_ms;
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
  std::string supersedes = t == "sync" ? "sync" : "";
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
  // Persist first, then send: what is acknowledged is on "disk".
  for (const std::string& w : out.new_events) n.persisted.push_back(w);
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
  if (n.admitted_at < 0 && n.engine && n.engine->is_member()) n.admitted_at = now_;
}

void Simulator::CrashNow(size_t node, int64_t down_ms) { Crash(node, down_ms); }

void Simulator::Crash(size_t i, int64_t down_ms) {
  Node& n = *nodes_[i];
  n.up = false;
  n.engine.reset();
  n.queues.clear();  // with the process; what is on the wire still arrives
  n.down_until = now_ + (down_ms > 0 ? down_ms : net_rng_.Between(300, 2000));
  ++n.generation;
  ScheduleTick(n.down_until, i);
}

void Simulator::Restart(size_t i) {
  Node& n = *nodes_[i];
  protocol::EngineConfig ec;
  ec.url = n.url;
  ec.code_hash = "c0de";
  ec.verify_cache = &verify_cache_;
  if (!n.persisted.empty()) {
    auto ledger = protocol::Ledger::FromGenesis(n.persisted.front());
    for (size_t k = 1; k < n.persisted.size(); ++k) (void)ledger->Add(n.persisted[k]);
    if (ledger->IsMember(crypto::HexEncode(n.key->public_key().data(), 32))) {
      n.engine = std::make_unique<protocol::Engine>(ec, *n.key, std::move(ledger).value(),
                                                    n.rng.get());
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
    case Kind::kTick:
      break;
  }
  if (d.generation != n.tick_serial) return;  // superseded (a crash, a thaw)
  if (n.silent) return;                       // frozen: the thaw starts ticking again
  if (!n.up) {
    if (n.persisted.empty() && !n.engine && now_ >= n.start_at && n.down_until == 0) {
      // A joiner starting: it knows the genesis node's URL (its seed).
      protocol::EngineConfig ec;
      ec.url = n.url;
      ec.code_hash = "c0de";
      ec.verify_cache = &verify_cache_;
      n.engine = std::make_unique<protocol::Engine>(ec, *n.key, UrlOf(0), n.rng.get());
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
  ScheduleTick(now_ + config_.tick_ms, d.node);
}

void Simulator::Arrive(Delivery& d) {
  Node& n = *nodes_[d.node];
  if (!n.up || n.silent) {
    if (!d.lost) ++stats_.dropped;
    if (d.completes) {
      if (n.silent) {  // it took the connection and never answers
        Delivery t = MakeDelivery(d.taken_at + config_.transport.request_timeout_ms,
                                  Kind::kTimeout, d.peer, d.node);
        t.generation = d.generation;
        Push(std::move(t));
      } else {  // nobody listens there: refused at once
        Complete(d.peer, d.node, d.generation, /*ok=*/false);
      }
    }
    return;
  }
  if (!d.lost) {
    if (d.peer != kNobody) HeardFrom(d.node, d.peer);
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
      const protocol::Ledger* l = nodes_[target]->engine ? nodes_[target]->engine->ledger() : nullptr;
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
  std::string hash;
  for (const auto& n : nodes_) {
    if (n->silent) continue;  // not expected to follow while frozen
    if (!n->up || !n->engine || !n->engine->is_member()) return false;
    const std::string h = n->engine->ledger()->StateHash();
    if (hash.empty()) hash = h;
    if (h != hash) return false;
  }
  return nodes_.front()->engine->ledger()->state().members.size() == nodes_.size();
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
  std::string hash;
  for (const auto& n : nodes_) {
    if (n->silent) continue;  // still frozen: it catches up after its thaw
    if (!n->up || !n->engine) return "node " + std::to_string(n->index) + " is down";
    if (!n->engine->is_member()) return "node " + std::to_string(n->index) + " never joined";
    const std::string h = n->engine->ledger()->StateHash();
    if (hash.empty()) hash = h;
    if (h != hash) return "node " + std::to_string(n->index) + " has another state hash";
  }
  const size_t members = nodes_.front()->engine->ledger()->state().members.size();
  if (members != nodes_.size()) {
    return "the network has " + std::to_string(members) + " members, expected " +
           std::to_string(nodes_.size());
  }
  return "";
}

std::string Simulator::CheckSafety() const {
  for (const auto& n : nodes_) {
    // Replaying a node's stored events into a fresh ledger must accept every one of them:
    // nothing entered without a valid certificate as of its parents.
    if (n->persisted.empty()) continue;
    auto ledger = protocol::Ledger::FromGenesis(n->persisted.front());
    if (!ledger) return "node " + std::to_string(n->index) + ": bad genesis";
    for (size_t k = 1; k < n->persisted.size(); ++k) {
      auto r = ledger->Add(n->persisted[k]);
      if (!r) {
        return "node " + std::to_string(n->index) + " stored an invalid event: " +
               r.status().message();
      }
    }
    for (const protocol::Member& m : ledger->state().members) {
      if (!legit_keys_.count(m.key)) {
        return "node " + std::to_string(n->index) + " admitted a key nobody legit holds";
      }
    }
  }
  return "";
}

}  // namespace peerstack::sim
