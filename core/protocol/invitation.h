// Invitations: who may join a network whose genesis says admission "invite"
// (docs/protocol.md, "Invitations").
//
//   Invitation  signed by a member (domain "invitation") over the canonical JSON of
//               {expires, id, inviter, network, note}: single use (its hash is recorded by the
//               member-added event that uses it), valid until `expires` (ms since the epoch),
//               with an optional note for people (at most 200 bytes).
//   token       how it travels (a link's ?invite=, --invite, inside a /download file): the hex
//               of its canonical JSON with "sig", at most kMaxInvitationToken characters.
//
// CheckInvitation is the one admission rule, used by the ledger (against the members and the
// used invitations as of an event's parents, with the request's time) and by members judging
// a join (against their current state and clock), so both refuse for the same reasons.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::protocol {

inline constexpr size_t kMaxInvitationNote = 200;
inline constexpr size_t kMaxInvitationToken = 4096;  // a note of 200 escaped bytes fits

struct Invitation {
  std::string network;  // the network id
  std::string inviter;  // the member's public key, hex
  std::string id;       // random, 32 hex digits
  int64_t expires_ms = 0;
  std::string note;
  std::string sig;  // hex

  json::Value Unsigned() const;
  json::Value ToJson() const;  // with "sig"
  std::string Hash() const;    // sha256 hex of the canonical unsigned body: what "used" records
};

Invitation MakeInvitation(const crypto::SigningKey& key, std::string network, std::string id,
                          int64_t expires_ms, std::string note);
// Shape only (exactly the six fields, lengths); VerifyInvitation checks the signature.
Result<Invitation> ParseInvitation(const json::Value& v);
Status VerifyInvitation(const Invitation& inv, crypto::VerifyCache* cache = nullptr);

std::string InvitationToken(const Invitation& inv);
// Errors: "bad_invitation" (not a token, or not signed by its inviter).
Result<Invitation> ParseInvitationToken(std::string_view token);

// Whether inv admits a joiner into `network` at time_ms: signed by its inviter, for this
// network, made by a member (is_member), not expired, not used before (used_by: the key of the
// member it admitted, or empty). Errors: "bad_invitation", "invitation_refused", each with a
// message a person can act on.
Status CheckInvitation(const Invitation& inv, const std::string& network, int64_t time_ms,
                       const std::function<bool(const std::string&)>& is_member,
                       const std::function<std::string(const std::string&)>& used_by,
                       crypto::VerifyCache* cache = nullptr);

}  // namespace peerstack::protocol
