#include "crypto/ed25519.h"

#include <cryptopp/xed25519.h>

#include <cstring>

#include "crypto/random.h"
#include "crypto/sha256.h"

namespace peerstack::crypto {
namespace {

// The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
constexpr uint8_t kOrderL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                 0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

// Encodings (y coordinate, sign bit cleared) of the points of order 1, 2, 4 and 8 whose y is
// below p; non-canonical encodings (y >= p) are refused before this list is consulted.
constexpr uint8_t kSmallOrderY[][32] = {
    // y = 0: the two points of order 4
    {0},
    // y = 1: the identity (order 1)
    {0x01},
    // the order-8 points
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    // y = p - 1: the point of order 2
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

// Compares little-endian 256-bit numbers: a < b.
bool LessThanLE(const uint8_t* a, const uint8_t* b) {
  for (int i = 31; i >= 0; --i) {
    if (a[i] != b[i]) return a[i] < b[i];
  }
  return false;
}

// y (sign bit cleared) < p = 2^255 - 19.
bool IsCanonicalY(const uint8_t* enc) {
  uint8_t y[32];
  std::memcpy(y, enc, 32);
  y[31] &= 0x7f;
  constexpr uint8_t kP[32] = {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  return LessThanLE(y, kP);
}

bool HasSmallOrder(const uint8_t* enc) {
  uint8_t y[32];
  std::memcpy(y, enc, 32);
  y[31] &= 0x7f;
  for (const auto& bad : kSmallOrderY) {
    if (std::memcmp(y, bad, 32) == 0) return true;
  }
  return false;
}

const CryptoPP::byte* Bytes(std::string_view s) {
  return reinterpret_cast<const CryptoPP::byte*>(s.data());
}

}  // namespace

SigningKey SigningKey::Generate() {
  Seed seed{};
  RandomBytes(seed.data(), seed.size());
  return FromSeed(seed);
}

SigningKey SigningKey::FromSeed(const Seed& seed) {
  CryptoPP::ed25519Signer signer(seed.data());
  PublicKey pub{};
  const auto& private_key = static_cast<const CryptoPP::ed25519PrivateKey&>(signer.GetPrivateKey());
  std::memcpy(pub.data(), private_key.GetPublicKeyBytePtr(), pub.size());
  return SigningKey(seed, pub);
}

Signature SigningKey::Sign(std::string_view message) const {
  CryptoPP::ed25519Signer signer(public_key_.data(), seed_.data());
  Signature sig{};
  signer.SignMessage(CryptoPP::NullRNG(), Bytes(message), message.size(), sig.data());
  return sig;
}

Signature SigningKey::SignWithDomain(std::string_view domain, std::string_view payload) const {
  return Sign(DomainMessage(domain, payload));
}

std::string DomainMessage(std::string_view domain, std::string_view payload) {
  std::string out;
  out.reserve(13 + domain.size() + 1 + payload.size());
  out.append("peerstack/v1/");
  out.append(domain);
  out.push_back('\0');
  out.append(payload);
  return out;
}

Status Verify(std::string_view public_key, std::string_view message, std::string_view signature) {
  if (public_key.size() != kPublicKeySize || signature.size() != kSignatureSize) {
    return Status::Error("bad_length", "Ed25519 keys are 32 bytes and signatures 64 bytes");
  }
  const uint8_t* pk = Bytes(public_key);
  const uint8_t* r = Bytes(signature);
  const uint8_t* s = r + 32;
  if (!LessThanLE(s, kOrderL)) {
    return Status::Error("non_canonical_signature", "signature scalar S is not below L");
  }
  if (!IsCanonicalY(pk) || HasSmallOrder(pk)) {
    return Status::Error("weak_key", "public key is non-canonical or of small order");
  }
  if (!IsCanonicalY(r) || HasSmallOrder(r)) {
    return Status::Error("weak_signature", "signature point R is non-canonical or of small order");
  }
  CryptoPP::ed25519Verifier verifier(pk);
  if (!verifier.VerifyMessage(Bytes(message), message.size(), r, kSignatureSize)) {
    return Status::Error("bad_signature", "signature does not verify");
  }
  return Status::Ok();
}

bool VerifyCache::Contains(const std::string& digest) const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.count(digest) != 0;
}

void VerifyCache::Insert(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seen_.size() >= capacity_) seen_.clear();
  seen_.insert(digest);
}

Status VerifyWithDomain(std::string_view public_key, std::string_view domain,
                        std::string_view payload, std::string_view signature, VerifyCache* cache) {
  const std::string message = DomainMessage(domain, payload);
  std::string digest;
  if (cache) {
    Sha256Hasher h;
    const uint64_t sizes[3] = {public_key.size(), message.size(), signature.size()};
    h.Update(std::string_view(reinterpret_cast<const char*>(sizes), sizeof sizes));
    h.Update(public_key);
    h.Update(message);
    h.Update(signature);
    const Digest d = h.Final();
    digest.assign(reinterpret_cast<const char*>(d.data()), d.size());
    if (cache->Contains(digest)) return Status::Ok();
  }
  Status s = Verify(public_key, message, signature);
  if (s.ok() && cache) cache->Insert(digest);
  return s;
}

}  // namespace peerstack::crypto
