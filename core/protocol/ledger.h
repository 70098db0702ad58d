// The network's event DAG and the state folded from it, sans-I/O.
//
// Events are added only when their parents are present; each is validated against its
// ancestors alone, so every node judges it the same way. A member-added event is valid when
// its author and every approver were members as of its parents, the approvals are distinct,
// correctly signed over the request, and at least ceil(num/den x members-at-parents), the
// request is correctly signed for this network, protocol and accepted code, and the joiner
// was not yet a member at the parents.
//
// An address event (a member's new URL) is valid when its author was a member as of its
// parents and its sequence number is above every address sequence of that author among its
// ancestors; the URL in force is the one of the author's address event with the highest
// (sequence, hash).
//
// The state is a deterministic function of the event set: members are the genesis member
// plus every admitted key; when concurrent events admit the same key, the one with the
// smallest (depth, hash) decides its record. Two ledgers with the same events have the same
// StateHash(). Not thread-safe (the engine owning it serialises access).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "protocol/event.h"
#include "protocol/genesis.h"
#include "protocol/join.h"

namespace peerstack::protocol {

class Ledger {
 public:
  static Result<Ledger> FromGenesis(const std::string& wire);
  // Optional: memoises signature checks (shared with the engine; not owned).
  void set_verify_cache(crypto::VerifyCache* cache) { cache_ = cache; }

  enum class Added { kAdded, kDuplicate, kMissingParents };
  // Validates and adds one event (its canonical wire bytes). An invalid event is an error
  // ("bad_event" and why) and changes nothing.
  Result<Added> Add(const std::string& wire);

  const NetworkState& state() const { return state_; }
  std::string StateHash() const { return state_.StateHash(); }
  const std::string& network_id() const { return state_.network_id; }
  std::vector<std::string> Heads() const { return {heads_.begin(), heads_.end()}; }
  bool Has(const std::string& hash) const { return events_.count(hash) != 0; }
  const std::string* Wire(const std::string& hash) const;
  size_t size() const { return events_.size(); }
  bool IsMember(const std::string& key_hex) const { return admitted_.count(key_hex) != 0; }

  // What a peer whose heads are `their_heads` lacks, in an order that can be added one by one
  // (parents first); at most `limit`. Heads we do not know are reported in *unknown.
  std::vector<std::string> Missing(const std::vector<std::string>& their_heads, size_t limit,
                                   std::vector<std::string>* unknown) const;
  // Every event, parents first (genesis first): what to persist or replay.
  std::vector<std::string> AllInOrder() const;

  // The member-added event body for a certificate (used by the engine, checked by Add).
  static json::Value MemberAddedBody(const JoinRequest& request,
                                     const std::vector<Approval>& approvals);
  // The body of an address event announcing url with sequence seq.
  static json::Value AddressBody(const std::string& url, int64_t seq);
  // The highest address sequence of a member (0 if it never announced one).
  int64_t AddressSeq(const std::string& key_hex) const;

 private:
  struct Node {
    std::string wire;
    Event event;
    int64_t depth = 0;
  };
  struct Admission {
    int64_t depth;
    std::string event_hash;
    Member member;
  };

  Status ValidateMemberAdded(const Event& e) const;
  Status ValidateAddress(const Event& e) const;
  void RebuildMembers();
  std::set<std::string> MembersAt(const std::vector<std::string>& parents) const;
  std::set<std::string> Ancestors(const std::vector<std::string>& from) const;
  void Fold(const std::string& hash, const Node& node);

  std::unordered_map<std::string, Node> events_;
  std::set<std::string> heads_;
  std::map<std::string, Admission> admitted_;  // by member key
  struct Address {
    int64_t seq;
    std::string event_hash;
    std::string url;
  };
  std::map<std::string, Address> addresses_;  // by member key: the URL in force
  std::string genesis_key_;
  NetworkState state_;
  crypto::VerifyCache* cache_ = nullptr;
};

}  // namespace peerstack::protocol
