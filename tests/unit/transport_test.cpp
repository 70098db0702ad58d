// The outgoing transport: the per-peer queue's rules (pure, fake time) and the Asio transport
// against real servers on loopback, one of them silent (it accepts TCP connections into its
// backlog and never answers, as a frozen process does).
#include "transport/transport.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "http/server.h"
#include "support/test_support.h"

namespace peerstack::transport {
namespace {

using namespace std::chrono_literals;

TransportOptions Opts(const Clock* clock) {
  TransportOptions o;
  o.clock = clock;
  return o;
}

QueueLimits Limits(size_t capacity, size_t in_flight = 2, int64_t max_age_ms = 30000,
                   int64_t backoff_min_ms = 1000, int64_t backoff_max_ms = 30000) {
  return QueueLimits{capacity, in_flight, max_age_ms, backoff_min_ms, backoff_max_ms};
}

TEST(PeerQueue, MessagesThatMustArriveGoAheadOfDroppableOnes) {
  PeerQueue<int> q;
  q.Push(1, /*droppable=*/true, "", 0);
  q.Push(2, false, "", 0);
  q.Push(3, true, "", 0);
  q.Push(4, false, "", 0);
  std::vector<int> order;
  while (auto m = q.Take(0)) {
    order.push_back(m->payload);
    q.Done(true, 0);
  }
  EXPECT_EQ(order, (std::vector<int>{2, 4, 1, 3}));
}

TEST(PeerQueue, AFullQueueDropsItsOldestDroppableMessageThenRefuses) {
  PeerQueue<int> q(Limits(3));
  EXPECT_EQ(q.Push(1, true, "", 0), Pushed::kQueued);
  EXPECT_EQ(q.Push(2, false, "", 0), Pushed::kQueued);
  EXPECT_EQ(q.Push(3, false, "", 0), Pushed::kQueued);
  EXPECT_EQ(q.Push(4, false, "", 0), Pushed::kDisplaced);  // 1 made room
  EXPECT_EQ(q.Push(5, false, "", 0), Pushed::kRefused);    // everything waiting must arrive
  EXPECT_EQ(q.Push(6, true, "", 0), Pushed::kRefused);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.counters().dropped, 3u);
}

TEST(PeerQueue, ANewerMessageReplacesTheOneItSupersedes) {
  PeerQueue<int> q;
  q.Push(1, true, "sync", 0);
  q.Push(2, false, "", 0);
  EXPECT_EQ(q.Push(3, true, "sync", 0), Pushed::kReplaced);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.Take(0)->payload, 2);
  EXPECT_EQ(q.Take(0)->payload, 3);
}

TEST(PeerQueue, InFlightIsCappedAndOneAtATimeWhileThePeerFails) {
  PeerQueue<int> q(Limits(10, 2, 30000, 100, 350));
  for (int i = 0; i < 6; ++i) q.Push(i, false, "", 0);
  EXPECT_TRUE(q.Take(0));
  EXPECT_TRUE(q.Take(0));
  EXPECT_FALSE(q.Take(0));  // two in flight
  q.Done(false, 10);        // a timeout: backoff 100 ms
  EXPECT_TRUE(q.backing_off(50));
  EXPECT_FALSE(q.Take(50));
  q.Done(false, 20);  // the second fails too: 200 ms from 20
  EXPECT_FALSE(q.Take(200));
  ASSERT_TRUE(q.Take(220));   // backoff over: one message
  EXPECT_FALSE(q.Take(220));  // only one while failing
  q.Done(false, 300);         // third failure: capped at 350
  EXPECT_FALSE(q.Take(649));
  ASSERT_TRUE(q.Take(650));
  q.Done(true, 660);  // it answered: back to two at once, no backoff
  EXPECT_TRUE(q.Take(660));
  EXPECT_TRUE(q.Take(660));
  EXPECT_EQ(q.counters().sent, 1u);
  EXPECT_EQ(q.counters().failed, 3u);
}

TEST(PeerQueue, HearingFromThePeerEndsItsBackoff) {
  PeerQueue<int> q(Limits(128, 2, 30000, 10000));
  q.Push(1, false, "", 0);
  q.Push(2, false, "", 0);
  ASSERT_TRUE(q.Take(0));
  q.Done(false, 0);
  EXPECT_FALSE(q.Take(1));
  q.Heard();
  EXPECT_TRUE(q.Take(1));
}

