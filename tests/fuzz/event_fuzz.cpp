// protocol::Decode (signed events from peers) on arbitrary bytes: never crash; a decoded
// event re-encodes to exactly the input (the event's id is the hash of those bytes, so there
// must be one encoding per event). A join request inside (member-added) and its invitation
// parse and verify without crashing; so does the input read as an invitation token.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "protocol/event.h"
#include "protocol/invitation.h"
#include "protocol/join.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace protocol = peerstack::protocol;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)protocol::ParseInvitationToken(in);
  auto event = protocol::Decode(in);
  if (!event.ok()) return 0;
  if (const auto* req = event->body.find("request")) {
    auto request = protocol::ParseJoinRequest(*req);
    if (request.ok() && !request->invitation.is_null()) {
      auto inv = protocol::ParseInvitation(request->invitation);
      if (inv.ok()) (void)protocol::VerifyInvitation(*inv);
    }
  }
  FUZZ_CHECK(protocol::Encode(*event) == in);
  for (const auto& parent : event->parents) FUZZ_CHECK(parent.size() == 64);
  // Checking the signature of hostile bytes must not crash either (it fails, of course,
  // unless the input is a seed that was signed).
  (void)protocol::VerifySignature(*event);
  return 0;
}
