// The protocol at scale, in the deterministic simulator: N nodes join one after another
// (no faults; delays 1-40 ms). Prints, per N, the simulated time from the last joiner's start
// until every node holds the same state, and the messages per membership change divided by
// N log2 N (all messages, and gossip pushes alone).
//   sim_bench [N ...]                          (default: 10 30 100)
//   sim_bench --one-join [--no-header] [N ...]  (default: 10 100 1000)
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace {

// One join into an established network of n-1 founding members: the convergence time of
// that single change, its messages / (N log2 N), what the joiner downloaded (every event
// delivered to it, duplicates too) and the size of its ledger, the wall time and the
// process's peak resident memory so far (run one N per process for its own peak).
void OneJoin(size_t n) {
  peerstack::sim::SimConfig c;
  c.seed = 42;
  c.nodes = n;
  c.founders = n - 1;
  c.join_spacing_ms = 1000;  // the joiner starts at 1 s
  c.run_ms = 120000;
  const auto start = std::chrono::steady_clock::now();
  peerstack::sim::Simulator sim(c);
  sim.Run(/*stop_when_converged=*/true);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string problem = sim.CheckConvergence() + sim.CheckSafety();
  if (!problem.empty()) {
    std::printf("| %zu | did not converge: %s |\n", n, problem.c_str());
    return;
  }
  const auto& s = sim.stats();
  const double nlogn = static_cast<double>(n) * std::log2(static_cast<double>(n));
  const peerstack::protocol::Ledger* joined = sim.ledger_of(n - 1);
  size_t ledger_bytes = 0;
  for (const std::string& w : joined->AllInOrder()) ledger_bytes += w.size();
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  std::printf("| %zu | %lld | %llu | %.2f | %llu | %.2f | %.0f | %.0f | %.1f | %.2f |\n", n,
              static_cast<long long>(s.converged_at_ms - c.join_spacing_ms),
              static_cast<unsigned long long>(s.messages), static_cast<double>(s.messages) / nlogn,
              static_cast<unsigned long long>(s.event_messages),
              static_cast<double>(s.event_messages) / nlogn,
              static_cast<double>(sim.event_bytes_in(n - 1)) / 1024,
              static_cast<double>(ledger_bytes) / 1024, wall,
              static_cast<double>(usage.ru_maxrss) / (1024 * 1024));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes;
  bool one_join = false;
  bool no_header = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--one-join") {
      one_join = true;
    } else if (std::string(argv[i]) == "--no-header") {
      no_header = true;
    } else {
      sizes.push_back(static_cast<size_t>(std::atol(argv[i])));
    }
  }
  if (one_join) {
    if (sizes.empty()) sizes = {10, 100, 1000};
    if (!no_header) {
      std::printf(
          "| N | the join converged in (sim ms) | messages | /(N log2 N) | gossip | /(N log2 N) "
          "| joiner downloaded KiB | its ledger KiB | wall s | peak GiB |\n");
      std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
    }
    for (size_t n : sizes) OneJoin(n);
    return 0;
  }
  if (sizes.empty()) sizes = {10, 30, 100};
  std::printf(
      "| N | last change converged in (sim ms) | messages/change | /(N log2 N) | gossip/change | "
      "/(N log2 N) | wall s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (size_t n : sizes) {
    peerstack::sim::SimConfig c;
    c.seed = 42;
    c.nodes = n;
    c.join_spacing_ms = 400;
    c.run_ms = static_cast<int64_t>(n) * 400 + 120000;
    const auto start = std::chrono::steady_clock::now();
    peerstack::sim::Simulator sim(c);
    sim.Run(/*stop_when_converged=*/true);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto& s = sim.stats();
    const std::string problem = sim.CheckConvergence() + sim.CheckSafety();
    if (!problem.empty()) {
      std::printf("| %zu | did not converge: %s |\n", n, problem.c_str());
      continue;
    }
    const double changes = static_cast<double>(n - 1);
    const double nlogn = static_cast<double>(n) * std::log2(static_cast<double>(n));
    const double per = static_cast<double>(s.messages) / changes;
    const double gossip = static_cast<double>(s.event_messages) / changes;
    const int64_t last_start = static_cast<int64_t>(n - 1) * c.join_spacing_ms;
    std::printf("| %zu | %lld | %.0f | %.2f | %.0f | %.2f | %.1f |\n", n,
                static_cast<long long>(s.converged_at_ms - last_start), per, per / nlogn, gossip,
                gossip / nlogn, wall);
    std::fflush(stdout);
  }
  return 0;
}
