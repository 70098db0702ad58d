#include "plugins/executor.h"

#include <gtest/gtest.h>

#include <atomic>

#include "support/test_support.h"

namespace peerstack::plugins {
namespace {

using namespace std::chrono_literals;

Executor::Options Small(std::chrono::milliseconds timeout) {
  Executor::Options o;
  o.workers = 2;
  o.max_workers = 6;
  o.timeout = timeout;
  return o;
}

TEST(Executor, RunsTasksAndNeverTimesOutFinishedOnes) {
  Executor ex(Small(5s));
  std::atomic<int> ran{0}, timed_out{0};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(ex.Submit([&] { ++ran; }, [&] { ++timed_out; }));
  }
  EXPECT_TRUE(test::WaitFor([&] { return ran.load() == 100; }, 5s));
  ex.Stop();
  EXPECT_EQ(timed_out.load(), 0);
}

TEST(Executor, TimesOutAHungTaskAndReplacesItsWorker) {
  Executor ex(Small(200ms));
  std::atomic<bool> release{false};
  std::atomic<int> timed_out{0}, ran{0};
  // Both base workers hang.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ex.Submit([&] { test::WaitFor([&] { return release.load(); }, 20s); },
                          [&] { ++timed_out; }));
  }
  EXPECT_TRUE(test::WaitFor([&] { return timed_out.load() == 2; }, 5s));
  // Replacement workers serve new tasks meanwhile.
  ASSERT_TRUE(ex.Submit([&] { ++ran; }, [&] { ++timed_out; }));
  EXPECT_TRUE(test::WaitFor([&] { return ran.load() == 1; }, 5s));
  EXPECT_EQ(timed_out.load(), 2);
  release = true;
  ex.Stop();
}

TEST(Executor, StopReturnsWhileACallIsStuckAndTimesOutQueuedWork) {
  auto ex = std::make_unique<Executor>(Small(10s));
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  for (int i = 0; i < 2; ++i) {
    ex->Submit(
        [&] {
          ++started;
          test::WaitFor([&] { return release.load(); }, 20s);
        },
        [] {});
  }
  ASSERT_TRUE(test::WaitFor([&] { return started.load() == 2; }, 5s));
  std::atomic<int> queued_timed_out{0};
  ex->Submit([] {}, [&] { ++queued_timed_out; });
  const auto start = std::chrono::steady_clock::now();
  ex->Stop();
  ex.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(queued_timed_out.load(), 1);
  release = true;  // the detached workers finish and exit on their own
}

TEST(Executor, RefusesWorkWhenTheQueueIsFull) {
  Executor::Options o = Small(10s);
  o.workers = 1;
  o.max_queued = 2;
  Executor ex(o);
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  ex.Submit(
      [&] {
        ++started;
        test::WaitFor([&] { return release.load(); }, 20s);
      },
      [] {});
  ASSERT_TRUE(test::WaitFor([&] { return started.load() == 1; }, 5s));
  EXPECT_TRUE(ex.Submit([] {}, [] {}));
  EXPECT_TRUE(ex.Submit([] {}, [] {}));
  EXPECT_FALSE(ex.Submit([] {}, [] {}));
  release = true;
}

}  // namespace
}  // namespace peerstack::plugins
