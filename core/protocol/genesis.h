// Case 1 of the seed: the first node creates the network. The genesis event names the
// network's parameters (approval ratio, publisher keys and threshold, protocol version) and
// its founding members (the author first), and is signed by the author. The network id is the genesis event's hash.
//
// NetworkState is the deterministic fold of the valid events; for now only genesis exists
// (joins, removals, addresses and releases come with the network protocol).
#pragma once

#include <cstdint>
#include <string>
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
};

// A signed genesis event naming key as the only member and publisher, reachable at url.
Result<Event> MakeGenesis(const crypto::SigningKey& key, const std::string& url, int64_t time_ms,
                          const GenesisParams& params = {});

// ceil(num/den x members), at least 1: the approvals a join or an eviction needs.
size_t QuorumOf(const GenesisParams& params, size_t members);

struct Member {
  std::string id;   // NodeIdFor(key)
  std::string key;  // hex public key
  std::string url;
  int64_t joined_ms = 0;
  std::string via;  // how the member says it is reached ("direct", "command", ...); may be empty
};

struct NetworkState {
  std::string network_id;  // hash of the genesis event
  int64_t created_ms = 0;
  GenesisParams params;
  std::vector<std::string> publishers;  // hex public keys
  std::vector<Member> members;          // sorted by id
  // The release in force: its manifest version (0: none yet) and the code hash joiners must
  // present (the genesis code until a release replaces it).
  int64_t release_version = 0;
  std::string accepted_code;

  const Member* FindMemberByKey(const std::string& key_hex) const;
  // ceil(num/den x members): approvals a join needs.
  size_t Quorum() const { return QuorumOf(params, members.size()); }
  // sha256 over the canonical JSON of the state: equal on two nodes iff their states agree.
  std::string StateHash() const;
};

// Validates a genesis event (signature, shape, author is the single member and publisher)
// and returns the state it creates. wire is the event's encoded bytes.
Result<NetworkState> StateFromGenesis(const std::string& wire);

}  // namespace peerstack::protocol
