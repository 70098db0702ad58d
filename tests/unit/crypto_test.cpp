#include <cryptopp/xed25519.h>
#include <gtest/gtest.h>

#include <cstring>

#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "unit/crypto_vectors.h"

namespace peerstack::crypto {
namespace {

std::string Unhex(std::string_view hex) {
  auto b = HexDecode(hex);
  EXPECT_TRUE(b.has_value()) << hex;
  return b ? std::string(b->begin(), b->end()) : std::string();
}

Seed SeedFrom(std::string_view hex) {
  Seed s{};
  const std::string bytes = Unhex(hex);
  std::memcpy(s.data(), bytes.data(), s.size());
  return s;
}

// What Crypto++ alone says, to document the forgeries our Verify must catch.
bool CryptoppAccepts(const std::string& pub, const std::string& msg, const std::string& sig) {
  CryptoPP::ed25519Verifier v(reinterpret_cast<const CryptoPP::byte*>(pub.data()));
  return v.VerifyMessage(reinterpret_cast<const CryptoPP::byte*>(msg.data()), msg.size(),
                         reinterpret_cast<const CryptoPP::byte*>(sig.data()), sig.size());
}

TEST(Ed25519, MatchesRfc8032Vectors) {
  for (const auto& v : test::kEd25519Vectors) {
    SCOPED_TRACE(v.name);
    const SigningKey key = SigningKey::FromSeed(SeedFrom(v.secret_hex));
    EXPECT_EQ(HexEncode(key.public_key().data(), key.public_key().size()), v.public_hex);
    const std::string msg = Unhex(v.message_hex);
    const Signature sig = key.Sign(msg);
    EXPECT_EQ(HexEncode(sig.data(), sig.size()), v.signature_hex);
    EXPECT_TRUE(Verify(Unhex(v.public_hex), msg, Unhex(v.signature_hex)).ok());
  }
}

TEST(Ed25519, RejectsTamperedMessageAndSignature) {
  const auto& v = test::kEd25519Vectors[2];
  const std::string pub = Unhex(v.public_hex);
  std::string sig = Unhex(v.signature_hex);
  EXPECT_EQ(Verify(pub, Unhex("af83"), sig).code(), "bad_signature");
  sig[5] ^= 1;
  EXPECT_FALSE(Verify(pub, Unhex(v.message_hex), sig).ok());
}

TEST(Ed25519, RejectsMalleatedSignatureWithSPlusL) {
  const auto& v = test::kEd25519Vectors[1];
  const std::string pub = Unhex(v.public_hex);
  const std::string msg = Unhex(v.message_hex);
  std::string sig = Unhex(v.signature_hex);
  // S' = S + L (little-endian addition over the 32-byte S half).
  static constexpr uint8_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
                                     0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                                     0,    0,    0,    0,    0,    0,    0,    0,
                                     0,    0,    0,    0,    0,    0,    0,    0x10};
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    const unsigned sum = static_cast<uint8_t>(sig[32 + i]) + kL[i] + carry;
    sig[32 + i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  ASSERT_EQ(carry, 0u);
  EXPECT_TRUE(CryptoppAccepts(pub, msg, sig))
      << "Crypto++ fixed #1352? update docs/dependencies.md";
  EXPECT_EQ(Verify(pub, msg, sig).code(), "non_canonical_signature");
}

TEST(Ed25519, RejectsIdentityKeyForgery) {
  std::string pub(32, '\0');
  pub[0] = 1;  // the identity point
  std::string sig(64, '\0');
  sig[0] = 1;  // R = identity, S = 0
  const std::string msg = "any message at all";
  EXPECT_TRUE(CryptoppAccepts(pub, msg, sig))
      << "Crypto++ fixed #1348? update docs/dependencies.md";
  EXPECT_EQ(Verify(pub, msg, sig).code(), "weak_key");
}

TEST(Ed25519, RejectsWrongLengths) {
  const auto& v = test::kEd25519Vectors[0];
  const std::string pub = Unhex(v.public_hex);
  const std::string sig = Unhex(v.signature_hex);
  EXPECT_EQ(Verify(pub.substr(0, 31), "", sig).code(), "bad_length");
  EXPECT_EQ(Verify(pub + "x", "", sig).code(), "bad_length");
  EXPECT_EQ(Verify(pub, "", sig.substr(0, 63)).code(), "bad_length");
  EXPECT_EQ(Verify(pub, "", sig + "x").code(), "bad_length");
  EXPECT_EQ(Verify("", "", "").code(), "bad_length");
}

TEST(Ed25519, RejectsSmallOrderAndNonCanonicalKeys) {
  const std::vector<std::string> weak = {
      std::string(32, '\0'),                                                      // order 4
      Unhex("0100000000000000000000000000000000000000000000000000000000000000"),  // identity
      Unhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  // order 8
      Unhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  // order 8
      Unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // order 2
      Unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // y = p
      Unhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  // y = p + 1
      Unhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),  // sign bit set
  };
  const auto& v = test::kEd25519Vectors[0];
  for (const std::string& pub : weak) {
    EXPECT_EQ(Verify(pub, "", Unhex(v.signature_hex)).code(), "weak_key") << HexEncode(pub);
  }
}

TEST(Ed25519, RejectsSmallOrderR) {
  const auto& v = test::kEd25519Vectors[0];
  std::string sig = Unhex(v.signature_hex);
  std::memset(sig.data(), 0, 32);
  sig[0] = 1;
  EXPECT_EQ(Verify(Unhex(v.public_hex), "", sig).code(), "weak_signature");
}

TEST(Ed25519, DomainSeparationKeepsSignaturesApart) {
  const SigningKey key = SigningKey::Generate();
  const Signature sig = key.SignWithDomain("join", "{\"a\":1}");
  EXPECT_TRUE(VerifyWithDomain(AsView(key.public_key()), "join", "{\"a\":1}", AsView(sig)).ok());
  EXPECT_FALSE(
      VerifyWithDomain(AsView(key.public_key()), "approval", "{\"a\":1}", AsView(sig)).ok());
  EXPECT_FALSE(Verify(AsView(key.public_key()), "{\"a\":1}", AsView(sig)).ok());
  EXPECT_EQ(DomainMessage("join", "x"), std::string("peerstack/v1/join\0x", 19));
}

TEST(Ed25519, GeneratedKeysDifferAndRoundTripThroughSeed) {
  const SigningKey a = SigningKey::Generate();
  const SigningKey b = SigningKey::Generate();
  EXPECT_NE(a.public_key(), b.public_key());
  EXPECT_EQ(SigningKey::FromSeed(a.seed()).public_key(), a.public_key());
}

TEST(Sha256, MatchesPublishedVectors) {
  for (const auto& v : test::kSha256Vectors) {
    SCOPED_TRACE(v.name);
    Sha256Hasher h;
    for (size_t i = 0; i < v.repeat; ++i) h.Update(v.message);
    const Digest d = h.Final();
    EXPECT_EQ(HexEncode(d.data(), d.size()), v.digest_hex);
    if (v.repeat == 1) {
      EXPECT_EQ(Sha256Hex(v.message), v.digest_hex);
    }
  }
}

TEST(Encoding, HexRoundTripAndRejectsGarbage) {
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(HexDecode("00FF10")->size(), 3u);
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(Encoding, ConstantTimeEqualComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEqual("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEqual("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEqual("secret", "secrets"));
  EXPECT_TRUE(ConstantTimeEqual("", ""));
}

}  // namespace
}  // namespace peerstack::crypto
