// The network's event DAG and the state folded from it, sans-I/O.
//
// Events are added only when their parents are present; each is validated against its
// ancestors alone, so every node judges it the same way. A member-added event is valid when
// its author and every approver were members as of its parents, the approvals are distinct,
// correctly signed over the request, and at least ceil(num/den x members-at-parents) (or,
// past kCommitteeSize members, that share of the join's committee: protocol/join.h), the
// request is correctly signed for this network, protocol and accepted code, and the joiner
// was not yet a member at the parents. On a network that admits by invitation the request
// also carries an invitation that CheckInvitation (protocol/invitation.h) accepts as of the
// parents: made by a member, not expired at the request's time, not used by an ancestor. Of
// two concurrent admissions with the same invitation, the first in replay order admits its
// joiner and the other admits no one: an invitation admits one node, whatever the sponsors do.
//
// An address event (a member's new URL) is valid when its author was a member as of its
// parents and its sequence number is above every address sequence of that author among its
// ancestors. A member-removed event is valid when the removed key was a member as of its
// parents and either the author is that member (a leave) or the author is another member
// holding eviction approvals from at least ceil(num/den x M) members other than the evicted
// one (an eviction).
//
// A release event is valid when its author was a member as of its parents, its manifest is
// for this network, its version is above the one in force as of its parents, and it carries
// signatures from at least the threshold of distinct publishers (as of its parents) over the
// manifest. Joiners may then present the manifest's code or the previous release's.
//
// A publishers event changes the publisher set (rotation after a lost key): valid when its
// author is a member or a publisher, its sequence rises, the new set is 1..64 distinct keys
// with a threshold in range, and it carries signatures of the current set's threshold over
// PublisherSetPayload (domain "publisher-set").
//
// A release-report event is a member saying how a release runs on it: "healthy" or "failed"
// (with a reason), valid when its author was a member and the release event is among its
// ancestors, once per (author, release, status). The staged rollout (core/release/rollout.h)
// is decided from these reports, so every node decides it the same way.
//
// A recovery event re-forms a network whose members are mostly gone for good: signed by
// publisher_threshold genesis publishers (domain "recovery") over the network id, the keys to
// keep and a rising epoch, it removes every member not kept. Any member (or the publisher's
// own node) may author it; no member quorum is needed.
//
// The state is a deterministic function of the event set: the events are replayed in
// (depth, hash) order, parents first; a member-added adds its key unless present (so of two
// concurrent admissions the first in that order decides the record), a member-removed
// removes it, an address moves its author when its sequence is higher. Two ledgers with the
// same events have the same StateHash(). Not thread-safe (the engine serialises access).
//
// Cost (docs/protocol.md, "Ledger cost"): an event whose parents are all the current heads is
// judged against the current state, and one that sorts after every event held is folded into
// it in place, so the usual event costs what its own checks cost, not what the ledger holds.
// Only a concurrent event (parents behind the heads, or sorting before the last one) replays
// its ancestors or the ledger. With an EventPool, an event another ledger of the pool found
// valid is not judged again (its hash fixes its ancestors, hence the verdict).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"
#include "protocol/checkpoint.h"
#include "protocol/event.h"
#include "protocol/genesis.h"
#include "protocol/join.h"
#include "protocol/release.h"

namespace peerstack::protocol {

class EventPool;

class Ledger {
 public:
  static Result<Ledger> FromGenesis(const std::string& wire);
  // Optional: memoises signature checks (shared with the engine; not owned).
  void set_verify_cache(crypto::VerifyCache* cache) { cache_ = cache; }
  // Optional: shares parsed events with other ledgers (not owned; see EventPool).
  void set_event_pool(EventPool* pool) { pool_ = pool; }

  enum class Added { kAdded, kDuplicate, kMissingParents };
  // Validates and adds one event (its canonical wire bytes). An invalid event is an error
  // ("bad_event" and why) and changes nothing.
  Result<Added> Add(const std::string& wire);

  const NetworkState& state() const { return state_; }
  const std::string& StateHash() const;
  // The state hash replayed from every event anew (what the incremental state must equal;
  // for tests and the simulator's checks).
  std::string RebuiltStateHash() const;
  const std::string& network_id() const { return state_.network_id; }
  std::vector<std::string> Heads() const { return {heads_.begin(), heads_.end()}; }
  bool Has(const std::string& hash) const { return events_.count(hash) != 0; }
  const std::string* Wire(const std::string& hash) const;
  size_t size() const { return events_.size(); }
  bool IsMember(const std::string& key_hex) const;

