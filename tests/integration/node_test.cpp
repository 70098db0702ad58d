// The real peerstack binary, on port 0 in a temp data dir, as a user would run it.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>

#include "json/json.h"
#include "support/prometheus.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::RawConnection;

constexpr const char kSecret[] = "OUTSIDE-FRONT-SECRET-7d1f";

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::WriteFile(dir_.Sub("secret.txt"), kSecret);
    ::mkdir(dir_.Sub("front").c_str(), 0755);
    test::WriteFile(dir_.Sub("front/index.html"), "<!doctype html><title>Peerstack</title>");
    test::WriteFile(dir_.Sub("front/app.js"), "'use strict';");
  }

  void StartNode(uint16_t port = 0) {
    std::vector<std::string> args{"--front", dir_.Sub("front"), "--plugins", dir_.Sub("plugins")};
    if (port != 0) args.insert(args.end(), {"--port", std::to_string(port)});
    node_ = std::make_unique<test::TestNode>(dir_.path(), args);
    std::string why;
    ASSERT_TRUE(node_->Start(&why)) << why;
    public_port_ = node_->public_port();
    admin_port_ = node_->admin_port();
  }

  std::string Token() const { return node_->Token(); }

  json::Value GetJson(uint16_t port, const std::string& path) {
    auto r = test::HttpGet(port, path);
    EXPECT_TRUE(r.has_value()) << path;
    if (!r) return nullptr;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    auto v = json::Parse(r->body);
    EXPECT_TRUE(v.ok()) << r->body;
    return v.ok() ? *v : json::Value(nullptr);
  }

  json::Value Status() { return node_->Status(); }

  test::TempDir dir_;
  std::unique_ptr<test::TestNode> node_;
  uint16_t public_port_ = 0;
  uint16_t admin_port_ = 0;
};

