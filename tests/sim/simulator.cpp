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

}  // namespace

struct Simulator::Node {
  size_t index = 0;
  std::string url;
  std::unique_ptr<crypto::SigningKey> key;
  std::unique_ptr<SeededRandom> rng;
  std::unique_ptr<protocol::Engine> engine;
  std::vector<std::string> persisted;  // the node's "disk": events in the order stored
  bool up = false;
  int64_t start_at = 0;
  int64_t down_until = 0;
  uint64_t generation = 0;
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
    ScheduleTick(static_cast<int64_t>(i % 100), i);
  }
  for (size_t i = founders; i < config_.nodes; ++i) {
    nodes_[i]->start_at = static_cast<int64_t>(i - founders + 1) * config_.join_spacing_ms;
    ScheduleTick(nodes_[i]->start_at, i);
  }
}

Simulator::~Simulator() = default;

void Simulator::Schedule(int64_t at, bool tick, size_t node, protocol::Envelope e) {
  queue_.push(Delivery{at, seq_++, tick, node, tick ? nodes_[node]->generation : 0, std::move(e)});
}

void Simulator::ScheduleTick(int64_t at, size_t node) { Schedule(at, true, node); }

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

void Simulator::Route(protocol::Envelope e, bool honest) {
  if (honest) {
    const std::string& t = e.type;
    if (t == "ping" || t == "pingreq" || t == "ack") {
      ++stats_.probe_messages;
    } else {
      ++stats_.messages;
    }
    if (t == "ping" || t == "pingreq" || t == "ack") {
      // counted above
    } else if (t == "event") ++stats_.event_messages;
    else if (t == "sync" || t == "events") ++stats_.sync_messages;
    else ++stats_.join_messages;
  }
  auto to = by_url_.find(e.to);
  auto from = by_url_.find(e.from);
  if (to == by_url_.end()) return;  // nobody there (e.g. the attacker's URL)
  const bool faulty = now_ < config_.faults_until_ms;
  if (from != by_url_.end() && Blocked(from->second, to->second)) {
    ++stats_.dropped;
    return;
  }
  if (faulty && net_rng_.Unit() < config_.loss) {
    ++stats_.dropped;
    return;
  }
  if (e.type == "join" && !e.body.find("sponsor")) {
    captured_requests_.push_back(*e.body.find("request"));  // the attacker listens
  }
  const int64_t delay = net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms);
  if (faulty && net_rng_.Unit() < config_.duplication) {
    Schedule(now_ + net_rng_.Between(config_.min_delay_ms, config_.max_delay_ms), false,
             to->second, e);
  }
  Schedule(now_ + delay, false, to->second, std::move(e));
}

void Simulator::Emit(size_t from, protocol::Output& out) {
  Node& n = *nodes_[from];
  // Persist first, then send: what is acknowledged is on "disk".
  for (const std::string& w : out.new_events) n.persisted.push_back(w);
  for (auto& e : out.messages) Route(std::move(e), true);
}

void Simulator::CrashNow(size_t node, int64_t down_ms) { Crash(node, down_ms); }

void Simulator::Crash(size_t i, int64_t down_ms) {
  Node& n = *nodes_[i];
  n.up = false;
  n.engine.reset();
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

void Simulator::Handle(const Delivery& d) {
  Node& n = *nodes_[d.node];
  if (d.tick) {
    if (d.generation != n.generation) return;  // a tick of the node's previous life
    if (!n.up) {
      if (n.persisted.empty() && !n.engine && now_ >= n.start_at &&
          n.down_until == 0) {
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
    ScheduleTick(now_ + config_.tick_ms, d.node);
    return;
  }
  if (!n.up) {
    ++stats_.dropped;
    return;
  }
  protocol::Output out;
  n.engine->Receive(d.envelope, now_, &out);
  Emit(d.node, out);
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
    Route(protocol::Envelope{attacker, to, std::move(type), std::move(body)}, false);
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
    if (!n->up || !n->engine || !n->engine->is_member()) return false;
    const std::string h = n->engine->ledger()->StateHash();
    if (hash.empty()) hash = h;
    if (h != hash) return false;
  }
  return nodes_.front()->engine->ledger()->state().members.size() == nodes_.size();
}

void Simulator::RunUntil(int64_t until_ms) {
  while (!queue_.empty() && queue_.top().at <= until_ms) {
    Delivery d = queue_.top();
    queue_.pop();
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
    Delivery d = queue_.top();
    queue_.pop();
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
        if (nodes_[i]->up && nodes_[i]->engine && nodes_[i]->engine->is_member()) Crash(i);
      }
    }
    if (config_.adversary && now_ >= next_attack) {
      next_attack = now_ + net_rng_.Between(20, 200);
      Attack();
    }
    Handle(d);
    if (stats_.converged_at_ms < 0 && now_ >= config_.faults_until_ms && now_ >= next_check &&
        (next_check = now_ + 50, Converged())) {
      stats_.converged_at_ms = now_;
      if (stop_when_converged) return;
    }
  }
}

size_t Simulator::members_at(size_t node) const {
  const auto& n = nodes_[node];
  return n->engine && n->engine->ledger() ? n->engine->ledger()->state().members.size() : 0;
}

std::string Simulator::CheckConvergence() const {
  std::string hash;
  for (const auto& n : nodes_) {
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
