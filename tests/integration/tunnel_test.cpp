// Tunnel providers in the real binary: a command tunnel (a stand-in program that prints the
// node's own loopback URL, as `lt` or `bore` print theirs), a command that points elsewhere
// (refused by the identity check, direct used instead), and the admin API never reachable
// through a tunnel.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "http/client.h"
#include "protocol/join.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;

TEST(TunnelNode, ACommandTunnelIsUsedOnceItProvesToBeThisNode) {
  test::TempDir dir;
  const uint16_t port = test::FreePort();
  test::TestNode node(
      dir.path(), {"--port", std::to_string(port), "--tunnel", "command,direct", "--tunnel-command",
                   "echo forwarding; echo 'url: http://127.0.0.1:{port}'; exec sleep infinity"});
  std::string why;
  ASSERT_TRUE(node.Start(&why)) << why;
  const json::Value tunnel = *node.Status().find("tunnel");
  EXPECT_EQ(*tunnel.find_string("provider"), "command");
  EXPECT_EQ(*tunnel.find_string("url"), "http://127.0.0.1:" + std::to_string(port));
  // The node announces the tunnel's URL, and /nodes says which path it is reached by.
  EXPECT_EQ(*node.Status().find("node")->find_string("url"), *tunnel.find_string("url"));
  const json::Value nodes = node.GetJson("/nodes");
  EXPECT_EQ(*nodes.find("nodes")->as_array()[0].find_string("via"), "command");
  // Through the tunnel (the public listener) the admin API does not exist, token or not.
  auto r = test::HttpGet(port, "/status", {node.AuthHeader()});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(node.Stop(SIGTERM), 0);
}

TEST(TunnelNode, ATunnelThatLeadsElsewhereIsRefusedAndDirectIsUsed) {
  test::TempDir dir;
  test::TestNode node(dir.path(), {"--tunnel", "command,upnp,direct", "--tunnel-command",
                                   "echo 'url: http://127.0.0.1:1'; exec sleep infinity"});
  std::string why;
  ASSERT_TRUE(node.Start(&why)) << why;
  const json::Value tunnel = *node.Status().find("tunnel");
  EXPECT_EQ(*tunnel.find_string("provider"), "direct");
  bool command_failed = false, upnp_refused = false;
  for (const auto& f : tunnel.find("failures")->as_array()) {
    command_failed |=
        *f.find_string("provider") == "command" &&
        f.find_string("error")->find("does not answer with its key") != std::string::npos;
    // A node on loopback asks no router for anything (and sends no multicast).
    upnp_refused |=
        *f.find_string("provider") == "upnp" &&
        f.find_string("error")->find("a router cannot forward to it") != std::string::npos;
  }
  EXPECT_TRUE(command_failed) << json::Serialize(tunnel);
  EXPECT_TRUE(upnp_refused) << json::Serialize(tunnel);
  // `peerstack status` says the same.
  std::string out;
  ASSERT_EQ(
      test::RunCommand({test::PeerstackBinary(), "status", "--data-dir", node.data_dir()}, &out), 0)
      << out;
  EXPECT_NE(out.find("reached by direct"), std::string::npos) << out;
  EXPECT_NE(out.find("upnp failed: the public listener is on 127.0.0.1"), std::string::npos) << out;
}

}  // namespace
}  // namespace peerstack

