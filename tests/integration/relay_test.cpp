// Peer relays in-process: a relay server, the relay provider of a "NATed" node, and the
// node's public listener (an http::Server) reached only through the relay.
#include "tunnel/relay.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "crypto/encoding.h"
#include "http/client.h"
#include "http/server.h"
#include "support/test_support.h"

namespace peerstack::tunnel {
namespace {

using namespace std::chrono_literals;

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http::ServerOptions so;
    so.threads = 1;
    so.handler = [](const http::Request& r) {
      http::Response resp;
      resp.body = "node says " + r.path;
      if (r.path == "/big") resp.body.assign(2 << 20, 'x');
      return resp;
    };
    node_ = http::MakeServer(so);
    ASSERT_TRUE(node_->Start().ok());
  }

  std::unique_ptr<RelayServer> MakeRelay(size_t max_connections = 64, size_t joiner_slots = 0,
                                         std::chrono::milliseconds joiner_time = 0ms) {
    RelayServerOptions o;
    o.max_joiner_slots = joiner_slots;
    o.joiner_slot_time = joiner_time;
    o.is_member = [this](const std::string& key) {
      return key == crypto::HexEncode(member_.public_key().data(), 32);
    };
    o.max_connections_per_node = max_connections;
    auto relay = std::make_unique<RelayServer>(o);
    EXPECT_TRUE(relay->Start().ok());
    return relay;
  }

  // Relayed connections go to the node's server, as in the node (shared: a late one after
  // the test is refused by the stopped server, not by a destroyed one).
  DeliverConnection Deliver() {
    return [node = node_](int fd) { return node->Adopt(fd); };
  }

  static uint16_t PortOf(const std::string& url) {
    return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  }

  crypto::SigningKey member_ = crypto::SigningKey::Generate();
  std::shared_ptr<http::Server> node_;
};

TEST_F(RelayTest, AMemberIsReachableThroughTheRelay) {
  auto relay = MakeRelay();
  auto provider =
      MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, member_, Deliver());
  auto url = provider->Open();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_TRUE(provider->Alive());
  EXPECT_EQ(relay->relayed_nodes(), 1u);
  // Several requests on one kept-alive connection, a large answer, and parallel clients.
  test::RawConnection c(PortOf(*url));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /page" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.ReadResponse(5s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, "node says /page" + std::to_string(i));
  }
  http::ClientRequest big;
  big.url = *url + "/big";
  auto b = http::Fetch(big);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->body.size(), 2u << 20);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      http::ClientRequest req;
      req.url = *url + "/p";
      auto r = http::Fetch(req);
      if (r.ok() && r->body == "node says /p") ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
  provider->Close();
}

TEST_F(RelayTest, OnlyMembersMayReserveARelay) {
  auto relay = MakeRelay();
  const auto stranger = crypto::SigningKey::Generate();
  auto provider =
      MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, stranger, Deliver());
  auto url = provider->Open();
  ASSERT_FALSE(url.ok());
  EXPECT_NE(url.status().message().find("only members"), std::string::npos)
      << url.status().message();
  EXPECT_EQ(relay->relayed_nodes(), 0u);
}

// A node that is not a member yet gets a joiner slot for a limited time: it is relayed (with
// a joiner's smaller limits), then dropped unless it has become a member. One joiner per
// address at a time, and an address whose slot ran out waits before getting another.
TEST_F(RelayTest, AJoiningNodeGetsATimeLimitedSlot) {
  auto relay = MakeRelay(64, 4, 500ms);
  const auto joiner = crypto::SigningKey::Generate(), other = crypto::SigningKey::Generate();
  auto provider =
      MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, joiner, Deliver());
  auto url = provider->Open();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  http::ClientRequest req;
  req.url = *url + "/joining";
  auto r = http::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "node says /joining");
  auto second = MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, other, Deliver());
  auto refused = second->Open();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("one joining node per address"), std::string::npos)
      << refused.status().message();
  // Not a member when the time is up: the relay lets go of it, and of its address for a while.
  ASSERT_TRUE(test::WaitFor([&] { return !provider->Alive(); }, 10s));
  EXPECT_TRUE(test::WaitFor([&] { return relay->relayed_nodes() == 0; }, 5s));
  auto again = second->Open();
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("had a joiner slot recently"), std::string::npos)
      << again.status().message();
  // Members are not affected.
  auto member =
      MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, member_, Deliver());
  EXPECT_TRUE(member->Open().ok());
}

TEST_F(RelayTest, MovesToAnotherRelayWhenItsRelayDies) {
  auto first = MakeRelay();
  auto second = MakeRelay();
  auto provider = MakeRelayProvider(
      {"127.0.0.1:" + std::to_string(first->port()), "127.0.0.1:" + std::to_string(second->port())},
      member_, Deliver());
  auto url = provider->Open();
  ASSERT_TRUE(url.ok());
  first->Stop();
  ASSERT_TRUE(test::WaitFor([&] { return !provider->Alive(); }, 10s));
  auto again = provider->Open();  // what the manager does on failure
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(*again, *url);
  http::ClientRequest req;
  req.url = *again + "/after";
  auto r = http::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "node says /after");
}

TEST_F(RelayTest, CapsConnectionsPerRelayedNode) {
  auto relay = MakeRelay(/*max_connections=*/1);
  auto provider =
      MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, member_, Deliver());
  auto url = provider->Open();
  ASSERT_TRUE(url.ok());
  test::RawConnection first(PortOf(*url));
  ASSERT_TRUE(first.Send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(first.ReadResponse(5s).has_value());
  test::RawConnection second(PortOf(*url));  // over the cap: closed at once
  EXPECT_TRUE(second.WaitClosed(5s));
}

size_t ThreadCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

std::string ThreadNames() {
  std::string out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    out += " " + test::ReadFileOrEmpty(entry.path().string() + "/comm");
  }
  return out;
}

// Strangers who connect and say nothing (or a silent peer) cost a socket until the handshake
// deadline, never a thread; beyond the cap of handshakes per address they are closed at once.
TEST_F(RelayTest, SilentStrangersCostNoThreadsAndAreCappedPerAddress) {
  auto relay = MakeRelay();
  const size_t before = ThreadCount();
  std::vector<int> silent;
  for (int i = 0; i < 20; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(relay->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    silent.push_back(fd);
  }
  // Each within the cap gets its challenge (its handshake runs); the rest are closed at once.
  size_t challenged = 0, closed = 0;
  for (const int fd : silent) {
    pollfd p{fd, POLLIN, 0};
    char buf[64];
    if (::poll(&p, 1, 2000) != 1) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) ++closed;
    if (n > 0 && std::string(buf, static_cast<size_t>(n)).rfind("CHALLENGE ", 0) == 0) ++challenged;
  }
  EXPECT_EQ(challenged, 8u) << "8 handshakes per address at once";
  EXPECT_EQ(closed, 12u);
  // Eight handshakes in progress, not eight threads (one may start once, lazily, inside the
  // runtime; a thread per connection would add eight).
  EXPECT_LE(ThreadCount(), before + 1) << "no thread per connection:" << ThreadNames();
  for (const int fd : silent) ::close(fd);
  // Once they hang up, their address may handshake again: a member gets its port.
  auto provider =
      MakeRelayProvider({"127.0.0.1:" + std::to_string(relay->port())}, member_, Deliver());
  EXPECT_TRUE(test::WaitFor([&] { return provider->Open().ok(); }, 5s));
}

}  // namespace
}  // namespace peerstack::tunnel
