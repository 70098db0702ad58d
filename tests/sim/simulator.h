// A deterministic simulator for the protocol engine: many nodes in one process, a fake clock
// and a fake network (delay, loss, duplication, reordering, partitions, crashes and restarts),
// all randomness from one seed, so a failing seed reproduces exactly.
//
// It also plays a network attacker that sees every message and injects forged approvals,
// forged member-added events, forged join requests and replays of captured requests; the
// properties below must hold regardless.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "protocol/engine.h"

namespace peerstack::sim {

// SplitMix64: small, fast, good enough for simulation, identical everywhere.
class SeededRandom final : public protocol::Random {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() override;
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

struct SimConfig {
  uint64_t seed = 1;
  size_t nodes = 5;                 // including the genesis node
  size_t founders = 1;              // nodes that are members from genesis (the rest join)
  int64_t join_spacing_ms = 300;    // joiner i starts at i * spacing (0: all at once)
  int64_t min_delay_ms = 1;
  int64_t max_delay_ms = 40;
  // Faults happen only before faults_until_ms; afterwards the network is perfect.
  int64_t faults_until_ms = 0;
  double loss = 0.0;
  double duplication = 0.0;
  bool partitions = false;  // random two-sided splits during the fault period
  bool crashes = false;     // random crash + restart of members during the fault period
  bool adversary = false;   // forged/replayed messages throughout
  int64_t run_ms = 20000;   // total simulated time
  int64_t tick_ms = 100;
};

struct SimStats {
  uint64_t messages = 0;        // delivered or not, sent by honest nodes
  uint64_t join_messages = 0;   // join, challenge, answer, approval, accepted, refused
  uint64_t event_messages = 0;  // gossip pushes
  uint64_t sync_messages = 0;   // anti-entropy
  uint64_t probe_messages = 0;  // liveness probes (periodic; not counted in messages)
  uint64_t dropped = 0;
  uint64_t forged_injected = 0;
  int64_t converged_at_ms = -1;  // first time all nodes were members with one state hash
};

class Simulator {
 public:
  explicit Simulator(SimConfig config);
  ~Simulator();

  // Runs until run_ms (or earlier when converged and stop_when_converged).
  void Run(bool stop_when_converged = false);

  // The properties. Each returns an empty string when it holds, else what went wrong.
  std::string CheckConvergence() const;  // every live node a member, one state hash
  std::string CheckSafety() const;       // only legit keys admitted, every event valid
  const SimStats& stats() const { return stats_; }
  size_t members_at(size_t node) const;

  // For targeted scenarios: continue until `until_ms`; cut or restore the link between two
  // nodes (both directions); crash a node now (it restarts 0.3-2 s later); ask a node's view.
  void RunUntil(int64_t until_ms);
  void SetLinkDown(size_t a, size_t b, bool down);
  void CrashNow(size_t node, int64_t down_ms);
  bool SeesOnline(size_t observer, size_t target) const;
  int64_t now() const { return now_; }

 private:
  struct Node;
  struct Delivery {
    int64_t at;
    uint64_t seq;
    bool tick;
    size_t node;
    uint64_t generation;  // ticks of an older life of the node are ignored
    protocol::Envelope envelope;
    bool operator>(const Delivery& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
  };

  void Handle(const Delivery& d);
  void Emit(size_t from, protocol::Output& out);
  void Route(protocol::Envelope e, bool honest);
  void Crash(size_t i, int64_t down_ms = 0);
  void Restart(size_t i);
  void Attack();
  bool Blocked(size_t a, size_t b) const;
  bool Converged() const;
  void Schedule(int64_t at, bool tick, size_t node, protocol::Envelope e = {});
  void ScheduleTick(int64_t at, size_t node);

  SimConfig config_;
  SeededRandom net_rng_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> queue_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::string, size_t> by_url_;
  std::set<std::string> legit_keys_;
  std::vector<size_t> side_;  // partition side per node (all 0 when none)
  std::set<std::pair<size_t, size_t>> cut_links_;
  int64_t partition_until_ = 0;
  // What the attacker has seen.
  std::vector<json::Value> captured_requests_;
  std::vector<crypto::SigningKey> attacker_keys_;
  // One memo of verified signatures for all nodes: a pure function memoised, so it changes
  // the simulator's speed, not what any node decides.
  crypto::VerifyCache verify_cache_{1 << 20};
  SimStats stats_;
};

}  // namespace peerstack::sim
