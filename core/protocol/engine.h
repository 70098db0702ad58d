// The protocol engine of one node, sans-I/O: fed messages and time, it returns the messages
// to send and the events to persist. No sockets, threads or clocks inside: the daemon and the
// deterministic simulator drive the same code.
//
// A member keeps the ledger and takes part in joins:
//   - the member a joiner contacts (its sponsor) checks the request (signature, network,
//     protocol, code hash, freshness, not yet a member), forwards it to the other members,
//     and every member challenges the joiner's URL, approves once the joiner answers with
//     its key, and sends the approval to the sponsor; the sponsor emits member-added once it
//     holds ceil(ratio x members) approvals (members admitted meanwhile count, so it asks
//     them too), and tells the joiner; in a network of more than kCommitteeSize members the
//     sponsor asks only the join's committee (protocol/join.h) and needs a quorum of it;
//   - new events spread by push gossip (each node forwards a new event once, to ~ln N + 1
//     random members: N log N messages per change) and by periodic pull anti-entropy
//     (send my heads to a random member, receive what I lack), which also catches up nodes
//     that were down.
// A joiner first pulls the ledger from its seed (learning the network id and members), then
// sends its signed request, answers challenges, and retries with backoff (new nonce, another
// member) until its key is in the ledger.
//
// Not thread-safe: one owner drives it. Persist Output::new_events before sending
// Output::messages: an event is acknowledged (forwarded, answered) only once stored.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/rate_limit.h"
#include "crypto/ed25519.h"
#include "json/json.h"
#include "protocol/invitation.h"
#include "protocol/join.h"
#include "protocol/ledger.h"
#include "protocol/release.h"

namespace peerstack::protocol {

// Randomness, injected (the simulator seeds it).
class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t Next() = 0;
};

// A message between nodes. from/to are node URLs; body is the type's JSON.
struct Envelope {
  std::string from;
  std::string to;
  std::string type;  // join, challenge, answer, approval, refused, accepted, event, sync, events
  json::Value body;
};

struct Output {
  std::vector<Envelope> messages;
  std::vector<std::string> new_events;  // wire bytes, parents first: persist these first
  std::vector<std::string> refusals;    // reasons this node's own join was refused (joiner)
  // The ledger now stands on a newer checkpoint (it added one, or adopted a package): store
  // its genesis, CheckpointPackage() and AllInOrder() in place of everything stored (the
  // events of new_events are among them or pruned).
  bool rebased = false;
};

struct EngineConfig {
  std::string url;        // where this node answers
  std::string via;        // how (empty: directly; "upnp", "relay", "command")
  std::string code_hash;  // this node's code (what it presents when joining)
  int64_t sync_interval_ms = 1000;
  int64_t join_retry_ms = 2000;  // first retry; doubles up to join_retry_max_ms
  int64_t join_retry_max_ms = 30000;
  int64_t freshness_ms = 5 * 60 * 1000;  // a join request older (or newer) than this is stale
  size_t fanout = 0;                     // 0: ceil(ln N) + 1
  size_t sync_batch = 512;               // events per anti-entropy answer
  int64_t probe_interval_ms = 1000;      // SWIM: one member probed per interval
  int64_t probe_timeout_ms = 300;        // then ask probe_helpers others to probe it for us
  size_t probe_helpers = 3;
  // Memoises signature checks; not owned, may be null, may be shared between engines.
  crypto::VerifyCache* verify_cache = nullptr;
  // Shares parsed events with other engines' ledgers (the simulator); not owned, may be null.
  EventPool* event_pool = nullptr;
  // The invitation this node presents when it asks to join (an Invitation's JSON), or null.
  json::Value invitation;
  // Checkpoints (docs/protocol.md): the next one is due once this many events are held above
  // the last (0: this node never proposes one; it still approves and adopts them). The
  // proposer ranked r for it proposes after r x checkpoint_fallback_ms without one.
  size_t checkpoint_every = 0;
  int64_t checkpoint_fallback_ms = 5000;
  // A quiet ledger makes one sooner: once checkpoint_quiet_events are held above the last and
  // no event came for checkpoint_quiet_ms (0: not sooner), so that the next joiner of a
  // network that has settled verifies one checkpoint, not the events since the last. At least
  // that many events per checkpoint keeps the chain a joiner verifies short beside them.
  int64_t checkpoint_quiet_ms = 0;
  size_t checkpoint_quiet_events = 32;
};

