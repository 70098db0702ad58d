// Case 1 of the seed: the first node creates the network. The genesis event names the
// network's parameters (approval ratio, publisher keys and threshold, protocol version) and
// its founding members (the author first), and is signed by the author. The network id is the
// genesis event's hash.
//
// NetworkState is the deterministic fold of the valid events; for now only genesis exists
// (joins, removals, addresses and releases come with the network protocol).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "protocol/event.h"

namespace peerstack::protocol {

struct GenesisParams {
  int64_t approval_numerator = 2;  // a join needs ceil(num/den x members) approvals
  int64_t approval_denominator = 3;
  int64_t publisher_threshold = 1;
  // The code hash a joiner must present (hash of its plugin set) until releases change it;
  // empty accepts any (development networks).
  std::string code_hash;
  // Other founding members besides the author: (hex key, url). Usually none; a network
  // founded by several nodes at once (and the simulator's large networks) lists them.
  std::vector<std::pair<std::string, std::string>> founders;
  // The publisher keys (hex) whose signatures releases need, publisher_threshold of them;
  // empty: the author's key alone.
  std::vector<std::string> publishers;
  // Who may join: "open" (any node presenting an accepted code) or "invite" (a join also
  // needs an unused, unexpired invitation made by a member: protocol/invitation.h). A genesis
  // without the field is "open". `peerstack run` founds "invite" networks unless told.
  std::string admission = "open";
};

// A signed genesis event naming key as the only member and publisher, reachable at url.
Result<Event> MakeGenesis(const crypto::SigningKey& key, const std::string& url, int64_t time_ms,
                          const GenesisParams& params = {});

// A genesis may name many founders (the simulator founds networks of thousands at once), so
// it may be larger than other events (256 KiB); what travels is still capped by the message
// limit (protocol/envelope.h).
constexpr size_t kMaxGenesisBytes = 16 << 20;

// ceil(num/den x members), at least 1: the approvals a join or an eviction needs.
size_t QuorumOf(const GenesisParams& params, size_t members);

struct Member {
  std::string id;   // NodeIdFor(key)
  std::string key;  // hex public key
  std::string url;
  int64_t joined_ms = 0;
  std::string via;  // how the member says it is reached ("direct", "command", ...); may be empty
};

// The members, sorted by id, shared copy-on-write: copies of a state share one vector, and
// so do the simulator's ledgers that made the same change (Ledger's EventPool). Reads as a
// const std::vector<Member>; a change copies the vector first when another holder shares it.
class MemberList {
 public:
  MemberList();
  explicit MemberList(std::vector<Member> rows);  // sorts by id
  explicit MemberList(std::shared_ptr<const std::vector<Member>> rows) : rows_(std::move(rows)) {}
  operator const std::vector<Member>&() const { return *rows_; }
  const std::vector<Member>& rows() const { return *rows_; }
  std::vector<Member>::const_iterator begin() const { return rows_->begin(); }
  std::vector<Member>::const_iterator end() const { return rows_->end(); }
  size_t size() const { return rows_->size(); }
  bool empty() const { return rows_->empty(); }
  const Member& operator[](size_t i) const { return (*rows_)[i]; }
  const Member& front() const { return rows_->front(); }

  // By binary search on NodeIdFor(key); null for a key that is no member's (or not a key).
  const Member* FindByKey(std::string_view key_hex) const;
  size_t count(std::string_view key_hex) const { return FindByKey(key_hex) ? 1 : 0; }
  // Changes. Put inserts or replaces the member with m.id; Erase removes the key's member.
  void Put(Member m);
  void Erase(std::string_view key_hex);
  void Keep(const std::set<std::string>& keys);  // removes every member not in keys
  const std::shared_ptr<const std::vector<Member>>& shared() const { return rows_; }

 private:
  std::vector<Member>& Edit();                       // a vector of our own
  std::shared_ptr<const std::vector<Member>> rows_;  // never null
};

struct NetworkState {
  std::string network_id;  // hash of the genesis event
  // Invitations used so far: invitation hash -> the key of the member it admitted.
  std::map<std::string, std::string> invitations_used;
  int64_t created_ms = 0;
  GenesisParams params;
  std::vector<std::string> publishers;  // hex public keys
  MemberList members;                   // sorted by id
  // The release in force: its manifest version (0: none yet) and the code hash joiners must
  // present (the genesis code until a release replaces it).
  int64_t release_version = 0;
  std::string accepted_code;
  // The release in force and the one before it (docs/releases.md). event: the release event's
  // hash (empty for release 0, the genesis code); time_ms: the event's time.
  struct ReleaseRef {
    std::string event;
    int64_t version = 0;
    std::string code;
    int64_t time_ms = 0;
  };
  ReleaseRef release;
  ReleaseRef previous;  // version -1 when there is none
  // What members reported of a release: by release event hash, then by member key.
  struct Report {
    std::string status;  // "healthy" or "failed"
    std::string reason;
    int64_t time_ms = 0;
  };
  std::map<std::string, std::map<std::string, Report>> reports;  // current and previous only
  int64_t publishers_seq = 0;  // rises with each publisher-set change

  // The codes a joiner may present: the release in force and the one before it (both run
  // while a rollout is under way, and after a halted one). Empty entries are left out; an
  // empty list accepts any code (a development network whose genesis names none).
  std::vector<std::string> AcceptedCodes() const;
  static std::vector<std::string> AcceptedCodesOf(const ReleaseRef& release,
                                                  const ReleaseRef& previous);

  // By binary search on id (members are sorted by id).
  const Member* FindMemberByKey(const std::string& key_hex) const;
  // The member answering at url, or null (a scan: URLs are not indexed).
  const Member* FindMemberByUrl(std::string_view url) const;
  // ceil(num/den x members): approvals a join needs.
  size_t Quorum() const { return QuorumOf(params, members.size()); }
  // sha256 over the canonical JSON of the state: equal on two nodes iff their states agree.
  std::string StateHash() const;
};

// Validates a genesis event (signature, shape, author is the single member and publisher)
// and returns the state it creates. wire is the event's encoded bytes.
Result<NetworkState> StateFromGenesis(const std::string& wire);

}  // namespace peerstack::protocol