  // What a peer whose heads are `their_heads` lacks, in an order that can be added one by one
  // (parents first); at most `limit`. Heads we do not know are reported in *unknown.
  std::vector<std::string> Missing(const std::vector<std::string>& their_heads, size_t limit,
                                   std::vector<std::string>* unknown) const;
  // Every event held, parents first (genesis first until a checkpoint prunes it).
  std::vector<std::string> AllInOrder() const;
  // What a node stores: the genesis and every event held, parents first (with
  // CheckpointPackage() once the ledger stands on a checkpoint: FromCheckpoint on the
  // genesis and the package, then Add each of these, gives this ledger again).
  std::vector<std::string> StoredEvents() const;

  // The member-added event body for a certificate (used by the engine, checked by Add).
  static json::Value MemberAddedBody(const JoinRequest& request,
                                     const std::vector<Approval>& approvals);
  // The body of an address event announcing url with sequence seq.
  static json::Value AddressBody(const std::string& url, int64_t seq, const std::string& via = "");
  // The body of a release event: the manifest and its publisher signatures.
  static json::Value ReleaseBody(const Manifest& m, const std::vector<PublisherSignature>& sigs);
  // The body of a recovery event: the members to keep, a rising epoch, publisher signatures
  // over RecoveryPayload.
  static json::Value RecoveryBody(const std::vector<std::string>& keep, int64_t epoch,
                                  const std::vector<PublisherSignature>& sigs);
  static std::string RecoveryPayload(const std::string& network,
                                     const std::vector<std::string>& keep, int64_t epoch);
  // The body of a member-removed event: a leave (no approvals, authored by `key`) or an
  // eviction (approvals from other members).
  static json::Value MemberRemovedBody(const std::string& key, const std::string& reason,
                                       const std::vector<Approval>& approvals);
  static json::Value PublishersBody(const std::vector<std::string>& keys, int64_t threshold,
                                    int64_t seq, const std::vector<PublisherSignature>& sigs);
  // status: "healthy" or "failed".
  static json::Value ReportBody(const std::string& release_event, const std::string& status,
                                const std::string& reason);
  // The highest address sequence of a member (0 if it never announced one).
  int64_t AddressSeq(const std::string& key_hex) const;

  // ---- Checkpoints (docs/protocol.md, "Checkpoints") ----
  // A checkpoint event (kind "checkpoint", parents = its cut) carries a CheckpointProposal
  // and a quorum of approvals (protocol/checkpoint.h). Once one with the next sequence is
  // added, the ledger stands on it: the state folded at the cut becomes the base, the events
  // below the cut are pruned, and so are the events that do not descend from every cut event
  // (concurrent with the checkpoint: void, on every node that holds it; their authors sign
  // them anew, TakeVoided). From then on an event is added only when it descends from every
  // cut event. The state is the base folded with the events above the cut, in (depth, hash)
  // order: what a full replay gives, since every such event is deeper than the cut.
  int64_t checkpoint_seq() const { return base_ ? base_->seq : 0; }
  // The hash of the checkpoint event the ledger stands on (empty: the genesis). Only the
  // next checkpoint is added as an event; of two with the same sequence (possible only when
  // a proposal's lock expired), every node ends on the one with the smaller hash: a node on
  // the other adopts its package (Engine).
  const std::string& checkpoint_hash() const;
  // Whether a package's checkpoint is one this ledger should move to: its chain holds ours
  // (the same checkpoint events up to our sequence, but for our last one, which another of
  // the same sequence with a smaller hash may replace) and goes further, or replaces our
  // last one so. A ledger on a checkpoint thus never takes a chain forked below it, whoever
  // signed that chain's links. False for anything unreadable (FromCheckpoint judges it).
  bool Prefers(const json::Value& package) const;
  // Events held above the checkpoint (or the genesis), checkpoint events not counted: what
  // the next one would prune.
  size_t events_since_checkpoint() const { return above_checkpoint_; }
  // Who signs the next checkpoint: the members the last one named (the founders before any).
  const MemberList& checkpoint_signers() const { return current_.checkpoint_members; }
  // The next checkpoint at the current heads; an error when there are more than 16 heads.
  Result<CheckpointProposal> ProposeCheckpoint() const;
  // Whether p is the next checkpoint and states what this ledger folds at p's cut ("missing"
  // when a cut event is not held here).
  Status CheckProposal(const CheckpointProposal& p) const;
  static json::Value CheckpointBody(const CheckpointProposal& p,
                                    const std::vector<Approval>& approvals);
  // What carries the checkpoint this ledger stands on to a node without the events below it:
  // every checkpoint event from the first with the keys of the set that signed it, the state at the
  // cut and the cut's events. Null when the ledger stands on the genesis.
  json::Value CheckpointPackage() const;
  // A ledger standing on the checkpoint of a package, verified from the genesis: each
  // checkpoint by a quorum of the members the one before it named, the state and member
  // digests of the last one, the cut events by their hashes.
  static Result<Ledger> FromCheckpoint(const std::string& genesis_wire, const json::Value& package,
                                       crypto::VerifyCache* cache = nullptr);
  // Events a checkpoint voided here since the last call (wire bytes).
  std::vector<std::string> TakeVoided() { return std::exchange(voided_, {}); }
  const std::string& genesis_wire() const { return genesis_->wire; }