class Engine {
 public:
  // A member, from its ledger.
  Engine(EngineConfig config, crypto::SigningKey key, Ledger ledger, Random* random);
  // A node that wants to join the network of the node at seed_url.
  Engine(EngineConfig config, crypto::SigningKey key, std::string seed_url, Random* random);

  void Receive(const Envelope& in, int64_t now_ms, Output* out);
  void Tick(int64_t now_ms, Output* out);
  // Anti-entropy with every other member now (an operator's "sync").
  void SyncWithAll(Output* out);
  // This member now answers at url: records and spreads a signed address event (when the
  // ledger's URL for us differs). Also becomes this engine's URL.
  // via names the path ("direct", "command", ...), shown to the others in /nodes.
  void AnnounceAddress(const std::string& url, int64_t now_ms, Output* out,
                       const std::string& via = "");
  // Publishes a release whose manifest carries these publisher signatures (made offline, at
  // least the threshold of them; this node need not be a publisher): "not_member", or the
  // ledger's refusal ("bad_event": rollback, too few signatures, another network...).
  Status PublishRelease(const Manifest& manifest, const std::vector<PublisherSignature>& sigs,
                        int64_t now_ms, Output* out);
  // Changes the publisher set (signatures of the current set's threshold over
  // PublisherSetPayload with the next sequence number, which the caller reads with
  // next_publishers_seq()).
  Status ChangePublishers(const std::vector<std::string>& keys, int64_t threshold,
                          const std::vector<PublisherSignature>& sigs, int64_t now_ms, Output* out);
  int64_t next_publishers_seq() const;
  // Reports how a release runs on this member ("healthy" or "failed" and why); once per
  // (release, status): a repeat is a no-op.
  Status ReportRelease(const std::string& release_event, const std::string& status,
                       const std::string& reason, int64_t now_ms, Output* out);
  // This node's code changed (it installed another release): what it presents from now on;
  // a joiner asks again at the next tick.
  void SetCodeHash(const std::string& code) {
    if (code == config_.code_hash) return;
    config_.code_hash = code;
    next_join_ms_ = 0;
    join_backoff_ms_ = 0;
  }
  // Re-forms the network around `keep` (member keys), signed by this node's key as the
  // network's publisher (threshold 1): every member not kept is removed. For when most
  // members are gone for good and no quorum can be reached.
  Status Recover(const std::vector<std::string>& keep, int64_t now_ms, Output* out);
  // An invitation to this network signed by this member, single use, valid until expires_ms:
  // "not_member", "open_network" (no invitation needed), "bad_request" (note too long).
  Result<Invitation> Invite(int64_t expires_ms, std::string note);
  // This member leaves the network (a member-removed event it signs alone). Error when not a
  // member or the last one.
  Status Leave(int64_t now_ms, Output* out);
  // Asks the members to evict the member with this key: each approves only if it does not
  // see that member online; with a quorum of approvals this node emits member-removed.
  Status StartEviction(const std::string& key_hex, int64_t now_ms, Output* out);

  // Checkpoints, for status pages: the one stood on (seq, hash), events above it, and a
  // round under way (the proposals this node asks approvals for, with their counts; the
  // sequences it has signed).
  json::Value CheckpointStatus() const;

  bool is_member() const;
  const Ledger* ledger() const { return ledger_ ? &*ledger_ : nullptr; }
  const std::string& url() const { return config_.url; }
  const std::string& key_hex() const { return key_hex_; }
  // Joins this node is sponsoring or approving that are not complete, for status pages.
  size_t pending_joins() const;
  // Approvals this node holds for the joins it sponsors.
  size_t pending_approvals() const;

