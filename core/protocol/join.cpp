#include "protocol/join.h"

#include <algorithm>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "protocol/event.h"
#include "protocol/genesis.h"

namespace peerstack::protocol {
namespace {

constexpr char kJoinDomain[] = "join-request";
constexpr char kApprovalDomain[] = "join-approval";
constexpr char kChallengeDomain[] = "join-challenge";

Status Bad(std::string message) { return Status::Error("bad_message", std::move(message)); }

std::string Hex(const crypto::Signature& s) { return crypto::HexEncode(s.data(), s.size()); }

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len && crypto::HexDecode(s).has_value();
}

}  // namespace

Status VerifyHexSignature(const std::string& key_hex, std::string_view domain,
                          const std::string& payload, const std::string& sig_hex,
                          crypto::VerifyCache* cache) {
  auto key = crypto::HexDecode(key_hex);
  auto sig = crypto::HexDecode(sig_hex);
  if (!key || !sig) return Bad("key or signature is not hex");
  if (NodeIdForHex(key_hex).empty()) return Bad("key is not a public key in lower-case hex");
  return crypto::VerifyWithDomain(
      std::string_view(reinterpret_cast<const char*>(key->data()), key->size()), domain, payload,
      std::string_view(reinterpret_cast<const char*>(sig->data()), sig->size()), cache);
}

json::Value JoinRequest::Unsigned() const {
  json::Value v = json::Object{{"code", code},   {"key", key},           {"network", network},
                               {"nonce", nonce}, {"protocol", protocol}, {"time", time_ms},
                               {"url", url}};
  if (!invitation.is_null()) v.as_object().emplace("invitation", invitation);
  return v;
}

json::Value JoinRequest::ToJson() const {
  json::Value v = Unsigned();
  v.as_object().emplace("sig", sig);
  return v;
}

std::string JoinRequest::Hash() const { return crypto::Sha256Hex(json::Serialize(Unsigned())); }

JoinRequest MakeJoinRequest(const crypto::SigningKey& key, std::string url, std::string code,
                            std::string network, std::string nonce, int64_t time_ms,
                            json::Value invitation) {
  JoinRequest r;
  r.invitation = std::move(invitation);
  r.key = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  r.url = std::move(url);
  r.code = std::move(code);
  r.network = std::move(network);
  r.nonce = std::move(nonce);
  r.protocol = kProtocolVersion;
  r.time_ms = time_ms;
  r.sig = Hex(key.SignWithDomain(kJoinDomain, json::Serialize(r.Unsigned())));
  return r;
}

Result<JoinRequest> ParseJoinRequest(const json::Value& v) {
  const json::Value* invitation = v.is_object() ? v.find("invitation") : nullptr;
  if (!v.is_object() || v.as_object().size() != (invitation ? 9u : 8u)) {
    return Bad("join request must have 8 fields, 9 with an invitation");
  }
  if (invitation && !invitation->is_object())
    return Bad("join request invitation is not an object");
  const std::string* code = v.find_string("code");
  const std::string* key = v.find_string("key");
  const std::string* network = v.find_string("network");
  const std::string* nonce = v.find_string("nonce");
  const std::string* url = v.find_string("url");
  const std::string* sig = v.find_string("sig");
  const int64_t* protocol = v.find_int("protocol");
  const int64_t* time = v.find_int("time");
  if (!code || !key || !network || !nonce || !url || !sig || !protocol || !time) {
    return Bad("join request fields missing or of the wrong type");
  }
  if (url->size() > 2048 || nonce->size() > 128 || code->size() > 128) {
    return Bad("join request field too long");
  }
  return JoinRequest{*key,     *url,   *code,
                     *network, *nonce, *protocol,
                     *time,    *sig,   invitation ? *invitation : json::Value(nullptr)};
}

Status VerifyJoinRequest(const JoinRequest& r, crypto::VerifyCache* cache) {
  if (!IsHex(r.key, 64) || !IsHex(r.sig, 128)) return Bad("malformed key or signature");
  return VerifyHexSignature(r.key, kJoinDomain, json::Serialize(r.Unsigned()), r.sig, cache);
}