namespace peerstack {
namespace {

// A member behind "NAT" (reached only through its relay URL here) served by a member relay:
// the page, /nodes and a plugin route work through the relay, and the network sees the
// member's relay URL and path.
TEST(TunnelNode, AMemberIsReachableThroughAnotherMembersRelay) {
  test::TempDir dir;
  ::mkdir(dir.Sub("plugins").c_str(), 0755);
  ::mkdir(dir.Sub("front").c_str(), 0755);
  test::WriteFile(dir.Sub("front/index.html"), "<!doctype html><title>relayed</title>");
  test::CopyFile(test::BuiltPlugin("hello"), dir.Sub("plugins/libhello.so"));
  ::mkdir(dir.Sub("a").c_str(), 0755);
  ::mkdir(dir.Sub("b").c_str(), 0755);
  const std::string common_front = dir.Sub("front");
  test::TestNode a(dir.Sub("a"),
                   {"--relay-port", "0", "--plugins", dir.Sub("plugins"), "--front", common_front});
  std::string why;
  ASSERT_TRUE(a.Start(&why)) << why;
  const uint16_t relay_port = static_cast<uint16_t>(*a.Status().find("relay")->find_int("port"));
  const std::string a_url = "http://127.0.0.1:" + std::to_string(a.public_port());
  // b joins directly first...
  const uint16_t b_port = test::FreePort();
  auto b = std::make_unique<test::TestNode>(
      dir.Sub("b"),
      std::vector<std::string>{"--port", std::to_string(b_port), "--join", a_url, "--plugins",
                               dir.Sub("plugins"), "--front", common_front});
  ASSERT_TRUE(b->Start(&why)) << why;
  ASSERT_TRUE(
      test::WaitFor([&] { return b->Status().find("network")->find("member")->as_bool(); }, 20s));
  ASSERT_EQ(b->Stop(SIGTERM), 0);
  // ...then comes back reachable only through a relay, which it finds among the members by
  // itself (no --relay-via): a's identity answer names its relay port.
  EXPECT_EQ(*a.GetJson("/p2p/identity?nonce=01").find_int("relay"), relay_port);
  b = std::make_unique<test::TestNode>(
      dir.Sub("b"),
      std::vector<std::string>{"--port", std::to_string(b_port), "--tunnel", "relay", "--plugins",
                               dir.Sub("plugins"), "--front", common_front});
  ASSERT_TRUE(b->Start(&why)) << why;
  // (The relays are known once the ledger is loaded, right after the first attempt.)
  ASSERT_TRUE(test::WaitFor(
      [&] { return *b->Status().find("tunnel")->find_string("provider") == "relay"; }, 10s))
      << json::Serialize(*b->Status().find("tunnel"));
  const json::Value tunnel = *b->Status().find("tunnel");
  const std::string relay_url = *tunnel.find_string("url");
  const uint16_t relayed_port =
      static_cast<uint16_t>(std::stoi(relay_url.substr(relay_url.rfind(':') + 1)));
  EXPECT_NE(relayed_port, b_port);
  // A browser's requests through the relay: the page, /nodes, a plugin route.
  auto page = test::HttpGet(relayed_port, "/some/client/route");
  ASSERT_TRUE(page.has_value());
  EXPECT_NE(page->body.find("<title>relayed</title>"), std::string::npos);
  auto hello = test::HttpGet(relayed_port, "/api/hello/");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(*json::Parse(hello->body)->find_string("node"),
            *b->Status().find("node")->find_string("id"));
  // The admin API is not reachable through the relay.
  EXPECT_EQ(test::HttpGet(relayed_port, "/status", {b->AuthHeader()})->status, 404);
  // a learns b's new URL and path.
  const std::string b_id = *b->Status().find("node")->find_string("id");
  ASSERT_TRUE(test::WaitFor(
      [&] {
        const json::Value nodes = a.GetJson("/nodes");
        for (const auto& n : nodes.find("nodes")->as_array()) {
          if (*n.find_string("id") == b_id)
            return *n.find_string("url") == relay_url && *n.find_string("via") == "relay";
        }
        return false;
      },
      20s));
  EXPECT_EQ(*a.Status().find("relay")->find_int("relayed"), 1);
}

}  // namespace
}  // namespace peerstack

namespace peerstack {
namespace {

// /p2p/reach: a node calls back the URL it is given and answers only the key and signature
// found there; bad input, unreachable URLs and floods get clear errors.
TEST(TunnelNode, ANodeCallsBackAnotherNodesUrlForIt) {
  test::TempDir a_dir, b_dir;
  test::TestNode a(a_dir.path()), b(b_dir.path());
  std::string why;
  ASSERT_TRUE(a.Start(&why)) << why;
  ASSERT_TRUE(b.Start(&why)) << why;
  const std::string b_url = "http://127.0.0.1:" + std::to_string(b.public_port());
  const std::string b_key = *b.Status().find("node")->find_string("public_key");
  const json::Value seen =
      a.GetJson("/p2p/reach?url=" + http::PercentEncode(b_url) + "&nonce=00ff");
  ASSERT_TRUE(seen.is_object()) << "no answer";
  EXPECT_EQ(*seen.find_string("key"), b_key);
  EXPECT_TRUE(
      protocol::VerifyHexSignature(b_key, "identity", "00ff", *seen.find_string("sig")).ok());
  EXPECT_EQ(seen.as_object().size(), 2u);  // nothing else of what the URL answered

  const std::string nowhere =
      http::PercentEncode("http://127.0.0.1:" + std::to_string(test::FreePort()));
  auto r = a.Request("GET", "/p2p/reach?url=" + nowhere + "&nonce=01");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("cannot reach"), std::string::npos);
  // The same URL again within a second: refused, not fetched.
  r = a.Request("GET", "/p2p/reach?url=" + nowhere + "&nonce=02");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 429);
  // Never cloud metadata or other link-local addresses; the error says nothing more.
  r = a.Request("GET",
                "/p2p/reach?url=" + http::PercentEncode("http://169.254.169.254") + "&nonce=03");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->body.find("169.254.169.254:"), std::string::npos);
  for (const std::string& bad :
       std::vector<std::string>{"/p2p/reach", "/p2p/reach?url=ftp%3A%2F%2Fx&nonce=01",
                                "/p2p/reach?url=" + http::PercentEncode(b_url) + "&nonce=zz",
                                "/p2p/reach?url=%zz&nonce=01"}) {
    r = a.Request("GET", bad);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400) << bad;
  }
  EXPECT_EQ(a.Stop(SIGTERM), 0);
  EXPECT_EQ(b.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace peerstack
