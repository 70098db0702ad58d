// GET /download (core/bundle/): a friend downloads one file from a member with a plain HTTP
// client, runs it, and becomes a member serving the same app; a damaged or cut-short file,
// or one whose card names other publisher keys, refuses to run and writes nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "bundle/bundle.h"
#include "http/client.h"
#include "json/json.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::TestNode;

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.Sub("app/plugins"));
    std::filesystem::create_directories(dir_.Sub("app/front"));
    test::CopyFile(test::BuiltPlugin("hello"), dir_.Sub("app/plugins/libhello.so"));
    test::WriteFile(dir_.Sub("app/front/index.html"), "<h1>the app</h1>");
    test::WriteFile(dir_.Sub("app/front/app.js"), "// v0\n");
  }
  TestNode& Start(const std::string& name, const std::string& join = "") {
    ::mkdir(dir_.Sub(name).c_str(), 0755);
    std::vector<std::string> args{"--plugins", dir_.Sub("app/plugins"), "--front", dir_.Sub("app/front"), "--tunnel", "direct"};
    if (!join.empty()) args.insert(args.end(), {"--join", join});
    auto node = std::make_unique<TestNode>(dir_.Sub(name), args);
    std::string why;
    EXPECT_TRUE(node->Start(&why)) << why;
    return *(nodes_[name] = std::move(node));
  }
  std::string Url(const std::string& name) { return "http://127.0.0.1:" + std::to_string(nodes_.at(name)->public_port()); }
  int64_t Members(const std::string& name) {
    const json::Value st = nodes_.at(name)->Status();
    return st.is_object() ? *st.find("network")->find_int("members") : -1;
  }
  // Downloads name's /download into path (mode 0755).
  void Download(const std::string& name, const std::string& path) {
    http::ClientRequest req;
    req.url = Url(name) + "/download";
    req.max_response_bytes = 1u << 30;
    req.timeout = 60s;
    auto r = http::Fetch(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
    test::WriteFile(path, r->body);
    ::chmod(path.c_str(), 0755);
  }

  test::TempDir dir_;
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

TEST_F(DownloadTest, AFriendRunsTheDownloadedFileAndBecomesAMemberServingTheSameApp) {
  Start("a");
  Start("b", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 2 && Members("b") == 2; }, 30s));
  const std::string file = dir_.Sub("blog.run");
  Download("b", file);
  ASSERT_TRUE(bundle::HasPayload(file));
  auto contents = bundle::Read(file);
  ASSERT_TRUE(contents.ok()) << contents.status().ToString();
  EXPECT_EQ(contents->card.network, *nodes_["a"]->Status().find("network")->find_string("id"));
  EXPECT_EQ(contents->files.size(), 3u);

  // Run it as a friend would (its own data dir, a free port), nothing else given.
  const std::string data = dir_.Sub("friend");
  test::Process friend_node(file, {"--data-dir", data, "--port", "0", "--admin-port", "0", "--bind", "127.0.0.1", "--tunnel", "direct"},
                            dir_.Sub("friend.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 3; }, 30s)) << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  const std::string log = test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  EXPECT_NE(log.find("compare this fingerprint"), std::string::npos) << log;
  EXPECT_NE(log.find("all verified"), std::string::npos) << log;
  auto ports = json::Parse(test::ReadFileOrEmpty(data + "/ports.json"));
  ASSERT_TRUE(ports.ok()) << log;
  const auto port = static_cast<uint16_t>(*ports->find_int("public"));
  // Admitted by the others; it serves the app once it installed it (at most a tick later).
  ASSERT_TRUE(test::WaitFor(
      [&] {
        test::RawConnection probe(port);
        if (!probe.Send("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n")) return false;
        auto r = probe.ReadResponse();
        return r && r->status == 200 && r->body == "// v0\n";
      },
      10s))
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  test::RawConnection c(port);
  ASSERT_TRUE(c.Send("GET /api/hello/ HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto hello = c.ReadResponse();
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->status, 200);
  // Run again: it reuses its data dir (and needs no join).
  ASSERT_TRUE(friend_node.Stop(SIGTERM, 10s).has_value());
  test::Process again(file, {"--data-dir", data, "--port", "0", "--admin-port", "0", "--bind", "127.0.0.1", "--tunnel", "direct"},
                      dir_.Sub("again.log"));
  ASSERT_TRUE(test::WaitFor([&] { return !test::ReadFileOrEmpty(data + "/ports.json").empty(); }, 20s));
  EXPECT_EQ(test::ReadFileOrEmpty(dir_.Sub("again.log")).find("joining through"), std::string::npos);
  EXPECT_EQ(Members("a"), 3);
}

TEST_F(DownloadTest, ADamagedOrForeignFileRefusesToRunAndWritesNothing) {
  Start("a");
  const std::string good = dir_.Sub("good.run");
  Download("a", good);
  const std::string bytes = test::ReadFileOrEmpty(good);
  auto runtime = bundle::RuntimeOf(good);
  ASSERT_TRUE(runtime.ok());
  const size_t rt = runtime->size();
  ASSERT_GT(bytes.size(), rt + bundle::kTrailerSize);
  auto flipped = [&](size_t at) {
    std::string b = bytes;
    b[at] ^= 0x01;
    return b;
  };
  // A card naming other publisher keys, its hashes made right.
  auto contents = bundle::Read(good);
  ASSERT_TRUE(contents.ok()) << contents.status().ToString();
  bundle::Contents foreign = *contents;
  foreign.card.publishers = {std::string(64, 'e')};
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"runtime", {flipped(rt - 100), "program part does not match"}},  // in the section headers
      {"payload", {flipped(rt + 10), "payload does not match its hash"}},
      {"trailer", {flipped(bytes.size() - 5), "payload does not match its hash"}},
      {"truncated", {bytes.substr(0, bytes.size() - 1000), "no payload trailer"}},
      {"foreign card", {bundle::Build(*runtime, foreign), "publisher keys are not the ones its genesis names"}},
  };
  for (const auto& [what, c] : cases) {
    SCOPED_TRACE(what);
    const std::string file = dir_.Sub("bad.run"), data = dir_.Sub("bad-data");
    test::WriteFile(file, c.first);
    ::chmod(file.c_str(), 0755);
    std::string out;
    EXPECT_EQ(test::RunCommand({file, "--data-dir", data}, &out), 3) << out;
    EXPECT_NE(out.find(c.second), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(data)) << "nothing written";
  }
  std::string help;
  EXPECT_EQ(test::RunCommand({good, "--help"}, &help), 0);
  EXPECT_NE(help.find("carries an app and the card of the network"), std::string::npos) << help;
}

}  // namespace
}  // namespace peerstack