  // Who was a member, and who a publisher, when: per key, spans [from, to) of event times
  // (to = INT64_MAX while it lasts) as the events replay into the state, so every node with
  // the same events computes the same history. For app data's write rules (appdata/).
  struct History {
    using Span = std::pair<int64_t, int64_t>;
    std::map<std::string, std::vector<Span>> member, publisher;
    void Observe(const MemberList& members, const std::vector<std::string>& publishers, int64_t t);
  };
  History MembershipHistory() const;

  // An event as held: its wire bytes, parsed, and its depth (1 + its deepest parent's).
  struct Node {
    std::string wire;
    Event event;
    int64_t depth = 0;
  };

 private:
  // Membership as of a set of events: replay them in (depth, hash) order.
  struct Membership {
    MemberList members;
    std::map<std::string, std::pair<int64_t, std::string>> address;  // key -> (seq, hash)
    int64_t release_version = 0;
    std::string release_hash;
    int64_t recovery_epoch = 0;
    std::string accepted_code;  // genesis code until a release
    NetworkState::ReleaseRef release, previous;
    std::vector<std::string> publishers;
    int64_t publisher_threshold = 1;
    int64_t publishers_seq = 0;
    std::map<std::string, std::map<std::string, NetworkState::Report>> reports;
    std::set<std::tuple<std::string, std::string, std::string>>
        reported;                                         // (author, release, status)
    std::map<std::string, std::string> invitations_used;  // invitation hash -> admitted key
    // Every author's highest address sequence, member or not at the time (what a new
    // address must rise above), and the release events folded.
    std::map<std::string, int64_t> address_seq;
    std::set<std::string> releases;
    int64_t checkpoint_seq = 0;
    MemberList checkpoint_members;  // named by the last checkpoint: who signs the next
  };
  // The canonical JSON of a folded state and back; a checkpoint's state is the fold and the
  // membership history up to its cut ({"history", "state"}: CutJson), digest-signed together.
  static json::Value StateJson(const Membership& m);
  static Result<Membership> MembershipFromJson(const json::Value& v);
  static json::Value HistoryJson(const History& h);
  static Result<History> HistoryFromJson(const json::Value& v);
  static json::Value CutJson(const Membership& m, const History& h);
  // The fold and the history as of these events.
  std::pair<Membership, History> FoldWithHistory(const std::set<std::string>& hashes) const;
  // Stands on the checkpoint event k (just added): prunes, voids, rebuilds.
  void Rebase(const std::string& k_hash);
  // The state at a checkpoint's cut, standing on it (its sequence, its cut's members to sign
  // the next).
  static Membership After(const Membership& at_cut, int64_t seq);
  Status ValidateCheckpoint(const Event& e, const Membership& at) const;
  // Standing on a checkpoint, an event must descend from every cut event.
  Status CheckCover(const std::vector<std::string>& parents) const;
  Membership Replay(const std::set<std::string>& hashes, History* history = nullptr) const;
  // Folds one event into m (the next in replay order).
  void Apply(Membership& m, const Event& e, const std::string& hash, History* history) const;
  std::set<std::string> Ancestors(const std::vector<std::string>& from) const;
  // The membership as of these parents: the current one when they are exactly the heads,
  // else replayed into *scratch.
  const Membership& At(const std::vector<std::string>& parents,
                       std::optional<Membership>* scratch) const;
  // Whether these are exactly our heads.
  bool AreHeads(const std::vector<std::string>& hashes) const;
  Status ValidateMemberAdded(const Event& e, const Membership& at) const;
  Status ValidateAddress(const Event& e, const Membership& at) const;
  Status ValidateMemberRemoved(const Event& e, const Membership& at) const;
  Status ValidateRelease(const Event& e, const Membership& at) const;
  Status ValidateRecovery(const Event& e, const Membership& at) const;
  Status ValidatePublishers(const Event& e, const Membership& at) const;
  Status ValidateReport(const Event& e, const Membership& at) const;
  // Distinct publishers of the set in force at `at`, each verified, at least its threshold.
  Status CheckPublisherSignatures(
      const Membership& at, const json::Value& list, const std::string& what,
      const std::function<Status(const std::string&, const std::string&)>& verify) const;
  void RebuildState();
  // After Apply of e into current_: the same change in state_.
  void UpdateState(const Event& e);
  // m.members after the change `change` that event `hash` makes (a function of the list and
  // the event alone): taken from the pool when a ledger made that step from the same list.
  template <typename F>
  void ChangeMembers(Membership& m, const std::string& hash, F change) const;

