#include "crypto/sha256.h"

#include <cryptopp/sha.h>

#include "crypto/encoding.h"

namespace peerstack::crypto {

struct Sha256Hasher::Impl {
  CryptoPP::SHA256 hash;
};

Sha256Hasher::Sha256Hasher() : impl_(std::make_unique<Impl>()) {}
Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Update(std::string_view data) {
  impl_->hash.Update(reinterpret_cast<const CryptoPP::byte*>(data.data()), data.size());
}

Digest Sha256Hasher::Final() {
  Digest out{};
  impl_->hash.Final(out.data());
  return out;
}

Digest Sha256(std::string_view data) {
  Sha256Hasher h;
  h.Update(data);
  return h.Final();
}

std::string Sha256Hex(std::string_view data) {
  const Digest d = Sha256(data);
  return HexEncode(d.data(), d.size());
}

}  // namespace peerstack::crypto
