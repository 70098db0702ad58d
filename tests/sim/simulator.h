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
//
// Releases (SimConfig::release; nothing of this runs when it plans none). The model is the
// daemon's release manager (core/release/manager.cpp) reduced to its decisions, deciding with
// the same rollout rules (core/release/rollout.h) from each node's own ledger:
//   - Per node: the blobs it holds (sha256 strings: the blob store, kept across crashes), the
//     release it runs (a release event hash, or "genesis": release 0, the files every node
//     was started with, code "c0de") and its code (the running release's CodeHash), which
//     its engine presents when joining (Engine::SetCodeHash on every switch, and the code a
//     restarted or starting engine is made with).
//   - Publishing: at each ReleasePlan's time the publishing member (node 0 by default) makes
//     a manifest of a few fake files (version 1, 2, ... in plan order; the first file is the
//     same in every release, as an unchanged plugin would be), signs it with node 0's key
//     (the genesis author: the network's only publisher) and publishes it
//     (Engine::PublishRelease). A member that cannot publish then (down, silent, not a
//     member) tries again every tick_ms; a plan also waits for the one before it. Its blobs
//     are then held by the publisher and the plan's holders only.
//   - Every tick, after its engine's, each live node does what the manager does: the health
//     watch, then Decide() on Evaluate() of its ledger's release in force; if the target is
//     not what it runs and did not fail here, it switches when it holds every file of the
//     target, else it fetches the missing ones. Release 0 needs no fetch. A switch changes
//     the release and the code together: a node never runs a mix.
//   - Fetches, as the fetcher (core/release/fetcher.h) does them: at most parallel_fetches
//     at once, one per blob, each from the first peer not yet failed for that blob in the
//     order: the release's author, the members that reported it healthy, the other members
//     (each group shuffled by the seed's own generator, anew at each tick); once every peer
//     failed a blob, it waits retry_after_ms and starts over. A fetch is a request and an
//     answer over the network model, outside the message queues: each way takes a network
//     delay, and the answer also size / bytes_per_ms. It fails, and the next peer is asked,
//     when the peer lacks the blob or does not serve it (it serves only blobs it holds of
//     the releases in force and before in its own ledger: a 404 comes back at once), when
//     the peer is down (refused at once), and with no answer at the deadline (base timeout +
//     size / min rate, as the fetcher's) when either way is lost (`loss`), cut off or
//     partitioned, or the peer is silent. The answer's arrival wakes the node (its manager
//     runs at once, as the fetcher's wake does). A crash loses the fetches in flight and the
//     fetcher's memory, not the blobs.
//   - Health: soak_ms after a switch a member reports the release healthy
//     (Engine::ReportRelease); a node in the plan's fails_on reports it failed fail_after_ms
//     after switching to it instead and goes back to what it ran before. Both happen only
//     within the manager's watch window (max(watch_ms, soak_ms) after the switch), so, as in
//     the daemon, a joiner admitted after its window never reports the release it installed.
//     A node never switches again to a release that failed on it; max_failures failure
//     reports halt the rollout, and Decide() then sends every node to the release before it.
// Every switch is recorded (release_switches()), and at every switch and every tick each node
// is checked to run exactly one whole release: every file of it held, its code that release's
// CodeHash (CheckReleases() reports the first time one did not).
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
#include <unordered_map>
#include <vector>

#include "appdata/replica.h"
#include "protocol/engine.h"
#include "transport/peer_queue.h"
#include "transport/transport.h"  // TransportOptions (the simulator calls nothing of it)

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

// One release to publish (see the header comment).
struct ReleasePlan {
  int64_t at_ms = 1000;             // when it is published
  size_t files = 3;                 // fake files (alternately a plugin and a front file)
  int64_t file_bytes = 20000;       // the first file's size; each next one 1000 bytes more
  protocol::RolloutPolicy rollout;  // the policy's defaults: one stage, no soak, 1 failure halts
  std::vector<size_t> holders;   // besides the publisher, nodes that hold its blobs from the start
  std::vector<size_t> fails_on;  // nodes where it fails after the switch
};

// The release model's parameters. The fetch ones are the fetcher's (core/release/fetcher.h),
// watch_ms the manager's min_soak_ms.
struct ReleaseConfig {
  std::vector<ReleasePlan> plans;  // in publishing order (versions 1, 2, ...)
  size_t publisher = 0;            // the member that publishes (node 0's key signs)
  size_t parallel_fetches = 4;
  int64_t fetch_timeout_ms = 2000;  // plus size / min_rate_bytes_per_s
  int64_t min_rate_bytes_per_s = 256 * 1024;
  int64_t retry_after_ms = 500;  // once every peer failed a blob (the fetcher's)
  int64_t bytes_per_ms = 1000;   // how fast an answer's body travels (1 MB/s)
  int64_t watch_ms = 10000;      // the health watch lasts max(watch_ms, soak_ms)
  int64_t fail_after_ms = 500;   // a failing release is noticed this long after the switch
};

