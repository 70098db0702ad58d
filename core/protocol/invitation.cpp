#include "protocol/invitation.h"

#include <algorithm>
#include <cstdint>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "protocol/event.h"
#include "protocol/join.h"

namespace peerstack::protocol {
namespace {

constexpr char kInvitationDomain[] = "invitation";

Status BadInvitation(std::string message) {
  return Status::Error("bad_invitation", std::move(message));
}

// Lower-case only: one spelling per invitation (an upper-case copy is the same invitation).
bool IsLowerHex(const std::string& s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

json::Value Invitation::Unsigned() const {
  return json::Object{{"expires", expires_ms},
                      {"id", id},
                      {"inviter", inviter},
                      {"network", network},
                      {"note", note}};
}

json::Value Invitation::ToJson() const {
  json::Value v = Unsigned();
  v.as_object().emplace("sig", sig);
  return v;
}

std::string Invitation::Hash() const { return crypto::Sha256Hex(json::Serialize(Unsigned())); }

Invitation MakeInvitation(const crypto::SigningKey& key, std::string network, std::string id,
                          int64_t expires_ms, std::string note) {
  Invitation inv;
  inv.network = std::move(network);
  inv.inviter = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  inv.id = std::move(id);
  inv.expires_ms = expires_ms;
  inv.note = std::move(note);
  const crypto::Signature sig =
      key.SignWithDomain(kInvitationDomain, json::Serialize(inv.Unsigned()));
  inv.sig = crypto::HexEncode(sig.data(), sig.size());
  return inv;
}

Result<Invitation> ParseInvitation(const json::Value& v) {
  if (!v.is_object() || v.as_object().size() != 6)
    return BadInvitation("an invitation has 6 fields");
  const std::string* network = v.find_string("network");
  const std::string* inviter = v.find_string("inviter");
  const std::string* id = v.find_string("id");
  const std::string* note = v.find_string("note");
  const std::string* sig = v.find_string("sig");
  const int64_t* expires = v.find_int("expires");
  if (!network || !inviter || !id || !note || !sig || !expires) {
    return BadInvitation("invitation fields missing or of the wrong type");
  }
  if (!IsLowerHex(*network, 64) || !IsLowerHex(*inviter, 64) || !IsLowerHex(*id, 32) ||
      !IsLowerHex(*sig, 128)) {
    return BadInvitation("invitation fields malformed (lower-case hex)");
  }
  if (note->size() > kMaxInvitationNote) return BadInvitation("invitation note too long");
  return Invitation{*network, *inviter, *id, *expires, *note, *sig};
}

Status VerifyInvitation(const Invitation& inv, crypto::VerifyCache* cache) {
  if (auto s = VerifyHexSignature(inv.inviter, kInvitationDomain, json::Serialize(inv.Unsigned()),
                                  inv.sig, cache);
      !s.ok()) {
    return BadInvitation("the invitation is not signed by the member it names (" + s.message() +
                         ")");
  }
  return Status::Ok();
}

std::string InvitationToken(const Invitation& inv) {
  return crypto::HexEncode(json::Serialize(inv.ToJson()));
}

Result<Invitation> ParseInvitationToken(std::string_view token) {
  if (token.empty() || token.size() > kMaxInvitationToken)
    return BadInvitation("not an invitation (length)");
  auto bytes = crypto::HexDecode(token);
  if (!bytes) return BadInvitation("not an invitation (not hex)");
  auto v =
      json::Parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  if (!v) return BadInvitation("not an invitation (" + v.status().message() + ")");
  auto inv = ParseInvitation(*v);
  if (!inv) return inv.status();
  if (auto s = VerifyInvitation(*inv); !s.ok()) return s;
  return inv;
}

Status CheckInvitation(const Invitation& inv, const std::string& network, int64_t time_ms,
                       const std::function<bool(const std::string&)>& is_member,
                       const std::function<std::string(const std::string&)>& used_by,
                       crypto::VerifyCache* cache) {
  if (auto s = VerifyInvitation(inv, cache); !s.ok()) return s;
  if (inv.network != network) return BadInvitation("the invitation is for another network");
  auto refused = [](std::string m) { return Status::Error("invitation_refused", std::move(m)); };
  if (!is_member(inv.inviter)) {
    return refused("the invitation was made by " + NodeIdForHex(inv.inviter).substr(0, 12) +
                   ", who is not a member (any more): ask a member for a new one");
  }
  if (time_ms > inv.expires_ms) {
    // Both times come from outside: no signed overflow.
    const __int128 late_ms = static_cast<__int128>(time_ms) - inv.expires_ms;
    const int64_t late_min =
        late_ms / 60000 > INT64_MAX ? INT64_MAX : static_cast<int64_t>(late_ms / 60000);
    return refused("the invitation expired " + std::to_string(late_min) +
                   " min before the request: ask for a new one");
  }
  if (const std::string by = used_by(inv.Hash()); !by.empty()) {
    return refused("the invitation was used already (it admitted " +
                   NodeIdForHex(by).substr(0, 12) + "): an invitation admits one node");
  }
  return Status::Ok();
}

}  // namespace peerstack::protocol
