// The `peerstack` binary: process settings, then the command line (core/cli/).
#include <malloc.h>

#include <exception>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  // A /download answer is a 16 MB buffer per request: with glibc's moving mmap threshold,
  // some sizes land in fresh mappings every time, and faulting 4,000 pages in costs 20 ms
  // on a VM (the first byte left after 20 ms instead of 1). Keep buffers up to 64 MiB in the
  // heap and give memory back above 128 MiB free (docs/benchmarks.md, "The one-file download").
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  try {
    return peerstack::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    return peerstack::cli::Fail(std::string("fatal: ") + e.what());
  }
}
