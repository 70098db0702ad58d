// The staged rollout's rules (core/release/rollout.h): pure functions of the ledger's reports.
#include "release/rollout.h"

#include <gtest/gtest.h>

#include <map>

namespace peerstack::release {
namespace {

using Report = protocol::NetworkState::Report;

std::vector<std::string> Keys(int n) {
  std::vector<std::string> k;
  for (int i = 0; i < n; ++i)
    k.push_back(std::string(63, 'a') + static_cast<char>('0' + i % 10) + std::to_string(i));
  return k;
}

std::vector<protocol::Member> Members(const std::vector<std::string>& keys, int64_t joined_ms = 0) {
  std::vector<protocol::Member> out;
  for (const auto& k : keys) out.push_back({"id-" + k, k, "http://" + k, joined_ms, ""});
  return out;
}

TEST(RolloutTest, StagesAreFixedPerKeyAndReleaseAndSpread) {
  const auto keys = Keys(300);
  std::map<int64_t, int> per_stage;
  for (const auto& k : keys) {
    const int64_t s = StageOf(k, "release-1", 3);
    EXPECT_EQ(s, StageOf(k, "release-1", 3));
    ASSERT_GE(s, 0);
    ASSERT_LT(s, 3);
    ++per_stage[s];
  }
  for (const auto& [s, n] : per_stage) EXPECT_GT(n, 60) << "stage " << s;  // ~100 each
  int moved = 0;
  for (const auto& k : keys) moved += StageOf(k, "release-1", 3) != StageOf(k, "release-2", 3);
  EXPECT_GT(moved, 100) << "another release draws other stages";
  EXPECT_EQ(StageOf(keys[0], "r", 1), 0);
}

TEST(RolloutTest, AStageStartsWhenEnoughOfTheOneBeforeIsHealthyForTheSoakTime) {
  protocol::RolloutPolicy p;
  p.stages = 3;
  p.soak_ms = 1000;
  p.healthy_percent = 50;
  const auto keys = Keys(30);
  std::map<std::string, Report> reports;
  RolloutView v = Evaluate(p, "rel", 100, Members(keys), reports);
  EXPECT_TRUE(v.Started(0, 100));
  EXPECT_FALSE(v.Started(0, 99));
  EXPECT_FALSE(v.Started(1, 1'000'000));
  EXPECT_EQ(v.OpenStages(1'000'000), 1);
  // Half of stage 0 reports healthy at t = 500..: stage 1 starts soak_ms after the report
  // that made half.
  std::vector<std::string> stage0;
  for (const auto& k : keys) {
    if (StageOf(k, "rel", 3) == 0) stage0.push_back(k);
  }
  ASSERT_GE(stage0.size(), 2u);
  const size_t need = (stage0.size() + 1) / 2;
  for (size_t i = 0; i < need; ++i)
    reports[stage0[i]] = {"healthy", "", 500 + static_cast<int64_t>(i)};
  v = Evaluate(p, "rel", 100, Members(keys), reports);
  const int64_t at = 500 + static_cast<int64_t>(need) - 1 + 1000;
  EXPECT_FALSE(v.Started(1, at - 1));
  EXPECT_TRUE(v.Started(1, at));
  EXPECT_FALSE(v.Started(2, 1'000'000)) << "stage 1 has reported nothing";
  EXPECT_EQ(Decide(v, true, 1, true, at - 1), Target::kKeep);
  EXPECT_EQ(Decide(v, true, 1, true, at), Target::kCurrent);
  EXPECT_EQ(Decide(v, true, 2, true, at), Target::kKeep);
  // A member whose code is accepted by nobody any more does not wait for its stage.
  EXPECT_EQ(Decide(v, true, 2, false, at), Target::kCurrent);
}

TEST(RolloutTest, FailuresUpToTheLimitHaltEverywhereAndSendEveryoneBack) {
  protocol::RolloutPolicy p;
  p.stages = 2;
  p.max_failures = 2;
  const auto keys = Keys(10);
  std::map<std::string, Report> reports;
  reports[keys[0]] = {"failed", "init failed", 10};
  RolloutView v = Evaluate(p, "rel", 0, Members(keys), reports);
  EXPECT_FALSE(v.halted);
  EXPECT_EQ(v.failures, 1);
  reports[keys[1]] = {"failed", "errors", 11};
  reports["not-a-member"] = {"failed", "", 12};
  v = Evaluate(p, "rel", 0, Members(keys), reports);
  EXPECT_TRUE(v.halted);
  EXPECT_EQ(v.failures, 2);
  EXPECT_FALSE(v.Started(0, 100));
  EXPECT_EQ(Decide(v, true, 0, true, 100), Target::kPrevious);
  EXPECT_EQ(Decide(v, false, 0, false, 100), Target::kPrevious);
}

TEST(RolloutTest, AnEmptyStagePassesAndAJoinerRunsWhatIsAccepted) {
  protocol::RolloutPolicy p;
  p.stages = 16;  // with 2 members most stages are empty
  const auto keys = Keys(2);
  std::map<std::string, Report> reports;
  for (const auto& k : keys) reports[k] = {"healthy", "", 50};
  RolloutView v = Evaluate(p, "rel", 0, Members(keys), reports);
  EXPECT_EQ(v.OpenStages(50), 16);
  RolloutView fresh = Evaluate(p, "rel", 0, Members(keys), {});
  EXPECT_EQ(Decide(fresh, false, 7, true, 0), Target::kKeep);
  EXPECT_EQ(Decide(fresh, false, 7, false, 0), Target::kCurrent);
}

TEST(RolloutTest, AMemberAdmittedAfterTheReleaseDoesNotHoldBackAStageThatStarted) {
  protocol::RolloutPolicy p;
  p.stages = 2;
  const auto keys = Keys(8);
  std::map<std::string, Report> reports;
  std::vector<protocol::Member> members = Members(keys, 50);
  for (const auto& m : members) {
    if (StageOf(m.key, "rel", 2) == 0) reports[m.key] = {"healthy", "", 200};
  }
  ASSERT_TRUE(Evaluate(p, "rel", 100, members, reports).Started(1, 200));
  // A new member in stage 0, admitted after the release and silent so far.
  for (int i = 0;; ++i) {
    const std::string k = "late" + std::to_string(i);
    if (StageOf(k, "rel", 2) == 0) {
      members.push_back({"id", k, "http://late", 300, ""});
      break;
    }
  }
  const RolloutView v = Evaluate(p, "rel", 100, members, reports);
  EXPECT_TRUE(v.Started(1, 400)) << "stage 1 stays started";
  // Its failure still counts.
  reports[members.back().key] = {"failed", "init", 350};
  EXPECT_TRUE(Evaluate(p, "rel", 100, members, reports).halted);
}

}  // namespace
}  // namespace peerstack::release
