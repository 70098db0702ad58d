#include "base/rate_limit.h"

#include <gtest/gtest.h>

namespace peerstack {
namespace {

TEST(RateLimit, OncePerKeyPerWindow) {
  RateLimit limit(1, 2000, 100);
  EXPECT_TRUE(limit.Admit("a", 0));
  EXPECT_FALSE(limit.Admit("a", 1999));
  EXPECT_TRUE(limit.Admit("b", 1999));  // other keys are not affected
  EXPECT_TRUE(limit.Admit("a", 2000));  // the window is over
}

TEST(RateLimit, SeveralPerKeyAndATotalPerSecond) {
  RateLimit limit(2, 1000, 3);
  EXPECT_TRUE(limit.Admit("a", 0));
  EXPECT_TRUE(limit.Admit("a", 10));
  EXPECT_FALSE(limit.Admit("a", 20));  // two per key
  EXPECT_TRUE(limit.Admit("b", 30));
  EXPECT_FALSE(limit.Admit("c", 40));   // three in all this second
  EXPECT_TRUE(limit.Admit("c", 1000));  // a new second
}

TEST(RateLimit, RefusesNewKeysBeyondItsMemoryInsteadOfGrowing) {
  RateLimit limit(1, 10000, 1000, 2);
  EXPECT_TRUE(limit.Admit("a", 0));
  EXPECT_TRUE(limit.Admit("b", 0));
  EXPECT_FALSE(limit.Admit("c", 0));
  EXPECT_TRUE(limit.Admit("c", 10000));  // a and b forgotten once their window is over
}

}  // namespace
}  // namespace peerstack