  // What this node knows of the others' liveness (SWIM-style: members are probed round-robin,
  // one per interval; no direct answer within the timeout: a few others probe for us; no
  // answer at all within the interval: suspect, until anything is heard from it again).
  // Local knowledge, not consensus. By member URL; online = heard from and not suspect.
  struct PeerLiveness {
    int64_t last_heard_ms = 0;  // any message, ack or indirect ack
    bool suspect = false;       // the last probe got no answer, direct or indirect
    // The heads its last sync or events message named (sorted), and when: the same heads as
    // ours mean the same state (the dashboard's agreement).
    std::vector<std::string> heads;
    int64_t heads_ms = 0;
  };
  const std::map<std::string, PeerLiveness>& liveness() const { return liveness_; }
  bool IsOnline(const std::string& url, int64_t now_ms) const;
  // Whether the member at url last named the heads this node holds now; nullopt when it has
  // named none in the last minute.
  std::optional<bool> Agrees(const std::string& url, int64_t now_ms) const;

 private:
  struct Pending {
    JoinRequest request;
    std::string sponsor;  // URL of the member collecting approvals (maybe this node)
    std::string nonce;    // of our challenge
    bool answered = false;
    std::map<std::string, Approval> approvals;  // collected by the sponsor, by approver
    std::set<std::string> asked;                // the sponsor forwarded the request to (URLs)
    // The sponsor's view of the join's committee (networks over kCommitteeSize members), and
    // the ledger size it was computed at.
    std::set<std::string> committee;
    size_t committee_at = 0;
    int64_t created_ms = 0;
    bool done = false;
  };

  void OnJoin(const Envelope& in, int64_t now, Output* out);
  void OnChallenge(const Envelope& in, Output* out);
  void OnAnswer(const Envelope& in, int64_t now, Output* out);
  void OnApproval(const Envelope& in, int64_t now, Output* out);
  void OnEvent(const Envelope& in, Output* out);
  void OnSync(const Envelope& in, int64_t now, Output* out);
  void NoteHeads(const std::string& url, const json::Value* heads, int64_t now);
  void OnEvents(const Envelope& in, int64_t now, Output* out);
  void OnRefused(const Envelope& in, Output* out);
  void OnEvict(const Envelope& in, Output* out);
  void OnEvictApproval(const Envelope& in, int64_t now, Output* out);
  // Checkpoints: propose when due and ranked, approve (once per sequence), emit at a quorum.
  void TickCheckpoint(int64_t now, Output* out);
  void OnCheckpointPropose(const Envelope& in, int64_t now, Output* out);
  void OnCheckpointApproval(const Envelope& in, int64_t now, Output* out);
  void MaybeEmitCheckpoint(int64_t now, Output* out);
  // Past kCommitteeSize signers, checkpoint seq's committee (empty: every signer counts).
  std::set<std::string> CheckpointCommittee(int64_t seq) const;
  // Replaces the ledger by the one a newer checkpoint's package makes (kept: our events
  // above its cut).
  void Adopt(const json::Value& package, const std::string& from, int64_t now, Output* out);
  // After a message or a tick: a new checkpoint is reported for storage, and our events it
  // voided are signed anew on top of it.
  void Settle(int64_t now, Output* out);
  // Of these events, ours (not checkpoints) signed again on the current heads and spread.
  void SignAnew(const std::vector<std::string>& wires, int64_t now, Output* out);
  json::Value SyncBody() const;
  void Broadcast(const std::string& wire, Output* out);
  // Signs an event of ours on top of the current heads, adds it, queues it for storage;
  // returns its wire bytes.
  Result<std::string> EmitOwn(std::string kind, json::Value body, int64_t now, Output* out,
                              const std::vector<std::string>* parents = nullptr);
  void OnPing(const Envelope& in, Output* out);
  void OnPingReq(const Envelope& in, Output* out);
  void OnAck(const Envelope& in, int64_t now, Output* out);
  void Probe(int64_t now, Output* out);
  void Heard(const std::string& url, int64_t now);

