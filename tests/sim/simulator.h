// A deterministic simulator for the protocol engine: many nodes in one process, a fake clock
// and a fake network (delay, loss, duplication, reordering, partitions, crashes and restarts,
// silent nodes), all randomness from one seed, so a failing seed reproduces exactly.
//
// The transport is modelled with the node's own policy (core/transport/peer_queue.h): every
// message an honest node sends waits in a transport::PeerQueue of its own for that
// destination (one per (sender, destination) pair, with the transport's limits: see
// TransportModel), so a peer that does not answer costs only its own queue, as in the daemon:
//   - A message taken from the queue is in flight for its network delay (1-40 ms). Delivered
//     to a live node, its exchange then succeeds (Done(true)). At most `in_flight` per pair,
//     one while the pair is failing; syncs are superseded, probes and syncs are droppable.
//   - To a silent node (below) nothing is delivered and the exchange fails after the request
//     timeout (3 s) counted from when it was taken: a frozen process accepts the connection
//     and never answers. A cut link or a partition fails the same way (no answer either).
//   - To a node that is down (crashed, not started yet) it fails on arrival: the connection
//     is refused at once.
//   - A message lost by the network (`loss`) still counts as sent from the queue's point of
//     view, unless its destination is down or silent: the peer answered but the message had
//     no effect (the transport counts any answer, even an error status, as sent), so only
//     the protocol's retries and anti-entropy repair it. A duplicate is a second delivery of
//     one exchange.
//   - A failed exchange makes the pair back off (1 s doubling to 30 s); the retry happens at
//     the exact end of the backoff (the daemon notices it within its 250 ms sweep). Receiving
//     any message from a node ends the receiver's backoff towards it (Heard()). Messages
//     waiting longer than the maximum age (30 s) are dropped when the queue is next pumped.
//   - A crash loses the node's queues with the process (what was on the wire still arrives).
//   Memory: a queue exists only while it holds, sends or backs off (an idle queue without
//   failures behaves exactly as a new one, so it is forgotten): at most N^2 queues, in
//   practice the pairs that talked in the last moments (bench/sim's N = 1000 included).
//
// Silent nodes (SimConfig::silent): founding members that freeze at silent_from_ms (SIGSTOP:
// they receive nothing, answer nothing, their timers and engines do not run, their queues do
// not move) and, when silent_until_ms is set, thaw then and must catch up. What was sent to
// them meanwhile is lost (a real frozen process might still read a few buffered requests on
// thawing: dropping them is the harder case). They are never the genesis node (every joiner's
// seed) and at most founders - quorum of them, so the others still form a quorum
// (protocol::QuorumOf).
//
// It also plays a network attacker that sees every message and injects forged approvals,
// forged member-added events, forged join requests and replays of captured requests; the
// properties below must hold regardless. The attacker's messages bypass the queues.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "protocol/engine.h"
#include "transport/peer_queue.h"
#include "transport/transport.h"  // TransportOptions (header only: nothing of it is linked)

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

// What the simulator takes from the transport, in one place. The defaults are the daemon's:
// QueueLimits' (128 waiting, 2 in flight, 30 s in the queue at most, backoff 1 s doubling to
// 30 s) and TransportOptions' request timeout (3 s: how long an exchange with a peer that
// never answers takes to fail).
struct TransportModel {
  transport::QueueLimits queue;
  int64_t request_timeout_ms = transport::TransportOptions{}.request_timeout.count();
};

struct SimConfig {
  uint64_t seed = 1;
  size_t nodes = 5;                 // including the genesis node
  size_t founders = 1;              // nodes that are members from genesis (the rest join)
  // Joiner i (i >= founders) starts at joins_from_ms + (i - founders + 1) * join_spacing_ms
  // (spacing 0: all at once).
  int64_t join_spacing_ms = 300;
  int64_t joins_from_ms = 0;
  int64_t min_delay_ms = 1;
  int64_t max_delay_ms = 40;
  // Faults happen only before faults_until_ms; afterwards the network is perfect.
  int64_t faults_until_ms = 0;
  double loss = 0.0;
  double duplication = 0.0;
  bool partitions = false;  // random two-sided splits during the fault period
  bool crashes = false;     // random crash + restart of members during the fault period
  bool adversary = false;   // forged/replayed messages throughout
  // Founding members other than node 0 (picked by the seed) that freeze at silent_from_ms and
  // thaw at silent_until_ms (< 0: never). At most founders - QuorumOf(founders); more are
  // not made silent (silent_nodes() tells which are).
  size_t silent = 0;
  int64_t silent_from_ms = 0;
  int64_t silent_until_ms = -1;
  TransportModel transport;
  int64_t run_ms = 20000;   // total simulated time
  int64_t tick_ms = 100;
};

