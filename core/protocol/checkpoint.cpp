#include "protocol/checkpoint.h"

#include <algorithm>
#include <set>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "protocol/event.h"
#include "protocol/genesis.h"

namespace peerstack::protocol {
namespace {

constexpr char kCheckpointDomain[] = "checkpoint";
constexpr size_t kMaxCut = 16;

Status Bad(std::string message) { return Status::Error("bad_event", std::move(message)); }

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len && crypto::HexDecode(s).has_value();
}

std::string Payload(const std::string& network, const CheckpointProposal& p) {
  json::Value v = p.ToJson();
  v.as_object().emplace("network", network);
  return json::Serialize(v);
}

std::string Digest(std::string_view domain, std::string_view bytes) {
  std::string input(domain);
  input.push_back('\0');
  input.append(bytes);
  return crypto::Sha256Hex(input);
}

}  // namespace

json::Value CheckpointProposal::ToJson() const {
  json::Array c(cut.begin(), cut.end());
  json::Array d(depths.begin(), depths.end());
  return json::Object{{"cut", std::move(c)},
                      {"depths", std::move(d)},
                      {"members", members},
                      {"seq", seq},
                      {"state", state}};
}

std::string CheckpointProposal::Hash() const {
  return Digest("peerstack/checkpoint-proposal/v1", json::Serialize(ToJson()));
}

Result<CheckpointProposal> ParseCheckpointProposal(const json::Value& v) {
  if (!v.is_object() || v.as_object().size() != 5) return Bad("a checkpoint has 5 fields");
  const json::Value* cut = v.find("cut");
  const json::Value* depths = v.find("depths");
  const std::string* members = v.find_string("members");
  const int64_t* seq = v.find_int("seq");
  const std::string* state = v.find_string("state");
  if (!cut || !cut->is_array() || !depths || !depths->is_array() || !members || !seq || !state) {
    return Bad("a checkpoint needs cut, depths, members, seq and state");
  }
  CheckpointProposal p;
  p.seq = *seq;
  p.members = *members;
  p.state = *state;
  if (p.seq < 1) return Bad("checkpoint sequence below 1");
  if (!IsHex(p.members, 64) || !IsHex(p.state, 64)) return Bad("checkpoint digests are not hex");
  const auto& c = cut->as_array();
  if (c.empty() || c.size() > kMaxCut || depths->as_array().size() != c.size()) {
    return Bad("a checkpoint's cut has 1 to 16 events and a depth for each");
  }
  for (size_t i = 0; i < c.size(); ++i) {
    const json::Value& d = depths->as_array()[i];
    if (!c[i].is_string() || !IsHex(c[i].as_string(), 64) || !d.is_int() || d.as_int() < 0) {
      return Bad("a cut event is a hash with a depth");
    }
    if (i > 0 && !(p.cut.back() < c[i].as_string())) return Bad("the cut is not sorted");
    p.cut.push_back(c[i].as_string());
    p.depths.push_back(d.as_int());
  }
  return p;
}

Approval MakeCheckpointApproval(const crypto::SigningKey& key, const std::string& network,
                                const CheckpointProposal& p) {
  Approval a;
  a.approver = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  const crypto::Signature sig = key.SignWithDomain(kCheckpointDomain, Payload(network, p));
  a.sig = crypto::HexEncode(sig.data(), sig.size());
  return a;
}

Status VerifyCheckpointApproval(const Approval& a, const std::string& network,
                                const CheckpointProposal& p, crypto::VerifyCache* cache) {
  if (!IsHex(a.approver, 64) || !IsHex(a.sig, 128)) return Bad("malformed approval");
  return VerifyHexSignature(a.approver, kCheckpointDomain, Payload(network, p), a.sig, cache);
}

std::string CheckpointCommitteeSeed(const std::string& network, int64_t seq) {
  return Digest("peerstack/checkpoint-committee/v1", network + "/" + std::to_string(seq));
}

Status CheckCheckpointApprovals(const json::Value& approvals, const std::string& network,
                                const CheckpointProposal& p, const std::vector<Member>& signers,
                                const GenesisParams& params, crypto::VerifyCache* cache) {
  if (!approvals.is_array()) return Bad("approvals are a list");
  const auto& list = approvals.as_array();
  if (list.size() > 4096) return Bad("too many approvals");
  std::set<std::string> allowed;
  for (const Member& m : signers) allowed.insert(m.key);
  std::set<std::string> approvers;
  for (const json::Value& j : list) {
    auto a = ParseApproval(j);
    if (!a) return Bad("approval: " + a.status().message());
    if (!allowed.count(a->approver)) {
      return Bad("approval from a key the previous checkpoint does not name");
    }
    if (!approvers.insert(a->approver).second) return Bad("duplicate approver");
    if (auto s = VerifyCheckpointApproval(*a, network, p, cache); !s.ok()) {
      return Bad("approval signature: " + s.message());
    }
  }
  const size_t quorum = QuorumOf(params, signers.size());
  if (approvers.size() >= quorum) return Status::Ok();
  if (signers.size() <= kCommitteeSize) {
    return Bad("checkpoint has " + std::to_string(approvers.size()) + " approvals, needs " +
               std::to_string(quorum));
  }
  const std::set<std::string> committee =
      CommitteeOf(CheckpointCommitteeSeed(network, p.seq), signers);
  size_t in = 0;
  for (const std::string& a : approvers) in += committee.count(a);
  const size_t need = QuorumOf(params, kCommitteeSize);
  if (in >= need) return Status::Ok();
  return Bad("checkpoint has " + std::to_string(in) + " approvals of its committee, needs " +
             std::to_string(need));
}

std::string MembersDigest(const std::vector<Member>& members) {
  std::string keys;
  keys.reserve(members.size() * 65);
  for (const Member& m : members) keys.append(m.key).push_back('\n');
  return Digest("peerstack/checkpoint-members/v1", keys);
}

std::string StateDigest(const json::Value& state) {
  return Digest("peerstack/checkpoint-state/v1", json::Serialize(state));
}

size_t ProposerRank(const std::string& network, int64_t seq, const std::vector<Member>& members,
                    const std::string& key_hex) {
  const std::string prefix =
      "peerstack/checkpoint-proposer/v1/" + network + "/" + std::to_string(seq) + "/";
  const crypto::Digest mine = crypto::Sha256(prefix + key_hex);
  size_t rank = 0;
  for (const Member& m : members) {
    if (m.key != key_hex && crypto::Sha256(prefix + m.key) < mine) ++rank;
  }
  return rank;
}

}  // namespace peerstack::protocol