// Links cut on schedule: every link between a node of `a` and one of `b` is down from
// from_ms until until_ms (a partition that heals, when a and b cover all nodes). A link cut
// twice at once comes back at the first heal.
struct LinkCut {
  int64_t from_ms = 0;
  int64_t until_ms = 0;
  std::vector<size_t> a, b;
};

// Replicated app data (nothing of this runs unless writes > 0): every node holds an
// appdata::Replica (core/appdata/replica.h) in a database file of its own under dir, which
// survives its crashes (the replica is closed with the process and opened again at the
// restart), driven as the node's appdata service drives it: at every tick, once a member,
// the ledger's membership history (when the ledger changed) and its members with their
// liveness as this node's engine sees them, then Tick(); app messages travel through the
// same queues and faults as the protocol's, and are received only from members. Each node
// has its own wall clock, off by up to clock_skew_ms. Between writes_from_ms and
// writes_until_ms each live member writes, at a random moment of each tick with probability
// write_chance, one key of a small key space (keys), a delete one time in delete_one_in; one
// collection "notes" of plugin "sim", any member may write it. Converged (app data too):
// every live node holds the same data hash.
struct AppDataConfig {
  std::string dir;    // required when writes > 0: where the nodes' databases go
  size_t writes = 0;  // at most this many in all
  int64_t writes_from_ms = 1000;
  int64_t writes_until_ms = 6000;
  double write_chance = 0.5;
  size_t keys = 40;
  int delete_one_in = 6;
  int64_t clock_skew_ms = 400;
};

struct SimConfig {
  uint64_t seed = 1;
  size_t nodes = 5;     // including the genesis node
  size_t founders = 1;  // nodes that are members from genesis (the rest join)
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
  std::vector<LinkCut> cuts;
  ReleaseConfig release;
  AppDataConfig appdata;
  int64_t run_ms = 20000;  // total simulated time
  int64_t tick_ms = 100;
  // Checkpoints (EngineConfig::checkpoint_every, checkpoint_fallback_ms); 0: none proposed.
  size_t checkpoint_every = 0;
  int64_t checkpoint_fallback_ms = 2000;
  int64_t checkpoint_quiet_ms = 0;      // EngineConfig::checkpoint_quiet_ms
  size_t checkpoint_quiet_events = 32;  // EngineConfig::checkpoint_quiet_events
};

struct SimStats {
  uint64_t messages = 0;        // delivered or not, sent by honest nodes
  uint64_t join_messages = 0;   // join, challenge, answer, approval, accepted, refused
  uint64_t event_messages = 0;  // gossip pushes
  uint64_t sync_messages = 0;   // anti-entropy
  uint64_t probe_messages = 0;  // liveness probes (periodic; not counted in messages)
  uint64_t dropped = 0;         // lost, cut off, or to a node down or silent
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
  // App data (AppDataConfig): writes made, app messages sent (pushes, marks, answers).
  uint64_t app_writes = 0;
  uint64_t app_messages = 0;
};

// A release as published (in order: releases()[k] is version k + 1).
struct PublishedRelease {
  std::string event;  // the release event's hash
  int64_t time_ms = 0;
  protocol::Manifest manifest;
  std::string code;  // manifest.CodeHash()
  size_t plan = 0;
};

// A node's switch from one release to another ("genesis" or a release event hash).
struct ReleaseSwitch {
  int64_t at_ms = 0;
  size_t node = 0;
  std::string from, to;
  bool member = false;  // the node was a member then
};

struct ReleaseStats {
  uint64_t fetches = 0;         // started
  uint64_t fetches_failed = 0;  // lacking peer, refused, lost, cut off, silent peer
  uint64_t blobs_fetched = 0;
  uint64_t healthy_reports = 0;  // made (Engine::ReportRelease accepted them)
  uint64_t failed_reports = 0;
  uint64_t go_backs = 0;  // a release failed on a node, which went back
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
  // The same, but it restarts at a new URL with nothing stored (a node started again from
  // scratch on another port); nobody answers at the old one.
  void MoveNow(size_t node, int64_t down_ms);
  const std::string& url_of(size_t node) const;
  // The bytes of events delivered to the node so far (gossip and anti-entropy answers, the
  // genesis included): what it downloaded of the ledger, duplicates counted.
  uint64_t event_bytes_in(size_t node) const;
  uint64_t event_bytes_at_admission(size_t node) const;  // what it had received when admitted
  bool SeesOnline(size_t observer, size_t target) const;
  int64_t now() const { return now_; }

