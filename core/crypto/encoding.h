// Byte helpers: hex encoding (lower case), base64 (RFC 4648, padded), a UTF-8 check, and a
// constant-time comparison for secrets (tokens, MACs) so that timing does not reveal how many
// leading bytes matched.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peerstack::crypto {

using Bytes = std::vector<uint8_t>;

std::string HexEncode(const uint8_t* data, size_t size);
inline std::string HexEncode(const Bytes& b) { return HexEncode(b.data(), b.size()); }
std::string HexEncode(std::string_view bytes);
// Accepts upper and lower case; nullopt on odd length or a non-hex character.
std::optional<Bytes> HexDecode(std::string_view hex);

// True when a and b have the same length and content; time depends only on the lengths.
bool ConstantTimeEqual(std::string_view a, std::string_view b);
// 64 lower-case hex digits: how a sha256 (a blob's name, a network id) is written.
bool IsSha256Hex(std::string_view s);

// RFC 4648 base64 with padding. Decode accepts only that one spelling (no white space, no
// missing padding, zero unused bits), so every byte string has exactly one encoding.
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);
// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsUtf8(std::string_view s);

}  // namespace peerstack::crypto