TEST(PeerQueue, MessagesThatWaitedTooLongExpire) {
  PeerQueue<int> q(Limits(128, 2, 1000));
  q.Push(1, false, "", 0);
  q.Push(2, true, "", 500);
  EXPECT_EQ(q.Expire(1000), 0u);
  EXPECT_EQ(q.Expire(1001), 1u);
  EXPECT_EQ(q.Expire(1501), 1u);
  EXPECT_TRUE(q.idle());
}

TEST(PeerQueue, AnOldMessageBehindASupersedingOneStillExpires) {
  PeerQueue<int> q(Limits(128, 2, 1000));
  q.Push(1, true, "sync", 0);
  q.Push(2, true, "", 100);
  q.Push(3, true, "sync", 900);   // replaces 1 in its place, with its own time
  EXPECT_EQ(q.Expire(1101), 1u);  // 2 is too old although 3, before it, is not
  EXPECT_EQ(q.Take(1101)->payload, 3);
}

// A listening socket nobody serves: connections complete (the kernel's backlog), bytes are
// taken, nothing ever answers. What a SIGSTOPped peer looks like.
class SilentPeer {
 public:
  SilentPeer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentPeer() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A real server that counts what it receives.
class HealthyPeer {
 public:
  explicit HealthyPeer(std::chrono::milliseconds keepalive = 30s) {
    http::ServerOptions o;
    o.threads = 1;
    o.limits.keepalive_timeout = keepalive;
    o.handler = [this](const http::Request& r) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(r.body);
      return http::JsonResponse(202, "{}");
    };
    server_ = http::MakeServer(std::move(o));
    EXPECT_TRUE(server_->Start().ok());
  }
  ~HealthyPeer() { server_->Stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  size_t received() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_.size();
  }
  http::ServerStats stats() const { return server_->stats(); }

 private:
  std::mutex mu_;
  std::vector<std::string> bodies_;
  http::ServerPtr server_;
};

Message To(const std::string& peer, const std::string& body, bool droppable = false) {
  Message m;
  m.peer = peer;
  m.path = "/p2p/test";
  m.body = body;
  m.droppable = droppable;
  return m;
}

const PeerStats* Find(const TransportStats& s, const std::string& peer) {
  for (const auto& p : s.peers) {
    if (p.peer == peer) return &p;
  }
  return nullptr;
}

TEST(Transport, ASilentPeerDoesNotDelayMessagesToOthers) {
  SystemClock clock;
  SilentPeer silent;
  HealthyPeer healthy;
  TransportOptions o = Opts(&clock);
  o.request_timeout = 5s;
  Transport t(o);
  t.Start();
  // The silent peer's messages first, as many as it takes in flight, and then some.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(t.Send(To(silent.url(), "s" + std::to_string(i))));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(t.Send(To(healthy.url(), "h" + std::to_string(i))));
  ASSERT_TRUE(test::WaitFor([&] { return healthy.received() == 50; }, 4s));
  // All delivered before the silent peer's first exchange could even time out.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  const TransportStats s = t.stats();
  const PeerStats* sp = Find(s, silent.url());
  ASSERT_NE(sp, nullptr);
  EXPECT_EQ(sp->in_flight, 2u);  // the cap: the rest wait in its own queue
  EXPECT_EQ(sp->queued, 3u);
  EXPECT_EQ(sp->counters.sent, 0u);
}

TEST(Transport, MessagesToOnePeerReuseKeptAliveConnections) {
  SystemClock clock;
  HealthyPeer healthy;
  Transport t(Opts(&clock));
  t.Start();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(t.Send(To(healthy.url(), std::to_string(i))));
  ASSERT_TRUE(test::WaitFor([&] { return healthy.received() == 40; }, 5s));
  EXPECT_LE(healthy.stats().connections, 2u);  // the in-flight cap, not one per message
  EXPECT_LE(t.stats().connections_opened, 2u);
}

TEST(Transport, AConnectionThePeerClosedIsRetriedOnceOnANewOne) {
  SystemClock clock;
  HealthyPeer healthy(/*keepalive=*/100ms);
  TransportOptions o = Opts(&clock);
  o.queue.in_flight = 1;
  Transport t(o);
  t.Start();
  ASSERT_TRUE(t.Send(To(healthy.url(), "first")));
  ASSERT_TRUE(test::WaitFor([&] { return healthy.received() == 1; }, 5s));
  // The server closes the idle connection; the transport still holds it as kept alive.
  ASSERT_TRUE(test::WaitFor([&] { return healthy.stats().open_connections == 0; }, 5s));
  ASSERT_TRUE(t.Send(To(healthy.url(), "second")));
  // Received by the peer, then its answer read by the transport (the stats move after that).
  ASSERT_TRUE(test::WaitFor(
      [&] {
        const TransportStats now = t.stats();
        const PeerStats* q = Find(now, healthy.url());
        return healthy.received() == 2 && q && q->counters.sent + q->counters.failed >= 2;
      },
      5s));
  const TransportStats s = t.stats();
  const PeerStats* p = Find(s, healthy.url());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->counters.failed, 0u);
  EXPECT_EQ(p->counters.sent, 2u);
}

