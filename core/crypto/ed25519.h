// Ed25519 signing keys and a hardened verify (RFC 8032, Crypto++ underneath).
//
// Crypto++ 8.7 accepts forged and malleable signatures (see docs/dependencies.md): the
// identity public key with R = identity and S = 0 verifies any message, and S + L verifies
// where S does. Verify() therefore checks lengths, S < L, canonical non-small-order public
// keys and a non-small-order R before it asks Crypto++ about the equation.
//
// Everything Peerstack signs goes through SignWithDomain/VerifyWithDomain, which prefix the
// payload with "peerstack/v1/<domain>\0" so a signature made for one message type can never
// be accepted as another. Thread-safe: keys are immutable after construction.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "base/result.h"

namespace peerstack::crypto {

inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSeedSize = 32;
inline constexpr size_t kSignatureSize = 64;

using PublicKey = std::array<uint8_t, kPublicKeySize>;
using Seed = std::array<uint8_t, kSeedSize>;
using Signature = std::array<uint8_t, kSignatureSize>;

class SigningKey {
 public:
  // A fresh key from the kernel's random source.
  static SigningKey Generate();
  // The RFC 8032 32-byte private key ("seed").
  static SigningKey FromSeed(const Seed& seed);

  const Seed& seed() const { return seed_; }
  const PublicKey& public_key() const { return public_key_; }

  // Plain RFC 8032 signature over message (used by tests against the RFC vectors).
  Signature Sign(std::string_view message) const;
  // Signature over DomainMessage(domain, payload).
  Signature SignWithDomain(std::string_view domain, std::string_view payload) const;

 private:
  SigningKey(const Seed& seed, const PublicKey& pub) : seed_(seed), public_key_(pub) {}
  Seed seed_;
  PublicKey public_key_;
};

// "peerstack/v1/" + domain + '\0' + payload. Domains are short ASCII tags without NUL.
std::string DomainMessage(std::string_view domain, std::string_view payload);

// Verifies an Ed25519 signature with the hardening described above. Errors (codes):
// "bad_length", "non_canonical_signature" (S >= L), "weak_key" (non-canonical or small-order
// public key), "weak_signature" (small-order R), "bad_signature".
Status Verify(std::string_view public_key, std::string_view message, std::string_view signature);

// Remembers signatures that verified (a digest of key, message and signature), so the same
// signature met again (an approval checked on arrival and again inside its event; the
// simulator's many nodes) costs a hash instead of a curve operation. Only successes are
// kept; a bounded set, cleared when full. Thread-safe.
class VerifyCache {
 public:
  explicit VerifyCache(size_t capacity = 1 << 16) : capacity_(capacity) {}
  bool Contains(const std::string& digest) const;
  void Insert(const std::string& digest);

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> seen_;
};

// cache may be null.
Status VerifyWithDomain(std::string_view public_key, std::string_view domain,
                        std::string_view payload, std::string_view signature,
                        VerifyCache* cache = nullptr);

inline std::string_view AsView(const PublicKey& k) {
  return {reinterpret_cast<const char*>(k.data()), k.size()};
}
inline std::string_view AsView(const Signature& s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace peerstack::crypto
