#include "tunnel/splicer.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "support/test_support.h"

namespace peerstack::tunnel {
namespace {

using namespace std::chrono_literals;
using test::WaitFor;

// Two socket pairs: the test holds `left` and `right`; the splicer copies between the other
// two ends, so left <-> right behave like one connection.
struct Ends {
  int left = -1, right = -1;
  int inner_left = -1, inner_right = -1;
  Ends() {
    int a[2], b[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    left = a[0];
    inner_left = a[1];
    right = b[0];
    inner_right = b[1];
  }
  ~Ends() {
    ::close(left);
    ::close(right);
  }
};

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    done += static_cast<size_t>(n);
  }
}

// Reads until EOF or `want` bytes (with a deadline per read).
std::string ReadUpTo(int fd, size_t want) {
  std::string out;
  char buf[65536];
  while (out.size() < want) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) break;
    const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool AtEof(int fd) {
  pollfd p{fd, POLLIN, 0};
  char c;
  return ::poll(&p, 1, 10000) == 1 && ::recv(fd, &c, 1, 0) == 0;
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 131 + static_cast<size_t>(seed)) % 251);
  return s;
}

TEST(Splicer, CopiesBothWaysIntactWithBackpressure) {
  Splicer splicer;
  Ends e;
  std::atomic<int> closed{0};
  splicer.Add(e.inner_left, e.inner_right, nullptr, [&] { ++closed; });
  // 8 MiB each way at once: far more than socket buffers, so both directions must stall and
  // resume; the receiver starts late to force it.
  const std::string up = Pattern(8 << 20, 1), down = Pattern(8 << 20, 2);
  std::thread w1([&] { WriteAll(e.left, up); });
  std::thread w2([&] { WriteAll(e.right, down); });
  std::string got_up, got_down;
  std::thread r1([&] { got_up = ReadUpTo(e.right, up.size()); });
  got_down = ReadUpTo(e.left, down.size());
  r1.join();
  w1.join();
  w2.join();
  EXPECT_TRUE(got_up == up);
  EXPECT_TRUE(got_down == down);
  EXPECT_EQ(closed, 0);
  EXPECT_EQ(splicer.pairs(), 1u);
}

TEST(Splicer, PassesHalfCloseOnAndClosesWhenBothEnd) {
  Splicer splicer;
  Ends e;
  std::atomic<int> closed{0};
  splicer.Add(e.inner_left, e.inner_right, nullptr, [&] { ++closed; });
  WriteAll(e.left, "request");
  ::shutdown(e.left, SHUT_WR);
  EXPECT_EQ(ReadUpTo(e.right, 7), "request");
  EXPECT_TRUE(AtEof(e.right));
  // The other direction still works after the half-close.
  WriteAll(e.right, "answer");
  EXPECT_EQ(ReadUpTo(e.left, 6), "answer");
  EXPECT_EQ(closed, 0);
  ::shutdown(e.right, SHUT_WR);
  EXPECT_TRUE(AtEof(e.left));
  EXPECT_TRUE(WaitFor([&] { return closed == 1; }, 5s));
  EXPECT_EQ(splicer.pairs(), 0u);
}

// After one side's half-close its socket leaves the epoll set (a hang-up would otherwise
// report itself in a loop); a large answer to it must bring it back for writing.
TEST(Splicer, WritesALargeAnswerToAHalfClosedSide) {
  Splicer splicer;
  Ends e;
  splicer.Add(e.inner_left, e.inner_right);
  WriteAll(e.left, "GET");
  ::shutdown(e.left, SHUT_WR);
  EXPECT_EQ(ReadUpTo(e.right, 3), "GET");
  EXPECT_TRUE(AtEof(e.right));
  const std::string answer = Pattern(8 << 20, 4);
  std::thread w([&] {
    WriteAll(e.right, answer);
    ::shutdown(e.right, SHUT_WR);
  });
  const std::string got = ReadUpTo(e.left, answer.size() + 1);
  w.join();
  EXPECT_TRUE(got == answer) << got.size();
}

TEST(Splicer, ClosesThePairWhenOneSideGoesAway) {
  Splicer splicer;
  Ends e;
  std::atomic<int> closed{0};
  splicer.Add(e.inner_left, e.inner_right, nullptr, [&] { ++closed; });
  ::close(e.right);
  e.right = -1;
  // Writing into a pair whose far side is gone ends it (EOF passed on, then the write fails).
  WriteAll(e.left, "x");
  EXPECT_TRUE(AtEof(e.left));
  ::close(e.left);
  e.left = -1;
  EXPECT_TRUE(WaitFor([&] { return closed == 1; }, 5s));
}

TEST(Splicer, ClosesIdlePairs) {
  Splicer splicer(100ms);
  Ends e;
  std::atomic<int> closed{0};
  splicer.Add(e.inner_left, e.inner_right, nullptr, [&] { ++closed; });
  EXPECT_TRUE(WaitFor([&] { return closed == 1; }, 5s));
  EXPECT_TRUE(AtEof(e.left));
}

TEST(Splicer, DestructorClosesEverything) {
  Ends e;
  std::atomic<int> closed{0};
  {
    Splicer splicer;
    splicer.Add(e.inner_left, e.inner_right, nullptr, [&] { ++closed; });
  }
  EXPECT_EQ(closed, 1);
  EXPECT_TRUE(AtEof(e.left));
}

TEST(Splicer, HoldsTheByteRate) {
  Splicer splicer;
  Ends e;
  // 1 MiB/s with a second of burst: 2.5 MiB cannot arrive in less than 1.5 s.
  auto rate = std::make_shared<ByteRate>(1 << 20);
  splicer.Add(e.inner_left, e.inner_right, rate);
  const std::string data = Pattern(5 << 19, 3);
  const auto start = std::chrono::steady_clock::now();
  std::thread w([&] { WriteAll(e.left, data); });
  const std::string got = ReadUpTo(e.right, data.size());
  const auto took = std::chrono::steady_clock::now() - start;
  w.join();
  EXPECT_TRUE(got == data);
  EXPECT_GE(took, 1400ms);  // a floor the limiter guarantees; no upper bound asserted
}

TEST(ByteRate, OverdraftPausesForTheDebt) {
  ByteRate rate(1000);
  EXPECT_EQ(rate.Take(1000).count(), 0);  // the burst
  const auto pause = rate.Take(500);
  EXPECT_GT(pause, 400ms);
  EXPECT_LT(pause, 600ms);
}

}  // namespace
}  // namespace peerstack::tunnel