TEST_F(NodeTest, ServesTheFrontPage) {
  StartNode();
  auto r = test::HttpGet(public_port_, "/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("<title>Peerstack</title>"), std::string::npos);
}

TEST_F(NodeTest, ListsItselfInNodes) {
  StartNode();
  const json::Value nodes = GetJson(public_port_, "/nodes");
  const json::Value status = Status();
  ASSERT_TRUE(nodes.is_object());
  EXPECT_EQ(*nodes.find_string("network"), *status.find("network")->find_string("id"));
  const auto& list = nodes.find("nodes")->as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(*list[0].find_string("id"), *status.find("node")->find_string("id"));
  EXPECT_TRUE(list[0].find("online")->as_bool());
  EXPECT_EQ(*list[0].find_string("url"), "http://127.0.0.1:" + std::to_string(public_port_));
  EXPECT_TRUE(list[0].find("last_seen")->is_int());
  EXPECT_FALSE(list[0].find_string("version")->empty());
  // `peerstack id` and `peerstack status` agree with the node.
  std::string out;
  ASSERT_EQ(test::RunCommand({test::PeerstackBinary(), "id", "--data-dir", dir_.Sub("data")}, &out),
            0);
  EXPECT_NE(out.find(*list[0].find_string("id")), std::string::npos) << out;
  ASSERT_EQ(
      test::RunCommand({test::PeerstackBinary(), "status", "--data-dir", dir_.Sub("data")}, &out),
      0)
      << out;
  EXPECT_NE(out.find(*nodes.find_string("network")), std::string::npos) << out;
  EXPECT_NE(out.find("reached by direct"), std::string::npos) << out;  // which path reaches it
}

TEST_F(NodeTest, FallsBackToIndexForClientRoutes) {
  StartNode();
  auto r = test::HttpGet(public_port_, "/blog/posts/42");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<title>Peerstack</title>"), std::string::npos);
  EXPECT_EQ(test::HttpGet(public_port_, "/missing.js")->status, 404);
  EXPECT_EQ(test::HttpGet(public_port_, "/api/nothing")->status, 404);
}

TEST_F(NodeTest, AnswersNotModifiedForAMatchingEtag) {
  StartNode();
  auto first = test::HttpGet(public_port_, "/app.js");
  ASSERT_TRUE(first.has_value());
  const std::string etag = first->headers["etag"];
  ASSERT_FALSE(etag.empty());
  auto second = test::HttpGet(public_port_, "/app.js", {"If-None-Match: " + etag});
  EXPECT_EQ(second->status, 304);
  EXPECT_TRUE(second->body.empty());
}

TEST_F(NodeTest, RefusesPathTraversal) {
  StartNode();
  for (const char* path :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
        "/front/../../secret.txt", "/%252e%252e/secret.txt", "/..%5csecret.txt", "/app.js%00"}) {
    auto r = test::HttpGet(public_port_, path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_TRUE(r->status == 400 || r->status == 404) << path << " -> " << r->status;
    EXPECT_EQ(r->body.find(kSecret), std::string::npos) << path;
  }
}

TEST_F(NodeTest, KeepsAConnectionOpenWithoutAConnectionHeader) {
  StartNode();
  RawConnection c(public_port_);
  ASSERT_TRUE(c.Send("GET /nodes HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto a = c.ReadResponse();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->headers.count("connection"), 0u);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto b = c.ReadResponse();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status, 200);
}

TEST_F(NodeTest, Answers413ToAnOversizeBodyAndDropsThePipelinedRequest) {
  StartNode();
  const auto requests_before = *Status().find("listeners")->find("public")->find_int("requests");
  RawConnection c(public_port_);
  ASSERT_TRUE(
      c.Send("POST /nodes HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"
             "GET /nodes HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  std::string extra;
  EXPECT_TRUE(c.WaitClosed(5s, &extra));
  EXPECT_EQ(extra, "");
  EXPECT_EQ(*Status().find("listeners")->find("public")->find_int("requests"), requests_before);
}

TEST_F(NodeTest, RefusesDuplicateOrHugeContentLengthWithRssUnchanged) {
  StartNode();
  ASSERT_TRUE(test::HttpGet(public_port_, "/nodes").has_value());  // warm up
  const long rss_before = node_->process()->RssKb();
  for (int i = 0; i < 20; ++i) {
    for (const char* cl : {"Content-Length: 10\r\nContent-Length: 10\r\n",
                           "Content-Length: 10\r\nContent-Length: 2000000000\r\n",
                           "Content-Length: 18446744073709551616000\r\n"}) {
      RawConnection c(public_port_);
      ASSERT_TRUE(c.Send(std::string("POST /nodes HTTP/1.1\r\nHost: x\r\n") + cl + "\r\n"));
      auto r = c.ReadResponse();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->status, 400) << cl;
    }
  }
  const long rss_after = node_->process()->RssKb();
  EXPECT_GT(rss_before, 0);
  EXPECT_LT(rss_after - rss_before, 4 * 1024) << "RSS grew from " << rss_before << " kB";
}

TEST_F(NodeTest, Answers400ToAMalformedRequestLine) {
  StartNode();
  RawConnection c(public_port_);
  ASSERT_TRUE(c.Send("GET /nodes HTTP/1.1 extra\r\nHost: x\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("\"error\""), std::string::npos);
}

TEST_F(NodeTest, AdminNeedsTheToken) {
  StartNode();
  EXPECT_EQ(test::HttpGet(admin_port_, "/status")->status, 401);
  EXPECT_EQ(test::HttpGet(admin_port_, "/status", {"Authorization: Bearer wrong"})->status, 401);
  EXPECT_EQ(test::HttpGet(admin_port_, "/status", {"Authorization: Basic " + Token()})->status,
            401);
  EXPECT_EQ(test::HttpGet(admin_port_, "/status", {"Authorization: Bearer " + Token()})->status,
            200);
}

TEST_F(NodeTest, AdminPathsAreNotOnThePublicPort) {
  StartNode();
  for (const char* path :
       {"/status", "/sync", "/join", "/releases", "/invitations", "/status/", "/sync/x"}) {
    auto r = test::HttpGet(public_port_, path, {"Authorization: Bearer " + Token()});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("state_hash"), std::string::npos);
  }
  // A client route that merely starts like an admin path is the SPA's.
  EXPECT_EQ(test::HttpGet(public_port_, "/statuses")->status, 200);
}

// GET /metrics: the Prometheus text format (read strictly), the figures the docs list, only on
// the admin listener and only with the token.
TEST_F(NodeTest, ExportsMetricsOnTheAdminListenerOnly) {
  StartNode();
  ASSERT_EQ(test::HttpGet(public_port_, "/")->status, 200);  // a public 2xx to count
  EXPECT_EQ(test::HttpGet(public_port_, "/metrics", {"Authorization: Bearer " + Token()})->status,
            404);
  EXPECT_EQ(test::HttpGet(admin_port_, "/metrics")->status, 401);
  auto r = test::HttpGet(admin_port_, "/metrics", {"Authorization: Bearer " + Token()});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  test::PromPage page;
  std::string error;
  ASSERT_TRUE(test::ParsePrometheus(r->body, &page, &error)) << error << "\n" << r->body;
  ASSERT_NE(page.Find("peerstack_build_info"), nullptr);
  EXPECT_FALSE(page.Find("peerstack_build_info")->labels.at("version").empty());
  EXPECT_EQ(page.Find("peerstack_members", {{"liveness", "online"}})->value, 1);
  EXPECT_EQ(page.Find("peerstack_members", {{"liveness", "offline"}})->value, 0);
  EXPECT_GE(
      page.Find("peerstack_http_requests_total", {{"listener", "public"}, {"code", "2xx"}})->value,
      1);
  EXPECT_GE(
      page.Find("peerstack_http_requests_total", {{"listener", "admin"}, {"code", "4xx"}})->value,
      1);
  EXPECT_GE(page.Find("peerstack_events_stored")->value, 1);
  EXPECT_EQ(page.Find("peerstack_tunnel_up", {{"provider", "direct"}})->value, 1);
  EXPECT_GT(page.Find("peerstack_process_resident_memory_bytes")->value, 1e6);
  EXPECT_GT(page.Find("peerstack_process_open_fds")->value, 3);
  for (const char* family :
       {"peerstack_release_version", "peerstack_release_running", "peerstack_join_duration_seconds",
        "peerstack_peer_messages_total", "peerstack_plugin_calls_total",
        "peerstack_plugin_errors_total", "peerstack_plugin_call_duration_seconds"}) {
    EXPECT_TRUE(page.types.count(family)) << family;
  }
}

TEST_F(NodeTest, KeepsItsIdentityAndNetworkAcrossRestarts) {
  // The same port: the same URL, so the same state (another port would add an address event).
  const uint16_t port = test::FreePort();
  StartNode(port);
  const json::Value before = Status();
  EXPECT_EQ(node_->Stop(SIGTERM, 10s), 0);
  StartNode(port);
  const json::Value after = Status();
  EXPECT_EQ(*after.find("node")->find_string("id"), *before.find("node")->find_string("id"));
  EXPECT_EQ(*after.find("network")->find_string("id"), *before.find("network")->find_string("id"));
  EXPECT_EQ(*after.find("network")->find_string("state_hash"),
            *before.find("network")->find_string("state_hash"));
}

TEST_F(NodeTest, ExitsZeroOnSigtermAndSigint) {
  StartNode();
  EXPECT_EQ(node_->Stop(SIGTERM, 10s), 0);
  EXPECT_TRUE(test::ReadFileOrEmpty(dir_.Sub("data/ports.json")).empty());
  StartNode();
  EXPECT_EQ(node_->Stop(SIGINT, 10s), 0);
}

TEST_F(NodeTest, KeepsSecretsPrivate) {
  StartNode();
  struct stat st {};
  for (const char* f : {"data/node.key", "data/admin.token"}) {
    ASSERT_EQ(::stat(dir_.Sub(f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  ASSERT_EQ(::stat(dir_.Sub("data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST_F(NodeTest, RefusesASecondNodeOnTheSameDataDir) {
  StartNode();
  std::string out;
  const int rc = test::RunCommand({test::PeerstackBinary(), "run", "--data-dir", dir_.Sub("data"),
                                   "--port", "0", "--admin-port", "0", "--bind", "127.0.0.1"},
                                  &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("another node is running"), std::string::npos) << out;
}

// A node killed with SIGKILL leaves its ports.json: `peerstack status` must not talk to those
// ports (something else may own them by now), and the next start removes the file until it
// is ready again.
TEST_F(NodeTest, AKilledNodesPortsFileIsNeverTakenForARunningNode) {
  StartNode();
  std::string out;
  ASSERT_EQ(
      test::RunCommand({test::PeerstackBinary(), "status", "--data-dir", dir_.Sub("data")}, &out),
      0)
      << out;
  ASSERT_EQ(node_->Stop(SIGKILL), -SIGKILL);
  ASSERT_FALSE(test::ReadFileOrEmpty(dir_.Sub("data/ports.json")).empty());
  EXPECT_NE(
      test::RunCommand({test::PeerstackBinary(), "status", "--data-dir", dir_.Sub("data")}, &out),
      0);
  EXPECT_NE(out.find("no node is running"), std::string::npos) << out;
  StartNode();
  ASSERT_EQ(
      test::RunCommand({test::PeerstackBinary(), "status", "--data-dir", dir_.Sub("data")}, &out),
      0)
      << out;
  const json::Value ports = *json::Parse(test::ReadFileOrEmpty(dir_.Sub("data/ports.json")));
  EXPECT_EQ(*ports.find_int("public"), node_->public_port());
}

// Under systemd stderr is the journal (JOURNAL_STREAM names it): lines carry the priority
// journald reads and no time of their own; with JOURNAL_STREAM naming another file, the usual
// format.
TEST_F(NodeTest, UnderSystemdLogLinesCarryTheJournalPriorityAndNoTime) {
  test::WriteFile(dir_.Sub("node.log"), "");
  struct stat st {};
  ASSERT_EQ(::stat(dir_.Sub("node.log").c_str(), &st), 0);
  const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  node_ = std::make_unique<test::TestNode>(
      dir_.path(), std::vector<std::string>{"--front", dir_.Sub("front")},
      std::map<std::string, std::string>{{"JOURNAL_STREAM", stream}});
  std::string why;
  ASSERT_TRUE(node_->Start(&why)) << why;
  const std::string log = node_->Log();
  EXPECT_NE(log.find("<6>INFO  node: "), std::string::npos) << log;
  EXPECT_EQ(log.find("Z INFO"), std::string::npos) << "no timestamps:\n" << log;
  ASSERT_EQ(node_->Stop(SIGTERM), 0);
  // JOURNAL_STREAM names another stream (stderr was redirected since): timestamps as usual.
  ::unlink(dir_.Sub("node.log").c_str());
  node_ = std::make_unique<test::TestNode>(
      dir_.path(), std::vector<std::string>{"--front", dir_.Sub("front")},
      std::map<std::string, std::string>{{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":1"}});
  ASSERT_TRUE(node_->Start(&why)) << why;
  EXPECT_NE(node_->Log().find("Z INFO  node: "), std::string::npos) << node_->Log();
  EXPECT_EQ(node_->Log().find("<6>"), std::string::npos);
}

// Under systemd with Type=notify: the node says READY=1 once it serves (ports.json written)
// and STOPPING=1 when it stops, on the datagram socket NOTIFY_SOCKET names.
TEST_F(NodeTest, TellsTheServiceManagerWhenItIsReadyAndWhenItStops) {
  const std::string path = dir_.Sub("notify.sock");
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto receive = [&](std::chrono::milliseconds wait) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::string();
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };
  node_ = std::make_unique<test::TestNode>(
      dir_.path(), std::vector<std::string>{"--front", dir_.Sub("front")},
      std::map<std::string, std::string>{{"NOTIFY_SOCKET", path}});
  std::string why;
  ASSERT_TRUE(node_->Start(&why)) << why;
  const std::string ready = receive(10s);
  EXPECT_NE(ready.find("READY=1\n"), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=serving http://127.0.0.1:"), std::string::npos) << ready;
  ASSERT_EQ(node_->Stop(SIGTERM), 0);
  EXPECT_NE(receive(10s).find("STOPPING=1"), std::string::npos);
}

// `cmake --install` into a staging prefix: the daemon runs from there with the installed
// example app, the systemd unit names those paths and passes `systemd-analyze verify` (where
// it exists), the SDK's CMake package and the pkg-config file for C plugins are there.
TEST(Install, AStagedInstallGivesAWorkingDaemonUnitAndSdk) {
  test::TempDir dir;
  const std::string stage = dir.Sub("stage");
  std::string out;
  ASSERT_EQ(test::RunCommand({"cmake", "--install", PEERSTACK_BUILD_DIR, "--prefix", stage}, &out),
            0)
      << out;
  for (const char* f : {"bin/peerstack", "share/peerstack/plugins/libhello.so",
                        "share/peerstack/plugins/libblog.so", "share/peerstack/front/index.html",
                        "lib/systemd/system/peerstack.service", "include/peerstack/plugin.h",
                        "include/peerstack/plugin.hpp",
                        "lib/cmake/PeerstackPluginSDK/PeerstackPluginSDKConfig.cmake",
                        "lib/pkgconfig/peerstack-plugin.pc", "share/man/man1/peerstack.1"}) {
    EXPECT_FALSE(test::ReadFileOrEmpty(stage + "/" + f).empty()) << f;
  }
  // The man page has every command's section (help2man, from `peerstack help --all`).
  const std::string man = test::ReadFileOrEmpty(stage + "/share/man/man1/peerstack.1");
  for (const char* section : {".SH \"PEERSTACK RUN\"", ".SH \"PEERSTACK RELEASE CREATE\"",
                              "PEERSTACK_ADMIN_PORT", ".SH \"PEERSTACK INIT\""}) {
    EXPECT_NE(man.find(section), std::string::npos) << section;
  }
  const std::string unit = test::ReadFileOrEmpty(stage + "/lib/systemd/system/peerstack.service");
  EXPECT_NE(unit.find("ExecStart=" + stage +
                      "/bin/peerstack run --data-dir ${STATE_DIRECTORY} --plugins " + stage +
                      "/share/peerstack/plugins"),
            std::string::npos)
      << unit;
  for (const char* line :
       {"Type=notify", "StateDirectory=peerstack", "DynamicUser=yes", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies="}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
  // The staged daemon serves the staged app.
  const std::string data = dir.Sub("data");
  test::Process node(
      stage + "/bin/peerstack",
      {"run", "--data-dir", data, "--port", "0", "--admin-port", "0", "--bind", "127.0.0.1",
       "--tunnel", "direct", "--plugins", stage + "/share/peerstack/plugins", "--front",
       stage + "/share/peerstack/front"},
      dir.Sub("node.log"));
  ASSERT_TRUE(
      test::WaitFor([&] { return !test::ReadFileOrEmpty(data + "/ports.json").empty(); }, 20s))
      << test::ReadFileOrEmpty(dir.Sub("node.log"));
  const json::Value ports = *json::Parse(test::ReadFileOrEmpty(data + "/ports.json"));
  const uint16_t port = static_cast<uint16_t>(*ports.find_int("public"));
  EXPECT_TRUE(test::WaitFor(
      [&] {
        auto r = test::HttpGet(port, "/api/hello/");
        return r && r->status == 200;
      },
      20s))
      << test::ReadFileOrEmpty(dir.Sub("node.log"));
  EXPECT_EQ(test::HttpGet(port, "/")->status, 200);
  EXPECT_EQ(node.Stop(SIGTERM, 10s), 0);
  // A C plugin compiles with the pkg-config file alone.
  ASSERT_EQ(test::RunCommand(
                {"sh", "-c",
                 "cc -shared -fPIC -o " + dir.Sub("libhello.so") + " $(PKG_CONFIG_PATH=" + stage +
                     "/lib/pkgconfig pkg-config --cflags peerstack-plugin) " +
                     PEERSTACK_SOURCE_DIR + "/plugins/hello/hello.c"},
                &out),
            0)
      << out;
  std::string analyze;
  if (test::RunCommand({"sh", "-c", "command -v systemd-analyze"}, &analyze) != 0) {
    GTEST_SKIP() << "systemd-analyze is not installed: the unit file was not verified";
  }
  EXPECT_EQ(
      test::RunCommand(
          {"systemd-analyze", "verify", stage + "/lib/systemd/system/peerstack.service"}, &out),
      0)
      << out;
}

TEST(Cli, HelpVersionAndBadFlags) {
  std::string out;
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "--version"}, &out), 0);
  EXPECT_NE(out.find("peerstack 0."), std::string::npos);
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "--help"}, &out), 0);
  EXPECT_NE(out.find("status"), std::string::npos);
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "run", "--help"}, &out), 0);
  EXPECT_NE(out.find("--admin-port"), std::string::npos);
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "run", "--port", "x"}, &out), 2);
  EXPECT_NE(out.find("--port"), std::string::npos);
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "frobnicate"}, &out), 2);
  EXPECT_NE(out.find("unknown command 'frobnicate'"), std::string::npos) << out;
  // -h, `help CMD` and `CMD --help` are the same text; `release` alone is bad usage.
  std::string dash_h, help_cmd;
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "release", "create", "-h"}, &dash_h), 0);
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "help", "release", "create"}, &help_cmd), 0);
  EXPECT_EQ(dash_h, help_cmd);
  EXPECT_NE(dash_h.find("--max-error-percent P"), std::string::npos) << dash_h;
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "release"}, &out), 2);
  EXPECT_NE(out.find("needs a command: create, sign, publish, status, rotate"), std::string::npos)
      << out;
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "invite", "--expires", "91d"}, &out), 2);
  EXPECT_NE(out.find("--expires: must be a duration 1s-90d"), std::string::npos) << out;
  test::TempDir empty;
  EXPECT_EQ(test::RunCommand({test::PeerstackBinary(), "status", "--data-dir", empty.path()}, &out),
            1);
  EXPECT_NE(out.find("no node is running"), std::string::npos);
}

}  // namespace
}  // namespace peerstack