  // Immutable once added, so copies of a ledger (and ledgers sharing a pool) share them.
  std::unordered_map<std::string, std::shared_ptr<const Node>> events_;
  std::set<std::string> heads_;
  NetworkState state_;
  mutable std::string state_hash_;  // of state_; empty: not computed since it changed
  Membership current_;
  std::pair<int64_t, std::string> last_;  // (depth, hash) of the last event in replay order
  std::vector<std::string> genesis_publishers_;
  int64_t genesis_threshold_ = 1;
  crypto::VerifyCache* cache_ = nullptr;
  EventPool* pool_ = nullptr;
  // The genesis event, kept when a checkpoint prunes it (shared by copies of the ledger: at
  // N = 10,000 it is a megabyte, and the simulator holds 10,000 ledgers).
  std::shared_ptr<const Node> genesis_;
  // The checkpoint the ledger stands on.
  struct Base {
    int64_t seq = 0;
    Membership at_cut;          // the state folded up to the cut (the checkpoint's state)
    Membership after;           // at_cut standing on the checkpoint: what the fold starts from
    History history;            // who was a member and a publisher when, up to the cut
    std::set<std::string> cut;  // held, their effect in at_cut
    // The checkpoint events from the first, each with the keys of the set that signed it.
    std::vector<std::pair<std::string, std::vector<std::string>>> chain;
    json::Value cut_state;  // CutJson(at_cut, history), as the package carries it
    std::string hash;       // of the checkpoint event
  };
  std::shared_ptr<const Base> base_;
  // Of each event above the cut: which cut events (bits) it descends from.
  std::unordered_map<std::string, uint32_t> cover_;
  std::vector<std::string> voided_;
  size_t above_checkpoint_ = 0;
};

// Events that some ledger found valid and holds, by hash, shared by every ledger given the
// pool: the simulator's thousands of nodes each hold the same events, parsed once. An event
// found here is valid in any ledger that has its parents (its hash fixes its ancestors). Held
// weakly: an event lives as long as a ledger holds it. Not thread-safe.
class EventPool {
 public:
  std::shared_ptr<const Ledger::Node> Find(const std::string& hash);
  void Insert(const std::string& hash, const std::shared_ptr<const Ledger::Node>& node);

  // Member lists: the list an event's change made of another list, so that ledgers making
  // the same change share the result instead of each copying the list.
  using Rows = std::shared_ptr<const std::vector<Member>>;
  Rows Step(const Rows& before, const std::string& event_hash);
  void RememberStep(const Rows& before, const std::string& event_hash, const Rows& after);

 private:
  std::unordered_map<std::string, std::weak_ptr<const Ledger::Node>> events_;
  size_t inserts_since_sweep_ = 0;
  struct StepKey {
    const void* before;
    std::string event;
    bool operator==(const StepKey&) const = default;
  };
  struct StepHash {
    size_t operator()(const StepKey& k) const {
      return std::hash<const void*>()(k.before) ^ std::hash<std::string>()(k.event);
    }
  };
  struct StepRows {  // weak: a list lives as long as a ledger holds it
    std::weak_ptr<const std::vector<Member>> before, after;
  };
  std::unordered_map<StepKey, StepRows, StepHash> steps_;
  size_t steps_since_sweep_ = 0;
};

}  // namespace peerstack::protocol