struct SimStats {
  uint64_t messages = 0;        // delivered or not, sent by honest nodes
  uint64_t join_messages = 0;   // join, challenge, answer, approval, accepted, refused
  uint64_t event_messages = 0;  // gossip pushes
  uint64_t sync_messages = 0;   // anti-entropy
  uint64_t probe_messages = 0;  // liveness probes (periodic; not counted in messages)
  uint64_t dropped = 0;          // lost, cut off, or to a node down or silent
  uint64_t forged_injected = 0;
  // The outgoing queues (all pairs together).
  uint64_t queue_dropped = 0;     // never sent: displaced, refused, superseded or expired
  uint64_t exchanges_failed = 0;  // refused (down), or no answer in time (silent, cut off)
  size_t max_queued = 0;          // the most messages one pair's queue held at once
  // The longest a message waited in its queue before going out, to a destination that was
  // up and not silent (what a silent peer must not make worse).
  int64_t max_wait_ms = 0;
  // First time all nodes (those silent at the time excepted) were members with one state
  // hash.
  int64_t converged_at_ms = -1;
  // First time all nodes, the thawed ones included, were so after silent_until_ms (-1: no
  // thaw, or not yet).
  int64_t caught_up_at_ms = -1;
};

class Simulator {
 public:
  explicit Simulator(SimConfig config);
  ~Simulator();

  // Runs until run_ms (or earlier when converged and stop_when_converged; when silent nodes
  // thaw, only once they have caught up too).
  void Run(bool stop_when_converged = false);

  // The properties. Each returns an empty string when it holds, else what went wrong.
  // Nodes silent at the time are not expected to have converged (they are still members).
  std::string CheckConvergence() const;  // every live node a member, one state hash
  std::string CheckSafety() const;       // only legit keys admitted, every event valid
  const SimStats& stats() const { return stats_; }
  size_t members_at(size_t node) const;
  // When the node started (joiners) and first held its key in its own ledger (-1: never).
  int64_t started_at(size_t node) const;
  int64_t admitted_at(size_t node) const;
  const std::vector<size_t>& silent_nodes() const { return silent_nodes_; }
  // The most messages one sender's queue towards `node` held at once, so far; and what all
  // the queues towards it hold now.
  size_t peak_queued_to(size_t node) const { return peak_queued_to_[node]; }
  size_t queued_to(size_t node) const;

  // For targeted scenarios: continue until `until_ms`; cut or restore the link between two
  // nodes (both directions); crash a node now (it restarts 0.3-2 s later); ask a node's view.
  void RunUntil(int64_t until_ms);
  void SetLinkDown(size_t a, size_t b, bool down);
  void CrashNow(size_t node, int64_t down_ms);
  bool SeesOnline(size_t observer, size_t target) const;
  int64_t now() const { return now_; }

 private:
  struct Node;
  struct Link;
  static constexpr size_t kNobody = static_cast<size_t>(-1);  // the attacker
  enum class Kind : uint8_t {
    kTick,     // node: its engine's timer
    kArrive,   // node: the destination; peer: the sender (kNobody: the attacker)
    kTimeout,  // node: the sender; peer: the destination that never answered
    kRetry,    // node: the sender; peer: the destination whose backoff ends
    kFreeze,   // node goes silent
    kThaw,     // node answers again
  };
  struct Delivery {
    int64_t at = 0;
    uint64_t seq = 0;  // ties in time go in scheduling order
    Kind kind = Kind::kTick;
    size_t node = 0;
    size_t peer = kNobody;
    // kTick: the node's tick serial (only its latest tick runs); kArrive, kTimeout, kRetry:
    // the sender's life (its queues die with it: an older life's exchanges are forgotten).
    uint64_t generation = 0;
    bool completes = false;  // kArrive: ends the exchange the sender's queue counts in flight
    bool lost = false;       // kArrive: the network lost it (the exchange still succeeds)
    int64_t taken_at = 0;    // kArrive: when the sender's queue let it go
    protocol::Envelope envelope;
    bool operator>(const Delivery& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
  };

  void Handle(Delivery& d);
  void Arrive(Delivery& d);
  void Emit(size_t from, protocol::Output& out);
  // Counts an honest message and queues it with its sender; the destination's index, if any.
  std::optional<size_t> Enqueue(size_t from, protocol::Envelope e);
  // Starts what the (from, to) queue may send now; forgets the queue once it is idle.
  void Pump(size_t from, size_t to);
  // Puts a message on the wire: via_queue for an honest sender's exchange, else the
  // attacker's (or a duplicate's) raw delivery.
  void Transmit(size_t from, size_t to, protocol::Envelope e, bool via_queue);
  void Complete(size_t from, size_t to, uint64_t generation, bool ok);
  void HeardFrom(size_t receiver, size_t sender);
  void Route(protocol::Envelope e);  // an attacker's message: straight onto the wire
  void Crash(size_t i, int64_t down_ms = 0);
  void Restart(size_t i);
  void Attack();
  bool Blocked(size_t a, size_t b) const;
  bool Converged() const;
  void NoteAdmitted(size_t i);
  static Delivery MakeDelivery(int64_t at, Kind kind, size_t node, size_t peer = kNobody);
  void Push(Delivery d);  // numbers it (seq) and schedules it
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
  std::vector<size_t> silent_nodes_;
  int64_t thaw_at_ = -1;  // when the silent nodes thaw (-1: never, or there are none)
  std::vector<size_t> peak_queued_to_;
  // What the attacker has seen.
  std::vector<json::Value> captured_requests_;
  std::vector<crypto::SigningKey> attacker_keys_;
  // One memo of verified signatures for all nodes: a pure function memoised, so it changes
  // the simulator's speed, not what any node decides.
  crypto::VerifyCache verify_cache_{1 << 20};
  SimStats stats_;
};

}  // namespace peerstack::sim
