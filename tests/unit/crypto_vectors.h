#pragma once

// Published known-answer test vectors for the crypto unit tests.
//
// All byte strings are lowercase hex. Sources:
//   * Ed25519: RFC 8032, "Edwards-Curve Digital Signature Algorithm (EdDSA)",
//     section 7.1 "Test Vectors for Ed25519" (TEST 1, TEST 2, TEST 3 and
//     TEST SHA(abc); TEST 1024 is omitted because of its 1023-byte message).
//     `secret_hex` is the 32-byte RFC 8032 secret key (the seed), not the
//     64-byte libsodium-style seed||public expanded key.
//   * SHA-256: FIPS 180-2 (and the NIST "SHA256.pdf" / "SHA2_Additional"
//     examples): "abc", the 448-bit two-block message, one million 'a';
//     plus the digest of the empty string.

#include <cstddef>

namespace peerstack::test {

struct Ed25519Vector {
  const char* name;
  const char* secret_hex;     // 32 bytes (64 hex chars)
  const char* public_hex;     // 32 bytes (64 hex chars)
  const char* message_hex;    // any length, may be empty
  const char* signature_hex;  // 64 bytes (128 hex chars)
};

inline constexpr Ed25519Vector kEd25519Vectors[] = {
    {
        "RFC 8032 7.1 TEST 1 (empty message)",
        "9d61b19deffd5a60ba844af492ec2cc4"
        "4449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a"
        "0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a"
        "84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46b"
        "d25bf5f0595bbe24655141438e7a100b",
    },
    {
        "RFC 8032 7.1 TEST 2 (1-byte message)",
        "4ccd089b28ff96da9db6c346ec114e0f"
        "5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc"
        "9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540"
        "a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c"
        "387b2eaeb4302aeeb00d291612bb0c00",
    },
    {
        "RFC 8032 7.1 TEST 3 (2-byte message)",
        "c5aa8df43f9f837bedb7442f31dcb7b1"
        "66d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f058"
        "0816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a3"
        "0ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc659"
        "4a7c15e9716ed28dc027beceea1ec40a",
    },
    {
        // The message is the 64-byte SHA-512 digest of "abc".
        "RFC 8032 7.1 TEST SHA(abc) (64-byte message)",
        "833fe62409237b9d62ec77587520911e"
        "9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034"
        "c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae204131"
        "12e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd"
        "454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00"
        "201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e030"
        "3dca179c138ac17ad9bef1177331a704",
    },
};

struct Sha256Vector {
  const char* name;
  const char* message;     // ASCII text; the hashed input is this repeated
  std::size_t repeat;      // `repeat` times (1 for ordinary vectors)
  const char* digest_hex;  // 32 bytes (64 hex chars)
};

inline constexpr Sha256Vector kSha256Vectors[] = {
    {
        "empty string",
        "",
        1,
        "e3b0c44298fc1c149afbf4c8996fb924"
        "27ae41e4649b934ca495991b7852b855",
    },
    {
        "FIPS 180-2 one-block \"abc\"",
        "abc",
        1,
        "ba7816bf8f01cfea414140de5dae2223"
        "b00361a396177a9cb410ff61f20015ad",
    },
    {
        "FIPS 180-2 two-block 448-bit message",
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        1,
        "248d6a61d20638b8e5c026930c3e6039"
        "a33ce45964ff2167f6ecedd419db06c1",
    },
    {
        "FIPS 180-2 long message: one million 'a'",
        "a",
        1000000,
        "cdc76e5c9914fb9281a1c7e284d73e67"
        "f1809a48a497200e046d39ccc7112cd0",
    },
};

}  // namespace peerstack::test
