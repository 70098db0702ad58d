// One write to a replicated collection, as a pure rule over bytes: an Op is a put or a delete
// of one key, signed by the node that made it (its author), and ordered against every other
// write of that key by a hybrid logical clock.
//
// Wire form: canonical JSON of
//   {"a": author key (hex), "c": collection, "d": true for a delete, "k": key, "l": logical
//    counter, "n": network id, "p": plugin, "s": per-(author, plugin) sequence from 1,
//    "sig": hex Ed25519, "t": wall-clock part in ms, "v": value (UTF-8 text) | "b": value
//    (base64, for bytes that are not UTF-8)}
// A delete carries neither "v" nor "b". The signature covers the canonical JSON of the same
// object without "sig" under the domain "appdata-op" (crypto/ed25519.h), so an op can never
// pass as an event or a message, nor be moved to another network, plugin or key.
//
// Order: an op is newer than another by (t, l, author, seq, sig), compared in that order:
// last writer wins per key, a tie on the clock goes to the greater author key. Two nodes
// holding the same ops therefore keep the same winner for every key.
// Thread-safe: free functions and plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::appdata {

inline constexpr size_t kMaxKeyBytes = 256;
inline constexpr size_t kMaxValueBytes = 64 * 1024;
inline constexpr size_t kMaxCollections = 16;             // per plugin
inline constexpr int64_t kMaxLogical = int64_t{1} << 32;  // the clock's counter
inline constexpr size_t kMaxListBytes = 32u << 20;  // keys and values one listing returns, at most
inline constexpr char kOpDomain[] = "appdata-op";

struct Op {
  std::string network;
  std::string plugin;
  std::string collection;
  std::string key;
  std::string value;  // empty for a delete
  bool deleted = false;
  std::string author;  // hex public key of the node that wrote it
  int64_t seq = 0;     // the author's sequence for this plugin: 1, 2, 3, ...
  int64_t t = 0;       // hybrid logical clock: wall-clock part (ms since the epoch)
  int64_t l = 0;       // ... and logical counter
  std::string sig;     // hex

  // Last-writer-wins order (see the header comment). The signature decides last: an author
  // that signs two different ops with one clock reading and sequence number (equivocation)
  // still cannot make two nodes keep different ones.
  bool NewerThan(const Op& o) const {
    return std::tie(t, l, author, seq, sig) > std::tie(o.t, o.l, o.author, o.seq, o.sig);
  }
};

// [a-z0-9][a-z0-9_-]{0,31}: a collection's name, and a plugin's (the host checks those with it).
bool ValidCollectionName(std::string_view name);
// 1..kMaxKeyBytes bytes of UTF-8 without control characters (keys are JSON strings on the
// wire and in listings).
bool ValidKey(std::string_view key);

// The op as JSON (with or without its signature).
json::Value ToJson(const Op& op, bool with_sig = true);
// Its wire bytes: canonical JSON with the signature.
std::string Wire(const Op& op);
// Reads an op's JSON strictly: exactly the fields above, of their types and within the
// limits (key, value, names, a positive sequence, a non-negative clock): "bad_op" and why.
// Does not check the signature.
Result<Op> FromJson(const json::Value& v);
// Fills author and sig.
Op Sign(Op op, const crypto::SigningKey& key);
// The author's signature over the op: "bad_signature".
Status VerifySignature(const Op& op, crypto::VerifyCache* cache = nullptr);

}  // namespace peerstack::appdata
