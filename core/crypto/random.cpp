#include "crypto/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "crypto/encoding.h"

namespace peerstack::crypto {

void RandomBytes(uint8_t* out, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::getrandom(out + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fputs("fatal: getrandom failed\n", stderr);
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
}

std::string RandomHex(size_t size) {
  std::vector<uint8_t> bytes(size);
  RandomBytes(bytes.data(), bytes.size());
  return HexEncode(bytes.data(), bytes.size());
}

}  // namespace peerstack::crypto
