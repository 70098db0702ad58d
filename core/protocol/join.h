// The signed messages of a join (docs/design.md section 5), sans-I/O.
//
//   JoinRequest    signed by the joiner (domain "join-request"): key, url, code hash,
//                  protocol version, network id, nonce, time, and on a network that admits
//                  by invitation the invitation (protocol/invitation.h). Its hash (sha256 of
//                  the canonical unsigned body) names the join everywhere else.
//   Challenge      a member's nonce sent to the joiner's URL; the Answer is signed by the
//                  joiner (domain "join-challenge") over the nonce and the request hash, which
//                  proves the key holder answers at that URL.
//   Approval       signed by a member (domain "join-approval") over network id + request hash.
//
// A member-added event carries the request and a quorum of approvals (the certificate).
// Every signature is over canonical JSON with its own domain, so none can pass as another.
//
// In a network of more than kCommitteeSize members a certificate may instead carry a
// quorum of the join's committee: the kCommitteeSize members whose SHA-256 over
// ("peerstack/committee/v1", request hash, key) is smallest, a rule every node computes the
// same way from the members as of the event's parents. Certificates then stop growing with
// the network (at most 171 approvals, about 41 KB). docs/protocol.md, "Committees", gives
// the safety argument.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::protocol {

struct JoinRequest {
  std::string key;      // joiner's public key, hex
  std::string url;      // where the joiner answers
  std::string code;     // hash of the joiner's code (plugin set)
  std::string network;  // the network it asks to join
  std::string nonce;    // random, hex
  int64_t protocol = 0;
  int64_t time_ms = 0;
  std::string sig;         // hex
  json::Value invitation;  // an Invitation's JSON, or null (then not in the signed body)

  json::Value Unsigned() const;
  json::Value ToJson() const;  // with "sig"
  std::string Hash() const;    // sha256 hex of the canonical unsigned body
};

JoinRequest MakeJoinRequest(const crypto::SigningKey& key, std::string url, std::string code,
                            std::string network, std::string nonce, int64_t time_ms,
                            json::Value invitation = nullptr);
Result<JoinRequest> ParseJoinRequest(const json::Value& v);
// Signature and field shapes only; freshness and membership are the engine's business.
Status VerifyJoinRequest(const JoinRequest& r, crypto::VerifyCache* cache = nullptr);

struct Approval {
  std::string approver;  // member's public key, hex
  std::string sig;       // over {"approver","network","request"}
  json::Value ToJson() const;
};

Approval MakeApproval(const crypto::SigningKey& key, const std::string& network,
                      const std::string& request_hash);
Result<Approval> ParseApproval(const json::Value& v);
Status VerifyApproval(const Approval& a, const std::string& network,
                      const std::string& request_hash, crypto::VerifyCache* cache = nullptr);

// Eviction approvals: a member agrees that `key` should be removed (domain "evict-approval",
// over network id + key). Same shape as join approvals.
Approval MakeEvictionApproval(const crypto::SigningKey& key, const std::string& network,
                              const std::string& evicted_key);
Status VerifyEvictionApproval(const Approval& a, const std::string& network,
                              const std::string& evicted_key, crypto::VerifyCache* cache = nullptr);

// The joiner's answer to a challenge.
std::string SignChallenge(const crypto::SigningKey& key, const std::string& nonce,
                          const std::string& request_hash);
Status VerifyChallenge(const std::string& key_hex, const std::string& nonce,
                       const std::string& request_hash, const std::string& sig_hex);

struct Member;  // protocol/genesis.h

// A join's committee: of these members' keys (hex), the kCommitteeSize whose
// SHA-256("peerstack/committee/v1" 0 request_hash 0 key) is smallest; all of them when there
// are no more than that.
constexpr size_t kCommitteeSize = 256;
std::set<std::string> CommitteeOf(std::string_view request_hash,
                                  const std::vector<Member>& members);

// Helpers shared by the protocol files.
Status VerifyHexSignature(const std::string& key_hex, std::string_view domain,
                          const std::string& payload, const std::string& sig_hex,
                          crypto::VerifyCache* cache = nullptr);

}  // namespace peerstack::protocol
