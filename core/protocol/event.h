// Signed network events (docs/design.md section 5), sans-I/O: building, signing, encoding and
// checking them is pure computation over bytes.
//
// Wire form: canonical JSON of {"author", "body", "kind", "parents", "sig", "time"}. The
// signature covers the canonical JSON of the same object without "sig", under the domain
// "event/<kind>", so an event of one kind can never pass as another. An event's identity is
// the sha256 of its wire bytes; Decode() accepts only canonical bytes, so that identity is
// unique. Validity beyond the signature (who may author what) is checked per kind.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::protocol {

inline constexpr int kProtocolVersion = 1;

struct Event {
  std::string kind;                  // "genesis", later "member-added", ...
  std::vector<std::string> parents;  // hex hashes of parent events
  std::string author;                // hex Ed25519 public key
  int64_t time_ms = 0;               // author's clock, informational
  json::Value body;                  // kind-specific, integers and strings only
  std::string sig;                   // hex signature
};

// Fills author and sig. body must not hold floating point numbers.
Result<Event> Sign(Event event, const crypto::SigningKey& key);
// Checks the author's signature (with the hardened Ed25519 verify).
Status VerifySignature(const Event& event, crypto::VerifyCache* cache = nullptr);

// Canonical wire bytes of a signed event.
std::string Encode(const Event& event);
// Strict decode: valid JSON, exact field set, canonical bytes. Does not check the signature.
Result<Event> Decode(std::string_view bytes, size_t max_bytes = 256 * 1024);
// Hex sha256 of the wire bytes: the event's id.
std::string HashOf(std::string_view wire_bytes);

// A node's id: the first 20 bytes of sha256("peerstack/node-id/v1\0" + public key), hex.
// NodeIdForHex is empty unless the key is 64 lower-case hex digits (one spelling per key).
std::string NodeIdFor(const crypto::PublicKey& key);
std::string NodeIdForHex(std::string_view public_key_hex);

}  // namespace peerstack::protocol
