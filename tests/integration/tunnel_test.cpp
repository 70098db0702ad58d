// Tunnel providers in the real binary: a command tunnel (a stand-in program that prints the
// node's own loopback URL, as `lt` or `bore` print theirs), a command that points elsewhere
// (refused by the identity check, direct used instead), and the admin API never reachable
// through a tunnel.
#include <gtest/gtest.h>

#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;

TEST(TunnelNode, ACommandTunnelIsUsedOnceItProvesToBeThisNode) {
  test::TempDir dir;
  const uint16_t port = test::FreePort();
  test::TestNode node(dir.path(), {"--port", std::to_string(port), "--tunnel", "command,direct",
                                   "--tunnel-command",
                                   "echo forwarding; echo 'url: http://127.0.0.1:{port}'; exec sleep 600"});
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
                                   "echo 'url: http://127.0.0.1:1'; exec sleep 600"});
  std::string why;
  ASSERT_TRUE(node.Start(&why)) << why;
  const json::Value tunnel = *node.Status().find("tunnel");
  EXPECT_EQ(*tunnel.find_string("provider"), "direct");
  bool command_failed = false;
  for (const auto& f : tunnel.find("failures")->as_array()) {
    command_failed |= *f.find_string("provider") == "command" &&
                      f.find_string("error")->find("does not answer with its key") != std::string::npos;
  }
  EXPECT_TRUE(command_failed) << json::Serialize(tunnel);
  EXPECT_NE(node.Log().find("provider `upnp` is not available"), std::string::npos);
}

}  // namespace
}  // namespace peerstack
