// Cryptographically secure random bytes from the kernel (getrandom). Aborts the process if
// the kernel cannot provide them: no key is ever made from weak randomness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace peerstack::crypto {

void RandomBytes(uint8_t* out, size_t size);
// size random bytes as lower-case hex (2 * size characters), e.g. for tokens.
std::string RandomHex(size_t size);

}  // namespace peerstack::crypto