  // Adds an event from the network; on success forwards it (gossip) and adopts orphans.
  void Accept(const std::string& wire, const std::string& from, Output* out);
  void Gossip(const std::string& wire, const std::string& except, Output* out);
  void MaybeComplete(const std::string& request_hash, int64_t now, Output* out);
  // Sponsor: forwards the joins it collects approvals for to members added since.
  void AskNewMembers(Output* out);
  // The join's committee as of our heads (null: the network is small enough for all).
  const std::set<std::string>* CommitteeFor(const std::string& hash, Pending& p);
  // Whom the sponsor asks to approve: the committee's members, or every other member.
  std::vector<std::string> ApproverUrls(const std::string& hash, Pending& p);
  void SendJoinRequest(int64_t now, Output* out);
  std::vector<std::string> OtherMemberUrls() const;
  // Up to k distinct random other members' URLs (not `except`), in O(k) at any member count.
  std::vector<std::string> RandomMemberUrls(size_t k, const std::string& except = "");
  std::string RandomHex(size_t bytes);
  void Send(Output* out, const std::string& to, std::string type, json::Value body) const;

  EngineConfig config_;
  crypto::SigningKey key_;
  std::string key_hex_;
  Random* random_;
  std::optional<Ledger> ledger_;
  std::map<std::string, Pending> pending_;      // by request hash
  std::map<std::string, std::string> orphans_;  // hash -> wire, waiting for parents
  std::set<std::string> seen_requests_;         // handled request hashes (replay guard)
  // Forwarded joins that reached us before the event admitting us (handled once admitted).
  std::vector<Envelope> early_joins_;
  // Answers to non-members' sync go to a URL they name: once per URL per 2 s, 20/s in all.
  RateLimit stranger_syncs_{1, 2000, 20};
  int64_t last_self_announce_ms_ = -1000000;                          // Tick's own-address repair
  std::map<std::string, std::map<std::string, Approval>> evictions_;  // key -> approvals (sponsor)
  int64_t next_sync_ms_ = 0;
  // SWIM probing.
  struct Probing {
    std::string target;
    uint64_t seq = 0;
    int64_t sent_ms = 0;
    bool indirect = false;
    bool answered = false;
  };
  std::map<std::string, PeerLiveness> liveness_;
  std::optional<Probing> probe_;
  struct Pass {  // the current round-robin pass: members[(start + i x stride) % n]
    size_t n = 0, start = 0, stride = 1, i = 0;
  } pass_;
  uint64_t next_seq_ = 1;
  int64_t next_probe_ms_ = 0;
  // ping-req we are helping with: our ping seq -> (requester URL, requester's seq).
  std::map<uint64_t, std::pair<std::string, uint64_t>> relays_;
  // Checkpoints.
  std::string stored_checkpoint_;  // the checkpoint last reported in Output::rebased (hash)
  int64_t checkpoint_due_ms_ = -1;
  std::pair<size_t, int64_t> quiet_since_{0, 0};     // (events above the checkpoint, since when)
  std::pair<int64_t, size_t> proposer_rank_{-1, 0};  // (seq, our rank for it)
  struct Candidate {
    CheckpointProposal proposal;
    std::map<std::string, Approval> approvals;  // by approver key
  };
  struct Proposing {
    int64_t seq = 0;
    std::string current;                          // the candidate we ask for (its hash)
    std::map<std::string, Candidate> candidates;  // by proposal hash
    int64_t sent_ms = -1000000;
  };
  std::optional<Proposing> proposing_;
  // What we signed, per sequence, and when. One proposal per sequence until the lock
  // expires (4 fallback intervals without the checkpoint: its votes split,
  // docs/protocol.md).
  struct Lock {
    CheckpointProposal proposal;
    Approval approval;
    int64_t at_ms = 0;
  };
  std::map<int64_t, Lock> checkpoint_locks_;
  // Signs p for its sequence unless we hold an unexpired lock on another; the lock.
  const Lock& LockOn(const CheckpointProposal& p, int64_t now);
  // Joiner state.
  std::string seed_url_;
  bool joining_ = false;  // constructed to join (and not left since): ask until admitted
  std::optional<JoinRequest> my_request_;
  int64_t next_join_ms_ = 0;
  int64_t join_backoff_ms_ = 0;
};

}  // namespace peerstack::protocol
