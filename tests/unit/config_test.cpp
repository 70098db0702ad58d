#include "node/config.h"

#include <gtest/gtest.h>

#include <map>

namespace peerstack::node {
namespace {

struct FakeEnv {
  std::map<std::string, std::string> vars;
  GetEnv fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(RunConfig, HasTheContractDefaults) {
  Config c;
  ASSERT_TRUE(ParseRunConfig({}, FakeEnv{}.fn(), &c).ok());
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.admin_port, 8081);
  EXPECT_EQ(c.tunnel, "direct,upnp,relay");
}

TEST(RunConfig, FlagsOverrideEnvironment) {
  FakeEnv env{{{"PEERSTACK_PORT", "9000"},
               {"PEERSTACK_ADMIN_PORT", "9001"},
               {"PEERSTACK_DATA_DIR", "/env"},
               {"NETWORK_NODE_URL", "http://seed:8080"}}};
  Config c;
  ASSERT_TRUE(ParseRunConfig({"--port", "0", "--data-dir=/flag", "--dev"}, env.fn(), &c).ok());
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.admin_port, 9001);
  EXPECT_EQ(c.data_dir, "/flag");
  EXPECT_EQ(c.join_url, "http://seed:8080");
  EXPECT_TRUE(c.dev);
}

TEST(RunConfig, ExplainsBadInput) {
  Config c;
  auto s = ParseRunConfig({"--port", "70000"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("--port"), std::string::npos);
  s = ParseRunConfig({"--bogus", "1"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("unknown flag --bogus"), std::string::npos);
  s = ParseRunConfig({"--port"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("needs a value"), std::string::npos);
  Config d;
  s = ParseRunConfig({"--port", "9", "--admin-port", "9"}, FakeEnv{}.fn(), &d);
  EXPECT_FALSE(s.ok());
  FakeEnv env{{{"PEERSTACK_PORT", "x"}}};
  Config e;
  EXPECT_NE(ParseRunConfig({}, env.fn(), &e).message().find("PEERSTACK_PORT"), std::string::npos);
  Config f;
  EXPECT_FALSE(ParseRunConfig({"--log-level", "loud"}, FakeEnv{}.fn(), &f).ok());
  Config g;
  s = ParseRunConfig({"--tunnel", "direct,ngrok"}, FakeEnv{}.fn(), &g);
  EXPECT_NE(s.message().find("unknown provider 'ngrok'"), std::string::npos);
  EXPECT_FALSE(ParseRunConfig({"--tunnel", ","}, FakeEnv{}.fn(), &g).ok());
  EXPECT_FALSE(ParseRunConfig({"--upnp-lease", "0"}, FakeEnv{}.fn(), &g).ok());
  EXPECT_NE(ParseRunConfig({"--upnp-lease", "19"}, FakeEnv{}.fn(), &g).message().find("20-604800"),
            std::string::npos);
  ASSERT_TRUE(
      ParseRunConfig({"--tunnel", "upnp,relay", "--upnp-lease", "120"}, FakeEnv{}.fn(), &g).ok());
  EXPECT_EQ(g.tunnel, "upnp,relay");
  EXPECT_EQ(g.upnp_lease_s, 120);
  Config h;
  ASSERT_TRUE(
      ParseRunConfig({"--relay-connections", "8", "--relay-rate", "65536"}, FakeEnv{}.fn(), &h)
          .ok());
  EXPECT_EQ(h.relay_connections, 8u);
  EXPECT_EQ(h.relay_rate, 65536u);
  EXPECT_NE(
      ParseRunConfig({"--relay-connections", "0"}, FakeEnv{}.fn(), &h).message().find("1-4096"),
      std::string::npos);
  EXPECT_FALSE(ParseRunConfig({"--relay-rate", "10"}, FakeEnv{}.fn(), &h).ok());
}

}  // namespace
}  // namespace peerstack::node
