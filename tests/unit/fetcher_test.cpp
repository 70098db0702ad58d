// Blob fetching (core/release/fetcher.h) against peers on loopback that lie or dawdle: one
// that changes a byte, one that sends more than the release lists, one that sends another
// blob, one that trickles a byte at a time, one that never answers. Each is dropped for the
// next peer; only verified bytes reach the store.
#include "release/fetcher.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <thread>

#include "crypto/sha256.h"
#include "http/server.h"
#include "support/test_support.h"

namespace peerstack::release {
namespace {

using namespace std::chrono_literals;

const std::string kBlob = [] {
  std::string s(64 * 1024, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 % 251);
  return s;
}();

// A peer that answers every blob request with what `body` makes of the real bytes.
class Peer {
 public:
  explicit Peer(std::function<std::string(const std::string&)> body) {
    http::ServerOptions o;
    o.threads = 1;
    o.handler = [this, body](const http::Request&) {
      ++requests;
      http::Response r;
      r.status = 200;
      r.body = body(kBlob);
      return r;
    };
    server_ = http::MakeServer(std::move(o));
    EXPECT_TRUE(server_->Start().ok());
  }
  ~Peer() { server_->Stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::atomic<int> requests{0};

 private:
  http::ServerPtr server_;
};

// Sends the headers, then one byte every 50 ms, until the client goes away: 20 bytes/s.
class Trickler {
 public:
  Trickler() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      const std::string head =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBlob.size()) + "\r\n\r\n";
      bool ok = ::send(c, head.data(), head.size(), MSG_NOSIGNAL) > 0;
      for (size_t i = 0; ok && i < kBlob.size() && !stop_; ++i) {
        ok = ::send(c, &kBlob[i], 1, MSG_NOSIGNAL) == 1;
        sent_ = i + 1;
        std::this_thread::sleep_for(50ms);  // the peer's pace (what is tested), not a wait
      }
      ::close(c);
    });
  }
  ~Trickler() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<size_t> sent_{0};

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class FetcherTest : public ::testing::Test {
 protected:
  FetcherTest() {
    transport::TransportOptions to;
    to.clock = &clock_;
    transport_ = std::make_unique<transport::Transport>(std::move(to));
    transport_->Start();
    FetcherOptions fo;
    fo.transport = transport_.get();
    fo.blobs = &blobs_;
    fo.clock = &clock_;
    fo.min_rate_bytes_per_s = 64 * 1024;  // the 64 KiB blob: 300 ms + 1 s to arrive
    fo.base_timeout_ms = 300;
    fo.wake = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
      cv_.notify_all();
    };
    fetcher_ = std::make_unique<BlobFetcher>(std::move(fo));
  }
  ~FetcherTest() override {
    fetcher_.reset();
    transport_->Stop();
  }

  // Pumps until the blob is stored or 15 s pass; each pump after an answer or 50 ms.
  bool FetchFrom(const std::vector<std::string>& peers) {
    const std::vector<BlobRequest> wanted = {{sha_, static_cast<int64_t>(kBlob.size())}};
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (fetcher_->Pump(wanted, peers)) return true;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, 50ms, [this] { return woken_; });
      woken_ = false;
    }
    return false;
  }

  // A fetcher that tries again 100 ms after a failure.
  FetcherOptions QuickRetry() {
    FetcherOptions fo;
    fo.transport = transport_.get();
    fo.blobs = &blobs_;
    fo.clock = &clock_;
    fo.retry_after_ms = 100;
    return fo;
  }
  // Pumps until the store refused the fetched blob; then nothing of it is stored.
  bool StoreRefuses(BlobFetcher& fetcher, const std::string& peer) {
    const std::vector<BlobRequest> wanted = {{sha_, static_cast<int64_t>(kBlob.size())}};
    const bool refused = test::WaitFor(
        [&] {
          fetcher.Pump(wanted, {peer});
          return !fetcher.stats().errors.empty();
        },
        5s);
    EXPECT_TRUE(refused);
    if (!refused) return false;
    EXPECT_NE(fetcher.stats().errors.back().find("store:"), std::string::npos)
        << fetcher.stats().errors.back();
    EXPECT_FALSE(fetcher.Have(sha_));
    return true;
  }

  SystemClock clock_;
  test::TempDir dir_;
  store::BlobStore blobs_{dir_.Sub("blobs")};
  std::unique_ptr<transport::Transport> transport_;
  std::unique_ptr<BlobFetcher> fetcher_;
  std::string sha_ = crypto::Sha256Hex(kBlob);
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

TEST_F(FetcherTest, LyingPeersAreDroppedForTheNextAndOnlyVerifiedBytesAreStored) {
  Peer flipped([](std::string b) {
    b[b.size() / 2] ^= 1;
    return b;
  });
  Peer longer([](std::string b) { return b + "x"; });
  Peer shorter([](std::string b) { return b.substr(1); });
  Peer other([](const std::string&) { return std::string(kBlob.size(), 'z'); });
  Peer good([](const std::string& b) { return b; });
  ASSERT_TRUE(FetchFrom({flipped.url(), longer.url(), shorter.url(), other.url(), good.url()}));
  EXPECT_EQ(*blobs_.Get(sha_, 1 << 20), kBlob);
  for (Peer* p : {&flipped, &longer, &shorter, &other, &good}) EXPECT_EQ(p->requests, 1);
  const FetcherStats st = fetcher_->stats();
  EXPECT_EQ(st.refused, 4u);
  EXPECT_EQ(st.fetched, 1u);
  ASSERT_EQ(st.errors.size(), 4u);
  EXPECT_NE(st.errors[0].find("do not hash"), std::string::npos) << st.errors[0];
  EXPECT_NE(st.errors[1].find("larger than"), std::string::npos) << st.errors[1];
  EXPECT_NE(st.errors[2].find("bytes, the release lists"), std::string::npos) << st.errors[2];
}

