// The protocol engine under the deterministic simulator. Every test runs many seeds; a
// failure names its seed, and SimConfig with that seed reproduces it exactly.
#include <gtest/gtest.h>

#include <cmath>

#include "sim/simulator.h"

namespace peerstack::sim {
namespace {

void ExpectHolds(Simulator& sim, uint64_t seed) {
  const std::string safety = sim.CheckSafety();
  EXPECT_EQ(safety, "") << "seed " << seed;
  const std::string convergence = sim.CheckConvergence();
  EXPECT_EQ(convergence, "") << "seed " << seed;
}

TEST(Simulation, SequentialJoinsConverge) {
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.nodes = 2 + seed % 9;  // 2..10
    c.run_ms = 30000;
    Simulator sim(c);
    sim.Run(/*stop_when_converged=*/true);
    ExpectHolds(sim, seed);
  }
}

TEST(Simulation, ConcurrentJoinsAllAdmitted) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.nodes = 3 + seed % 6;  // 3..8, all joiners start at once
    c.join_spacing_ms = 0;
    c.run_ms = 60000;
    Simulator sim(c);
    sim.Run(true);
    ExpectHolds(sim, seed);
  }
}

TEST(Simulation, ConvergesAfterLossDuplicationPartitionsAndCrashes) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.nodes = 3 + seed % 8;  // 3..10
    c.faults_until_ms = 8000;
    c.loss = 0.1;
    c.duplication = 0.05;
    c.partitions = true;
    c.crashes = true;
    c.run_ms = 90000;
    Simulator sim(c);
    sim.Run(true);
    ExpectHolds(sim, seed);
  }
}

TEST(Simulation, ForgedAndReplayedMessagesNeverAdmitAnyone) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.nodes = 3 + seed % 5;
    c.adversary = true;
    c.faults_until_ms = 4000;
    c.loss = 0.05;
    c.run_ms = 60000;
    Simulator sim(c);
    sim.Run(true);
    ExpectHolds(sim, seed);
    EXPECT_GT(sim.stats().forged_injected, 0u) << "seed " << seed;
  }
}

TEST(Simulation, FiftyNodesConverge) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.nodes = 50;
    c.join_spacing_ms = 200;
    c.faults_until_ms = seed == 3 ? 6000 : 0;
    c.loss = 0.05;
    c.run_ms = 120000;
    Simulator sim(c);
    sim.Run(true);
    ExpectHolds(sim, seed);
  }
}

// Push gossip with fanout ~ ln N: messages per membership change grow as N log N.
TEST(Simulation, GossipMessagesGrowAsNLogN) {
  for (size_t n : {8, 16, 32}) {
    SimConfig c;
    c.seed = 7;
    c.nodes = n;
    c.run_ms = 120000;
    Simulator sim(c);
    sim.Run(true);
    ExpectHolds(sim, c.seed);
    const double changes = static_cast<double>(n - 1);
    const double per_change = static_cast<double>(sim.stats().event_messages) / changes;
    const double nlogn = static_cast<double>(n) * std::log2(static_cast<double>(n));
    EXPECT_LT(per_change / nlogn, 1.0) << "N=" << n << ": " << per_change << " event messages per change";
  }
}

}  // namespace
}  // namespace peerstack::sim