json::Value Approval::ToJson() const { return json::Object{{"approver", approver}, {"sig", sig}}; }

namespace {
std::string ApprovalPayload(const std::string& approver, const std::string& network,
                            const std::string& request_hash) {
  return json::Serialize(
      json::Object{{"approver", approver}, {"network", network}, {"request", request_hash}});
}
}  // namespace

Approval MakeApproval(const crypto::SigningKey& key, const std::string& network,
                      const std::string& request_hash) {
  Approval a;
  a.approver = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  a.sig =
      Hex(key.SignWithDomain(kApprovalDomain, ApprovalPayload(a.approver, network, request_hash)));
  return a;
}

Result<Approval> ParseApproval(const json::Value& v) {
  if (!v.is_object() || v.as_object().size() != 2) return Bad("approval must have 2 fields");
  const std::string* approver = v.find_string("approver");
  const std::string* sig = v.find_string("sig");
  if (!approver || !sig) return Bad("approval fields missing");
  return Approval{*approver, *sig};
}

Status VerifyApproval(const Approval& a, const std::string& network,
                      const std::string& request_hash, crypto::VerifyCache* cache) {
  if (!IsHex(a.approver, 64) || !IsHex(a.sig, 128)) return Bad("malformed approval");
  return VerifyHexSignature(a.approver, kApprovalDomain,
                            ApprovalPayload(a.approver, network, request_hash), a.sig, cache);
}

namespace {
constexpr char kEvictDomain[] = "evict-approval";
std::string EvictPayload(const std::string& approver, const std::string& network,
                         const std::string& key) {
  return json::Serialize(json::Object{{"approver", approver}, {"key", key}, {"network", network}});
}
}  // namespace

Approval MakeEvictionApproval(const crypto::SigningKey& key, const std::string& network,
                              const std::string& evicted_key) {
  Approval a;
  a.approver = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  a.sig = Hex(key.SignWithDomain(kEvictDomain, EvictPayload(a.approver, network, evicted_key)));
  return a;
}

Status VerifyEvictionApproval(const Approval& a, const std::string& network,
                              const std::string& evicted_key, crypto::VerifyCache* cache) {
  if (!IsHex(a.approver, 64) || !IsHex(a.sig, 128)) return Bad("malformed approval");
  return VerifyHexSignature(a.approver, kEvictDomain,
                            EvictPayload(a.approver, network, evicted_key), a.sig, cache);
}

namespace {
std::string ChallengePayload(const std::string& nonce, const std::string& request_hash) {
  return json::Serialize(json::Object{{"nonce", nonce}, {"request", request_hash}});
}
}  // namespace

std::string SignChallenge(const crypto::SigningKey& key, const std::string& nonce,
                          const std::string& request_hash) {
  return Hex(key.SignWithDomain(kChallengeDomain, ChallengePayload(nonce, request_hash)));
}

Status VerifyChallenge(const std::string& key_hex, const std::string& nonce,
                       const std::string& request_hash, const std::string& sig_hex) {
  return VerifyHexSignature(key_hex, kChallengeDomain, ChallengePayload(nonce, request_hash),
                            sig_hex);
}

std::set<std::string> CommitteeOf(std::string_view request_hash,
                                  const std::vector<Member>& members) {
  if (members.size() <= kCommitteeSize) {
    std::set<std::string> all;
    for (const Member& m : members) all.insert(m.key);
    return all;
  }
  std::string prefix("peerstack/committee/v1");
  prefix.push_back('\0');
  prefix.append(request_hash);
  prefix.push_back('\0');
  std::vector<std::pair<crypto::Digest, std::string_view>> ranked;
  ranked.reserve(members.size());
  for (const Member& m : members) {
    std::string input = prefix;
    input.append(m.key);
    ranked.emplace_back(crypto::Sha256(input), m.key);
  }
  std::nth_element(ranked.begin(), ranked.begin() + kCommitteeSize, ranked.end());
  std::set<std::string> committee;
  for (size_t i = 0; i < kCommitteeSize; ++i) committee.emplace(ranked[i].second);
  return committee;
}

}  // namespace peerstack::protocol