  // Releases. "genesis" names release 0 (the files every node starts with).
  static constexpr const char* kGenesisRelease = "genesis";
  static constexpr const char* kGenesisCode = "c0de";
  // Every node runs exactly one whole release (checked after every step of its release model,
  // and now), and each node that is up and not silent runs a code its own ledger accepts.
  std::string CheckReleases() const;
  const std::vector<PublishedRelease>& releases() const { return releases_.published; }
  const std::vector<ReleaseSwitch>& release_switches() const { return releases_.switches; }
  const ReleaseStats& release_stats() const { return releases_.stats; }
  const std::string& running_release(size_t node) const;
  const std::string& running_code(size_t node) const;
  // The node's ledger (null while it has none: a joiner before its first sync, or down).
  const protocol::Ledger* ledger_of(size_t node) const;
  const protocol::Engine* engine_of(size_t node) const;  // null while down
  // App data: every live node (up, not silent) holds the same data hash; and one node's.
  std::string CheckAppData() const;
  std::string app_data_hash(size_t node) const;
  const std::string& key_of(size_t node) const;

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
    kCut,      // peer: the LinkCut that starts
    kHeal,     // peer: the LinkCut that ends
    kPublish,  // node: the publisher; peer: the ReleasePlan
    kFetch,    // node: the peer asked for a blob; peer: the node asking
    kFetched,  // node: the node that asked; peer: the peer that answered (or did not)
  };
  struct Delivery {
    int64_t at = 0;
    uint64_t seq = 0;  // ties in time go in scheduling order
    Kind kind = Kind::kTick;
    size_t node = 0;
    size_t peer = kNobody;
    // kTick: the node's tick serial (only its latest tick runs); kArrive, kTimeout, kRetry:
    // the sender's life (its queues die with it: an older life's exchanges are forgotten);
    // kFetch, kFetched: the life of the node that asked (its fetches die with it).
    uint64_t generation = 0;
    bool completes = false;  // kArrive: ends the exchange the sender's queue counts in flight
    bool lost = false;       // kArrive: the network lost it (the exchange still succeeds)
    int64_t taken_at = 0;    // kArrive: when the sender's queue let it go; kFetch: when asked
    protocol::Envelope envelope;
    std::string blob;    // kFetch, kFetched: the blob's sha256
    bool found = false;  // kFetched: the peer answered with the blob
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

  // The release model (see the header comment).
  struct NodeRelease;
  void Publish(size_t plan);
  void ReleaseTick(size_t i);  // the manager's pass: health watch, decide, fetch or switch
  void HealthWatch(size_t i);
  void SwitchTo(size_t i, const std::string& release);
  void GoBack(size_t i, const std::string& reason);
  bool Report(size_t i, const std::string& release, const std::string& status,
              const std::string& reason);
  std::vector<size_t> FetchPeers(size_t i, const PublishedRelease& r);
  // Starts what may start; true when every file of m is held.
  bool PumpFetches(size_t i, const protocol::Manifest& m, const std::vector<size_t>& peers);
  void StartFetch(size_t client, size_t server, const std::string& blob);
  void ServeFetch(const Delivery& d);
  void FetchDone(const Delivery& d);
  int64_t FetchDeadline(int64_t asked_at, const std::string& blob) const;
  bool Serves(size_t server, const std::string& blob) const;
  const PublishedRelease* FindRelease(const std::string& id) const;
  // App data (see AppDataConfig).
  struct NodeApp;
  void AppOpen(size_t i);
  void AppTick(size_t i);
  void AppEmit(size_t from, std::vector<appdata::Outgoing>& out);
  std::string WholeRelease(size_t i) const;  // "" when the node runs exactly one whole release
  void CheckWhole(size_t i);                 // records the first violation

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
  protocol::EventPool event_pool_;  // every engine's ledger shares parsed events
  // Every event any node stored, by hash: the nodes' disks point here.
  std::unordered_map<std::string, std::unique_ptr<const std::string>> wires_;
  const std::string* Keep(const std::string& wire);
  // The engine configuration of node n (its URL, code, the shared cache and pool).
  protocol::EngineConfig EngineConfigFor(const Node& n);
  // The ledger on node n's disk: its checkpoint package (if any), then its events.
  Result<protocol::Ledger> LoadDisk(const Node& n, protocol::EventPool* pool,
                                    crypto::VerifyCache* cache, bool strict) const;
  SimStats stats_;
  // The release model's network-wide part (per node: Node::release).
  struct Releases {
    explicit Releases(uint64_t seed) : rng(seed) {}
    SeededRandom rng;  // shuffles the fetch peers
    std::vector<PublishedRelease> published;
    std::map<std::string, size_t> by_event;     // event hash -> index in published
    std::map<std::string, int64_t> blob_bytes;  // sha256 -> size
    std::vector<ReleaseSwitch> switches;
    std::string violation;  // the first step where a node ran no whole release
    ReleaseStats stats;
  };
  Releases releases_;
};

}  // namespace peerstack::sim