TEST_F(FetcherTest, APeerThatTricklesOrSaysNothingIsDroppedAtTheDeadline) {
  Trickler trickler;
  Peer good([](const std::string& b) { return b; });
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(FetchFrom({trickler.url(), good.url()}));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 5s);  // the deadline is 1.3 s here; 64 KiB at 20 bytes/s would take an hour
  EXPECT_GT(trickler.sent_.load(), 0u) << "the trickler did send";
  EXPECT_LT(trickler.sent_.load(), kBlob.size());
  EXPECT_EQ(good.requests, 1);
  ASSERT_FALSE(fetcher_->stats().errors.empty());
  EXPECT_NE(fetcher_->stats().errors[0].find("too slow"), std::string::npos)
      << fetcher_->stats().errors[0];
}

TEST_F(FetcherTest, WhenEveryPeerFailsItPausesThenAsksAgain) {
  Peer flipped([](std::string b) {
    b[0] ^= 1;
    return b;
  });
  const std::vector<BlobRequest> wanted = {{sha_, static_cast<int64_t>(kBlob.size())}};
  ASSERT_TRUE(test::WaitFor(
      [&] {
        fetcher_->Pump(wanted, {flipped.url()});
        return flipped.requests >= 1 && fetcher_->stats().in_flight == 0 &&
               fetcher_->stats().refused == 1;
      },
      5s));
  // Tried once; the next pumps within retry_after_ms ask nobody.
  fetcher_->Pump(wanted, {flipped.url()});
  fetcher_->Pump(wanted, {flipped.url()});
  EXPECT_EQ(flipped.requests, 1);
  EXPECT_FALSE(fetcher_->Have(sha_));
  EXPECT_EQ(fetcher_->stats().missing, 1u);
}

// A real full disk: the store on a tmpfs too small for the blob. Nothing half-written stays;
// once there is room, the next try stores it.
TEST_F(FetcherTest, AFullDiskKeepsNoPartialBlobAndTheNextTryStoresIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const std::string mnt = dir_.Sub("blobs");
  ::mkdir(mnt.c_str(), 0700);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=32k,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    bool mounted = true;
    void Now() {
      if (mounted) ::umount2(path.c_str(), MNT_DETACH);
      mounted = false;
    }
    ~Unmount() { Now(); }
  } unmount{mnt};
  Peer good([](const std::string& b) { return b; });
  BlobFetcher fetcher(QuickRetry());
  ASSERT_TRUE(StoreRefuses(fetcher, good.url()));
  size_t left = 0;
  for (const auto& e : std::filesystem::directory_iterator(mnt))
    left += e.path().filename().string().size() > 0;
  EXPECT_EQ(left, 0u) << "no temp file or partial blob stays behind";
  unmount.Now();  // room again (the directory below the mount is empty and writable)
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return fetcher.Pump({{sha_, static_cast<int64_t>(kBlob.size())}}, {good.url()});
      },
      5s));
  EXPECT_EQ(*blobs_.Get(sha_, 1 << 20), kBlob);
}

TEST_F(FetcherTest, AStoreThatRefusesTheBytesKeepsNothingAndTriesAgainLater) {
  // Where the store's directory should be, a file: every write fails, as on a full disk.
  test::WriteFile(dir_.Sub("blobs"), "in the way");
  Peer good([](const std::string& b) { return b; });
  BlobFetcher fetcher(QuickRetry());
  ASSERT_TRUE(StoreRefuses(fetcher, good.url()));
  EXPECT_EQ(fetcher.stats().refused, 0u) << "not the peer's fault";
  // Space again: the next try stores it, from the same peer.
  ::unlink(dir_.Sub("blobs").c_str());
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return fetcher.Pump({{sha_, static_cast<int64_t>(kBlob.size())}}, {good.url()});
      },
      5s));
  EXPECT_EQ(*blobs_.Get(sha_, 1 << 20), kBlob);
  EXPECT_EQ(good.requests, 2);
}

// Beast 1.74's async_read of a whole message reads a body past body_limit when the header
// declares it (the header step's error is dropped): the exchange reads the header first.
TEST(ResponseLimitTest, AnAnswerOverTheLimitIsRefusedNotRead) {
  Peer longer([](std::string b) { return b + "x"; });
  http::ClientRequest req;
  req.url = longer.url() + "/x";
  req.max_response_bytes = kBlob.size();
  auto r = http::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "too_large");
  req.max_response_bytes = kBlob.size() + 1;
  EXPECT_TRUE(http::Fetch(req).ok());
}

}  // namespace
}  // namespace peerstack::release