TEST(Transport, ASilentPeerTimesOutBacksOffAndIsTriedAgainWhenHeardFrom) {
  SystemClock clock;
  SilentPeer silent;
  TransportOptions o = Opts(&clock);
  o.queue.capacity = 4;
  o.queue.in_flight = 1;
  o.queue.backoff_min_ms = 60000;
  o.request_timeout = 200ms;
  Transport t(o);
  t.Start();
  // 4 wait and 1 may be in flight already: of 6, at least one is refused.
  int accepted = 0;
  for (int i = 0; i < 6; ++i) accepted += t.Send(To(silent.url(), std::to_string(i)));
  EXPECT_GE(accepted, 4);
  EXPECT_LE(accepted, 5) << "the queue is bounded";
  auto failed = [&] {
    const TransportStats s = t.stats();  // (Find points into it)
    const PeerStats* p = Find(s, silent.url());
    return p ? p->counters.failed : 0;
  };
  ASSERT_TRUE(test::WaitFor([&] { return failed() == 1; }, 3s));
  EXPECT_TRUE(Find(t.stats(), silent.url())->backing_off);
  EXPECT_NE(Find(t.stats(), silent.url())->last_error.find("timeout"), std::string::npos);
  // Heard from (it sent us a message): the next message goes out at once, and times out.
  t.Heard(silent.url());
  ASSERT_TRUE(test::WaitFor([&] { return failed() == 2; }, 3s));
}

TEST(Transport, MessagesToAPeerThatNeverAnswersExpire) {
  FakeClock clock;
  SilentPeer silent;
  TransportOptions o = Opts(&clock);
  o.queue.in_flight = 1;
  o.queue.max_age_ms = 1000;
  o.request_timeout = 60s;
  Transport t(o);
  t.Start();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.Send(To(silent.url(), std::to_string(i))));
  ASSERT_TRUE(test::WaitFor([&] { return Find(t.stats(), silent.url())->in_flight == 1; }, 3s));
  clock.Advance(1001);
  ASSERT_TRUE(test::WaitFor([&] { return Find(t.stats(), silent.url())->queued == 0; }, 3s));
  EXPECT_EQ(Find(t.stats(), silent.url())->counters.dropped, 2u);
}

TEST(Transport, FetchHasADeadlineAndABoundOnRequestsInFlight) {
  SystemClock clock;
  SilentPeer silent;
  HealthyPeer healthy;
  TransportOptions o = Opts(&clock);
  o.max_fetches = 2;
  Transport t(o);
  t.Start();
  std::mutex mu;
  std::vector<std::string> results;
  auto record = [&](Result<http::ClientResponse> r) {
    std::lock_guard<std::mutex> lock(mu);
    results.push_back(r ? std::to_string(r->status) : r.status().code());
  };
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return results.size();
  };
  http::ClientRequest slow;
  slow.url = silent.url() + "/p2p/identity";
  slow.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  t.Fetch(slow, record);
  t.Fetch(slow, record);
  t.Fetch(slow, record);  // a third while two run: busy at once
  ASSERT_EQ(count(), 1u);
  EXPECT_EQ(results[0], "busy");
  ASSERT_TRUE(test::WaitFor([&] { return count() == 3; }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(results[1], "timeout");
  EXPECT_EQ(results[2], "timeout");
  http::ClientRequest ok;
  ok.url = healthy.url() + "/x";
  t.Fetch(ok, record);
  ASSERT_TRUE(test::WaitFor([&] { return count() == 4; }, 3s));
  EXPECT_EQ(results[3], "202");
  http::ClientRequest bad;
  bad.url = "ftp://example.invalid/";
  t.Fetch(bad, record);
  EXPECT_EQ(results[4], "bad_url");
}

TEST(Transport, StopsWithMessagesInFlightToASilentPeer) {
  SystemClock clock;
  SilentPeer silent;
  Transport t(Opts(&clock));
  t.Start();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(t.Send(To(silent.url(), std::to_string(i))));
  ASSERT_TRUE(test::WaitFor([&] { return Find(t.stats(), silent.url())->in_flight == 2; }, 3s));
  const auto start = std::chrono::steady_clock::now();
  t.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_FALSE(t.Send(To(silent.url(), "late")));
}

}  // namespace
}  // namespace peerstack::transport
