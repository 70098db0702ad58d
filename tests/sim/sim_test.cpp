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

// SWIM-style liveness: a crashed member is suspected by the others within a few probe
// intervals and seen again after its restart; a member that one node cannot reach directly,
// but others can, stays online in that node's view thanks to indirect probes.
TEST(Simulation, LivenessSuspectsCrashedMembersAndUsesIndirectProbes) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimConfig c;
    c.seed = seed;
    c.nodes = 5;
    c.run_ms = 60000;
    Simulator sim(c);
    sim.Run(/*stop_when_converged=*/true);
    ASSERT_EQ(sim.CheckConvergence(), "") << "seed " << seed;
    sim.RunUntil(sim.now() + 5000);
    for (size_t o = 0; o < 5; ++o) {
      for (size_t t = 0; t < 5; ++t) {
        if (o != t) {
          EXPECT_TRUE(sim.SeesOnline(o, t)) << "seed " << seed << ": " << o << " -> " << t;
        }
      }
    }
    // Node 0 cannot reach node 4 directly; the others relay its probes.
    sim.SetLinkDown(0, 4, true);
    sim.RunUntil(sim.now() + 8000);
    EXPECT_TRUE(sim.SeesOnline(0, 4)) << "seed " << seed;
    sim.SetLinkDown(0, 4, false);
    // Node 3 crashes: the others notice, then see it back after its restart.
    const int64_t crashed_at = sim.now();
    sim.CrashNow(3, /*down_ms=*/12000);
    bool suspected = false;
    for (int step = 0; step < 200 && !suspected; ++step) {  // a round-robin pass: <= 5 s
      suspected = !sim.SeesOnline(1, 3);
      sim.RunUntil(sim.now() + 50);
    }
    EXPECT_TRUE(suspected) << "seed " << seed;
    sim.RunUntil(crashed_at + 12000 + 6000);  // back up, then a probe round
    EXPECT_TRUE(sim.SeesOnline(1, 3)) << "seed " << seed;
    EXPECT_EQ(sim.CheckSafety(), "") << "seed " << seed;
  }
}

}  // namespace
}  // namespace peerstack::sim
