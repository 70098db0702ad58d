// SHA-256 (Crypto++ underneath): one-shot over a buffer, or incremental for files.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace peerstack::crypto {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);

// Incremental hashing; not thread-safe, one instance per stream.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view data);
  Digest Final();  // resets the hasher

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerstack::crypto
