// The one-file download (docs/operations.md, "/download"): the peerstack runtime followed by a
// payload and a fixed 64-byte trailer, so the file finds its own payload:
//
//   [runtime: the executable's own bytes][payload][trailer]
//   trailer = "PSBUNDL1" | u32 format (1) | u32 0 | u64 payload offset | u64 payload length
//             | sha256(payload) (32 bytes); integers little-endian
//   payload = u32 header length | header (canonical JSON) | the files' bytes, back to back
//   header  = {"card": {"network", "genesis" (the genesis event's wire bytes), "publishers",
//              "threshold", "bootstrap": [member URLs], "invitation" (a token; only when
//              there is one)}, "release": {"manifest",
//              "signatures"} | null, "files": [{"offset", "path", "role", "sha256", "size"}],
//              "runtime": {"sha256", "size"}}
//
// Read() checks everything before anything is written: the trailer's bounds, the payload's
// hash, the runtime's hash, every file's hash and size against the manifest, the manifest's
// signatures against the card's publisher keys and threshold, and the card's network id
// against its genesis event (whose publishers must be the card's), and an invitation's
// signature and network (whether it is unused is the members' to judge). A bundle without a
// release (a network still on release 0) carries the founder's files, whose code hash must
// be the one genesis records. A bundle carries no
// signature of its own: its trust is the manifest's (signed by the publishers) and the
// genesis the friend compares by fingerprint; the hashes catch damage.
// Pure functions over files and bytes; no network, no node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "protocol/release.h"

namespace peerstack::bundle {

inline constexpr size_t kTrailerSize = 64;
inline constexpr int64_t kMaxBundleBytes = int64_t{1} << 30;

struct Card {
  std::string network;  // the network id (hash of the genesis event)
  std::string genesis;  // the genesis event's wire bytes
  std::vector<std::string> publishers;
  int64_t threshold = 1;
  std::vector<std::string> bootstrap;  // members to ask (hints, not trust)
  std::string invitation;  // an invitation token (protocol/invitation.h) the node joins with, or ""
};

struct Contents {
  Card card;
  std::optional<protocol::Manifest> manifest;  // none: release 0 (the founder's files)
  std::vector<protocol::PublisherSignature> signatures;
  std::vector<std::pair<protocol::FileEntry, std::string>> files;  // entry, bytes
};

// The runtime part of an executable: its ELF image (up to its section header table, which
// the linker writes last), without what follows.
Result<std::string> RuntimeOf(const std::string& exe_path);
// Whether bytes follow the file's ELF image: a bundle, maybe damaged or cut short (Read says
// which). Cheap: reads the ELF header.
bool HasPayload(const std::string& path);
// The whole bundle's bytes.
std::string Build(const std::string& runtime, const Contents& contents);
// The same bundle (bytes a Build made) with this invitation token on its card, from memory;
// "damaged" when the bytes are not a bundle. The card's invitation is checked by Read.
Result<std::string> WithInvitation(std::string_view bundle, const std::string& token);
// Reads and checks a bundle (see the header). Errors: "damaged" (the file was changed or cut:
// hashes, bounds, format), "untrusted" (signatures, card), "io_error".
Result<Contents> Read(const std::string& path);
// A short fingerprint of a network for people to compare: the first 16 hex digits of its id,
// in groups of four.
std::string Fingerprint(const std::string& network_id);

}  // namespace peerstack::bundle
