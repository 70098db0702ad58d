// Checkpoints (docs/protocol.md, "Checkpoints"), the parts that are pure data: a proposal,
// the approvals members sign over it, and the package that carries a checkpoint to a node
// that lacks the events below it. The ledger (protocol/ledger.h) judges them and prunes.
//
// A checkpoint with sequence s states that the events up to a cut (a set of at most 16
// events, the proposer's heads) fold into a state with a given hash, naming the members at
// the cut. It is signed by a quorum of the members named by checkpoint s - 1 (the genesis
// founders for s = 1): ceil(num/den) of them, or past kCommitteeSize of them that share of
// the checkpoint's committee, CommitteeOf(CheckpointCommitteeSeed(network, s), ...). So a
// node holding only the genesis verifies the chain link by link, each checkpoint by the
// membership the one before it named, and trusts the state of the last one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"
#include "protocol/genesis.h"
#include "protocol/join.h"

namespace peerstack::protocol {

struct CheckpointProposal {
  int64_t seq = 0;
  std::vector<std::string> cut;  // event hashes, sorted: the checkpoint event's parents
  std::vector<int64_t> depths;   // each cut event's depth, in cut order
  std::string state;             // StateDigest of the state folded up to the cut
  std::string members;           // MembersDigest of the members at the cut
  json::Value ToJson() const;
  // Identity of the proposal (what a member locks on): sha256 of its canonical JSON.
  std::string Hash() const;
  bool operator==(const CheckpointProposal&) const = default;
};
// Strict: the exact fields, 1..16 sorted distinct hashes, as many depths, hex digests.
Result<CheckpointProposal> ParseCheckpointProposal(const json::Value& v);

// Approvals over (network, proposal), domain "checkpoint".
Approval MakeCheckpointApproval(const crypto::SigningKey& key, const std::string& network,
                                const CheckpointProposal& p);
Status VerifyCheckpointApproval(const Approval& a, const std::string& network,
                                const CheckpointProposal& p, crypto::VerifyCache* cache = nullptr);
// The seed of checkpoint s's committee (fixed by network and s: a proposer cannot grind it).
std::string CheckpointCommitteeSeed(const std::string& network, int64_t seq);
// Whether these approvals are a quorum for checkpoint p signed by `signers` (the members the
// previous checkpoint named): distinct, each a signer's and valid, and ceil(num/den x
// signers) of them or that share of the committee. An error says what is short.
Status CheckCheckpointApprovals(const json::Value& approvals, const std::string& network,
                                const CheckpointProposal& p, const std::vector<Member>& signers,
                                const GenesisParams& params, crypto::VerifyCache* cache);

// sha256 over a domain and the member keys in id order (what a checkpoint names).
std::string MembersDigest(const std::vector<Member>& members);
// sha256 over a domain and the canonical JSON of a folded state.
std::string StateDigest(const json::Value& state);

// Who proposes checkpoint s: members ranked by SHA-256(domain, network, s, key). The first
// proposes as soon as the checkpoint is due; the one ranked r after r fallback intervals
// without a checkpoint (a silent proposer delays the checkpoint, it does not stop it).
size_t ProposerRank(const std::string& network, int64_t seq, const std::vector<Member>& members,
                    const std::string& key_hex);

}  // namespace peerstack::protocol
