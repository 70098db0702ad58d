// Releases that travel (docs/releases.md), with real processes on loopback and the real
// commands a publisher runs (`peerstack keygen`, `release create/sign/publish/status`):
// a rollout under load without a failed request, a node that was offline catching up, a
// joiner whose code is behind installing the release by itself, peers that serve tampered or
// stalled blobs, the ledger's refusals (threshold, non-publishers, another network, rollback),
// an expired release, a release that does not start, a publisher-set rotation, and a staged
// rollout that halts and sends its first stage back.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "json/json.h"
#include "store/blob_store.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::TestNode;

class ReleaseTest : public ::testing::Test {
 protected:
  std::string MakeApp(const std::string& name, const std::map<std::string, std::string>& plugins,
                      const std::map<std::string, std::string>& front) {
    return test::MakeApp(dir_.Sub("apps/" + name), plugins, front);
  }
  std::string V0() {
    return MakeApp("v0", {{"libhello.so", test::BuiltPlugin("hello")}},
                   {{"index.html", "<h1>v0</h1>"}, {"app.js", "// v0\n"}});
  }

  TestNode& Start(const std::string& name, const std::string& app, const std::string& join = "",
                  std::vector<std::string> extra = {},
                  std::map<std::string, std::string> env = {}) {
    if (!ports_.count(name)) ports_[name] = test::FreePort();
    ::mkdir(dir_.Sub(name).c_str(), 0755);
    extra.insert(extra.begin(), {"--tunnel", "direct"});
    auto node = std::make_unique<TestNode>(
        dir_.Sub(name), test::NodeArgs(ports_[name], app + "/plugins", app + "/front", join, extra),
        env);
    std::string why;
    EXPECT_TRUE(node->Start(&why)) << why;
    auto& slot = nodes_[name];
    slot = std::move(node);
    return *slot;
  }
  std::string Url(const std::string& name) {
    return "http://127.0.0.1:" + std::to_string(ports_.at(name));
  }
  std::string DataDir(const std::string& name) { return nodes_.at(name)->data_dir(); }
  std::string Key(const std::string& name) { return DataDir(name) + "/node.key"; }

  int64_t Members(const std::string& name) {
    const json::Value st = nodes_.at(name)->Status();
    const json::Value* n = st.is_object() ? st.find("network") : nullptr;
    return n && n->find_int("members") ? *n->find_int("members") : -1;
  }
  bool AllMembers(const std::vector<std::string>& names) {
    for (const auto& n : names) {
      if (Members(n) != static_cast<int64_t>(names.size())) return false;
    }
    return true;
  }
  // The body the node's public listener answers for path ("" when not 200).
  std::string Get(const std::string& name, const std::string& path) {
    auto r = nodes_.at(name)->Request("GET", path);
    return r && r->status == 200 ? r->body : "";
  }
  json::Value Release(const std::string& name) {
    const json::Value st = nodes_.at(name)->Status();
    return st.is_object() ? *st.find("release") : json::Value(nullptr);
  }
  int64_t RunningVersion(const std::string& name) {
    const json::Value r = Release(name);
    const json::Value* run = r.is_object() ? r.find("running") : nullptr;
    return run && run->is_object() ? *run->find_int("version") : -1;
  }

  int Cli(const std::vector<std::string>& args, std::string* out) { return test::Cli(args, out); }
  // Publishes app through node `at` (test::PublishApp); the exit status, its output in *out.
  int Publish(const std::string& app, const std::string& at, const std::vector<std::string>& keys,
              std::vector<std::string> create_args = {}, std::string* out = nullptr) {
    std::string local;
    const std::string file = dir_.Sub("release-" + std::to_string(++releases_) + ".json");
    return test::PublishApp(app, DataDir(at), keys, file, create_args, out ? out : &local);
  }

  test::TempDir dir_;
  std::map<std::string, uint16_t> ports_;
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
  int releases_ = 0;
};

TEST_F(ReleaseTest,
       APublishedReleaseRollsOutUnderLoadWithoutAFailedRequestAndAnOfflineNodeCatchesUp) {
  const std::string v0 = V0();
  Start("a", v0);
  Start("b", v0, Url("a"));
  Start("c", v0, Url("a"));
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return AllMembers({"a", "b", "c"});
      },
      30s))
      << nodes_["c"]->Log();
  ASSERT_EQ(nodes_["c"]->Stop(SIGTERM), 0);  // offline during the release

  // Load on a and b: plugin calls and frontend files, counting every answer that is not 200.
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0}, failed{0};
  std::vector<std::thread> load;
  for (const char* n : {"a", "b"}) {
    for (const char* path : {"/api/hello/", "/app.js"}) {
      load.emplace_back([&, port = nodes_[n]->public_port(), path] {
        const auto end = std::chrono::steady_clock::now() + 40s;  // bounded even if the test fails
        while (!stop && std::chrono::steady_clock::now() < end) {
          test::RawConnection c(port);
          const bool sent = c.Send(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
          auto r = sent ? c.ReadResponse(5s) : std::nullopt;
          ++requests;
          if (!r || r->status != 200) ++failed;
        }
      });
    }
  }
  ASSERT_TRUE(test::WaitFor([&] { return requests > 40; }, 10s));
  const std::string v1 = MakeApp(
      "v1",
      {{"libhello.so", test::BuiltPlugin("hello")}, {"libgood.so", test::FixturePlugin("good")}},
      {{"index.html", "<h1>v1</h1>"}, {"app.js", "// v1\n"}, {"assets/new.css", "b{}"}});
  std::string out;
  ASSERT_EQ(Publish(v1, "a", {Key("a")}, {}, &out), 0) << out;
  EXPECT_NE(out.find("published release 1"), std::string::npos) << out;
  ASSERT_TRUE(test::WaitFor(
      [&] { return Get("a", "/app.js") == "// v1\n" && Get("b", "/app.js") == "// v1\n"; }, 20s))
      << nodes_["b"]->Log();
  const int before = requests;
  ASSERT_TRUE(test::WaitFor([&] { return requests > before + 40; }, 10s));
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(failed, 0) << "of " << requests << " requests during the switch";
  for (const char* n : {"a", "b"}) {
    EXPECT_EQ(Get(n, "/assets/new.css"), "b{}");
    EXPECT_NE(Get(n, "/api/good/"), "") << "the new plugin answers on " << n;
    EXPECT_EQ(RunningVersion(n), 1);
  }
  // b fetched the files it lacked from a (the release's author), each verified.
  const json::Value b_release = Release("b");
  const json::Value* fetch = b_release.find("fetch");
  EXPECT_GE(*fetch->find_int("fetched"), 3);  // libgood.so, index.html, app.js, new.css
  EXPECT_EQ(*fetch->find_int("refused"), 0);

  // c comes back: it learns of the release from the ledger and catches up by itself.
  std::string why;
  ASSERT_TRUE(nodes_["c"]->Start(&why)) << why;
  ASSERT_TRUE(test::WaitFor([&] { return Get("c", "/app.js") == "// v1\n"; }, 20s))
      << nodes_["c"]->Log();
  // Everyone reports healthy: /nodes shows each member's release, `release status` says so.
  ASSERT_TRUE(test::WaitFor(
      [&] {
        const json::Value nodes = nodes_["a"]->GetJson("/nodes");
        if (!nodes.is_object()) return false;
        int on_1 = 0;
        for (const auto& n : nodes.find("nodes")->as_array())
          on_1 += n.find_int("release") && *n.find_int("release") == 1;
        return on_1 == 3;
      },
      20s));
  ASSERT_EQ(Cli({"release", "status", "--data-dir", DataDir("a")}, &out), 0) << out;
  EXPECT_NE(out.find("release 1: 3 healthy, 0 failed"), std::string::npos) << out;
}

TEST_F(ReleaseTest, AFrozenMemberStallsNoOneElsesSwitchAndCatchesUpWhenItThaws) {
  const std::string v0 = V0();
  Start("a", v0);
  Start("b", v0, Url("a"));
  Start("c", v0, Url("a"));
  Start("d", v0, Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return AllMembers({"a", "b", "c", "d"}); }, 30s));
  // c stops answering (a laptop put to sleep): its TCP port still accepts, nothing answers.
  ASSERT_EQ(::kill(nodes_["c"]->process()->pid(), SIGSTOP), 0);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }
  } thaw{nodes_["c"]->process()->pid()};
  const std::string v1 =
      MakeApp("v1", {{"libhello.so", test::BuiltPlugin("hello")}},
              {{"index.html", "<h1>v1</h1>"}, {"app.js", std::string(50000, 'j')}});
  std::string out;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Publish(v1, "a", {Key("a")}, {}, &out), 0) << out;
  for (const char* n : {"a", "b", "d"}) {
    ASSERT_TRUE(test::WaitFor([&] { return Get(n, "/index.html") == "<h1>v1</h1>"; }, 20s))
        << n << nodes_[n]->Log();
  }
  // Well inside the fetch deadline a frozen peer could cost (2 s + size / 256 KiB/s).
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  ::kill(nodes_["c"]->process()->pid(), SIGCONT);
  ASSERT_TRUE(test::WaitFor([&] { return Get("c", "/index.html") == "<h1>v1</h1>"; }, 30s))
      << nodes_["c"]->Log();
  EXPECT_EQ(Get("c", "/app.js"), std::string(50000, 'j'));
}

TEST_F(ReleaseTest, AJoinerWhoseCodeIsBehindInstallsTheReleaseItIsToldAndJoins) {
  const std::string v0 = V0();
  Start("a", v0);
  const std::string v1 =
      MakeApp("v1", {{"libgood.so", test::FixturePlugin("good")}}, {{"index.html", "v1"}});
  const std::string v2 = MakeApp("v2", {{"libgood.so", test::FixturePlugin("good")}},
                                 {{"index.html", "v2"}, {"app.js", "2"}});
  std::string out;
  ASSERT_EQ(Publish(v1, "a", {Key("a")}, {}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor([&] { return RunningVersion("a") == 1; }, 20s));
  ASSERT_EQ(Publish(v2, "a", {Key("a")}, {}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor([&] { return RunningVersion("a") == 2; }, 20s));
  // x has the files of release 0, which the network no longer accepts (only 2 and 1).
  Start("x", v0, Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("x") == 2 && Members("a") == 2; }, 30s))
      << nodes_["x"]->Log();
  EXPECT_EQ(RunningVersion("x"), 2);
  EXPECT_EQ(Get("x", "/app.js"), "2");
  const std::string log = nodes_["x"]->Log();
  EXPECT_NE(log.find("run release 2"), std::string::npos) << log;
  EXPECT_NE(log.find("now serving release 2"), std::string::npos) << log;
  EXPECT_EQ(Get("x", "/api/hello/"), "") << "release 2 has no hello plugin";
}

TEST_F(ReleaseTest, PeersThatServeTamperedOrStalledBlobsAreDroppedForTheNext) {
  const std::string v0 = V0();
  Start("a", v0, "", {}, {{"PEERSTACK_FAULT_BLOBS", "flip"}});  // the publisher's node lies
  Start("b", v0, Url("a"), {}, {{"PEERSTACK_FAULT_BLOBS", "stall"}});
  Start("c", v0, Url("a"));
  Start("d", v0, Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return AllMembers({"a", "b", "c", "d"}); }, 30s));
  const std::string v1 =
      MakeApp("v1", {{"libhello.so", test::BuiltPlugin("hello")}},
              {{"index.html", "<h1>v1</h1>"}, {"app.js", std::string(100000, 'v')}});
  // c has the bytes already (an honest mirror): put them in its store.
  store::BlobStore c_blobs(DataDir("c") + "/blobs");
  for (const char* f : {"front/index.html", "front/app.js", "plugins/libhello.so"}) {
    ASSERT_TRUE(c_blobs.Put(test::ReadFileOrEmpty(v1 + "/" + f)).ok());
  }
  std::string out;
  ASSERT_EQ(Publish(v1, "a", {Key("a")}, {}, &out), 0) << out;
  for (const char* n : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(test::WaitFor([&] { return Get(n, "/index.html") == "<h1>v1</h1>"; }, 40s))
        << n << nodes_[n]->Log();
  }
  // b and d asked the author first: its bytes did not hash to the manifest's, and nothing of
  // them was served; what they serve is the real file.
  for (const char* n : {"b", "d"}) {
    const json::Value release = Release(n);
    const json::Value* fetch = release.find("fetch");
    EXPECT_GE(*fetch->find_int("refused"), 1) << n;
    EXPECT_NE(nodes_[n]->Log().find("do not hash to the listed sha256"), std::string::npos) << n;
    EXPECT_EQ(Get(n, "/app.js"), std::string(100000, 'v'));
  }
}

TEST_F(ReleaseTest, TheLedgerRefusesWhatPublishersDidNotSignAndTheNodeKeepsServing) {
  std::string out;
  std::vector<std::string> pub;
  for (int i = 1; i <= 4; ++i) {
    const std::string k = dir_.Sub("k" + std::to_string(i) + ".key");
    ASSERT_EQ(Cli({"keygen", k}, &out), 0) << out;
    struct stat st {};
    ASSERT_EQ(::stat(k.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    pub.push_back(k);
  }
  EXPECT_NE(Cli({"keygen", pub[0]}, &out), 0) << "never overwrites a key";
  const std::string v0 = V0();
  Start("a", v0, "",
        {"--publisher-key", pub[0] + "," + pub[1] + "," + pub[2], "--publisher-threshold", "2"});
  const std::string v1 =
      MakeApp("v1", {{"libhello.so", test::BuiltPlugin("hello")}}, {{"index.html", "v1"}});
  EXPECT_NE(Publish(v1, "a", {pub[0]}, {}, &out), 0);
  EXPECT_NE(out.find("needs 2"), std::string::npos) << out;
  EXPECT_NE(Publish(v1, "a", {pub[0], pub[3]}, {}, &out), 0);
  EXPECT_NE(out.find("not a publisher"), std::string::npos) << out;
  EXPECT_NE(Publish(v1, "a", {pub[0], Key("a")}, {}, &out), 0)
      << "the node's key is no publisher here";
  // The same publishers' signatures over a manifest for another network.
  EXPECT_NE(Publish(v1, "a", {pub[0], pub[1]},
                    {"--network", std::string(64, 'e'), "--version", "1"}, &out),
            0);
  EXPECT_NE(out.find("for network"), std::string::npos) << out;
  EXPECT_EQ(Get("a", "/index.html"), "<h1>v0</h1>") << "nothing refused changed what runs";

  ASSERT_EQ(Publish(v1, "a", {pub[0], pub[2]}, {}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor([&] { return Get("a", "/index.html") == "v1"; }, 20s));
  // Rollback: version 1 again, or lower.
  EXPECT_NE(Publish(v1, "a", {pub[0], pub[1]}, {"--version", "1"}, &out), 0);
  EXPECT_NE(out.find("no rollback"), std::string::npos) << out;

  // Expired: the node says so and keeps serving it.
  const std::string v2 =
      MakeApp("v2", {{"libhello.so", test::BuiltPlugin("hello")}}, {{"index.html", "v2"}});
  ASSERT_EQ(Publish(v2, "a", {pub[0], pub[1]}, {"--expires", "1s"}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor(
      [&] {
        const json::Value r = Release("a");
        return r.is_object() && r.find("expired")->as_bool() && Get("a", "/index.html") == "v2";
      },
      20s));
  EXPECT_EQ(*Release("a").find_string("phase"), "expired");

  // A release listing a "plugin" that is not one: it does not start, the node reports the
  // failure and keeps serving release 2.
  const std::string v3 =
      MakeApp("v3", {{"libhello.so", test::BuiltPlugin("hello")}}, {{"index.html", "v3"}});
  test::WriteFile(v3 + "/plugins/libnotes.so", "not a shared library\n");
  ASSERT_EQ(Publish(v3, "a", {pub[1], pub[2]}, {}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor([&] { return !Release("a").find("failed")->as_array().empty(); }, 20s));
  EXPECT_NE(nodes_["a"]->Log().find("does not start"), std::string::npos);
  EXPECT_NE(nodes_["a"]->Log().find("not a shared library"), std::string::npos);
  EXPECT_EQ(Get("a", "/index.html"), "v2");
  ASSERT_EQ(Cli({"release", "status", "--data-dir", DataDir("a")}, &out), 0);
  EXPECT_NE(out.find("HALTED"), std::string::npos) << out;

  // Rotation after a lost key: the current threshold signs the change to {k4}, 1 of 1.
  const std::string rot = dir_.Sub("rotate.json");
  ASSERT_EQ(Cli({"release", "rotate", "--publisher-key", pub[3], "--threshold", "1", "--data-dir",
                 DataDir("a"), "-o", rot},
                &out),
            0)
      << out;
  ASSERT_EQ(Cli({"release", "sign", rot, "--key", pub[3]}, &out), 0);
  EXPECT_NE(Cli({"release", "publish", rot, "--data-dir", DataDir("a")}, &out), 0)
      << "the new key alone cannot";
  EXPECT_NE(out.find("not a publisher"), std::string::npos) << out;
  ASSERT_EQ(Cli({"release", "rotate", "--publisher-key", pub[3], "--threshold", "1", "--data-dir",
                 DataDir("a"), "-o", rot},
                &out),
            0)
      << out;
  ASSERT_EQ(Cli({"release", "sign", rot, "--key", pub[0]}, &out), 0);
  ASSERT_EQ(Cli({"release", "sign", rot, "--key", pub[1]}, &out), 0);
  ASSERT_EQ(Cli({"release", "publish", rot, "--data-dir", DataDir("a")}, &out), 0) << out;
  const std::string v4 =
      MakeApp("v4", {{"libhello.so", test::BuiltPlugin("hello")}}, {{"index.html", "v4"}});
  EXPECT_NE(Publish(v4, "a", {pub[0], pub[1]}, {}, &out), 0) << "the old keys sign nothing now";
  ASSERT_EQ(Publish(v4, "a", {pub[3]}, {}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor([&] { return Get("a", "/index.html") == "v4"; }, 20s));
}

TEST_F(ReleaseTest, AStagedRolloutHaltsOnFailuresAndItsFirstStageGoesBack) {
  const std::string v0 = V0();
  const std::vector<std::string> names{"a", "b", "c", "d", "e"};
  Start("a", v0);
  for (size_t i = 1; i < names.size(); ++i) Start(names[i], v0, Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return AllMembers(names); }, 40s));
  // Release 1's plugin fails every call: the first stage sees it under traffic.
  const std::string v1 = MakeApp("v1",
                                 {{"libhello.so", test::BuiltPlugin("hello")},
                                  {"liberrors.so", test::FixturePlugin("errors")}},
                                 {{"index.html", "<h1>v1</h1>"}, {"app.js", "// v0\n"}});
  std::string out;
  ASSERT_EQ(
      Publish(v1, "a", {Key("a")}, {"--stages", "2", "--soak", "60s", "--max-failures", "1"}, &out),
      0)
      << out;
  // The stages, as every node computes them.
  std::map<std::string, int64_t> stage_of_key;
  ASSERT_TRUE(test::WaitFor(
      [&] {
        const json::Value r = nodes_["a"]->GetJson("/releases", true);
        const json::Value* nodes = r.is_object() ? r.find("nodes") : nullptr;
        if (!nodes || nodes->as_array().size() != names.size()) return false;
        for (const auto& n : nodes->as_array())
          stage_of_key[*n.find_string("key")] = *n.find_int("stage");
        return true;
      },
      10s));
  std::map<std::string, int64_t> stage;
  int64_t first = 2;
  for (const auto& n : names) {
    stage[n] = stage_of_key.at(*nodes_[n]->Status().find("node")->find_string("public_key"));
    first = std::min(first, stage[n]);
  }
  // Traffic on the nodes that switched, until one of them gives up on release 1.
  ASSERT_TRUE(test::WaitFor(
      [&] {
        for (const auto& n : names) {
          if (stage[n] == first) {
            for (int i = 0; i < 5; ++i) (void)nodes_[n]->Request("GET", "/api/errors/");
          }
        }
        const json::Value r = nodes_["a"]->GetJson("/releases", true);
        const json::Value* ro = r.is_object() ? r.find("rollout") : nullptr;
        return ro && ro->is_object() && ro->find("halted")->as_bool();
      },
      40s));
  // Every node ends on release 0; the later stage never switched at all.
  for (const auto& n : names) {
    ASSERT_TRUE(test::WaitFor(
        [&] {
          auto r = nodes_[n]->Request("GET", "/api/errors/");
          return RunningVersion(n) == 0 && r && r->status == 404;
        },
        20s))
        << n << nodes_[n]->Log();
    if (stage[n] != first) {
      EXPECT_EQ(nodes_[n]->Log().find("switching to release 1"), std::string::npos) << n;
    }
  }
  const std::string log = [&] {
    std::string all;
    for (const auto& n : names) all += nodes_[n]->Log();
    return all;
  }();
  EXPECT_NE(log.find("plugin calls failed after the switch"), std::string::npos);
  ASSERT_EQ(Cli({"release", "status", "--data-dir", DataDir("b")}, &out), 0);
  EXPECT_NE(out.find("HALTED"), std::string::npos) << out;

  // The way out: the old files again, at a higher version. Nothing is reloaded; every member
  // reports it healthy and the rollout finishes.
  ASSERT_EQ(Publish(v0, "a", {Key("a")}, {}, &out), 0) << out;
  ASSERT_TRUE(test::WaitFor(
      [&] {
        std::string st;
        return Cli({"release", "status", "--data-dir", DataDir("a")}, &st) == 0 &&
               st.find("release 2: 5 healthy, 0 failed") != std::string::npos;
      },
      20s))
      << nodes_["a"]->Log();
  for (const auto& n : names) EXPECT_EQ(RunningVersion(n), 2) << n;
}

TEST_F(ReleaseTest, ANodeThatKeepsDyingWhileStartingAReleaseGoesBackToThePreviousOne) {
  const std::string v0 = V0();
  Start("a", v0);
  const std::string v1 = MakeApp("v1",
                                 {{"libhello.so", test::BuiltPlugin("hello")},
                                  {"libaborts.so", test::FixturePlugin("aborts")}},
                                 {{"index.html", "v1"}});
  std::string out;
  ASSERT_EQ(Publish(v1, "a", {Key("a")}, {}, &out), 0) << out;
  // Its init kills the process; a supervisor (this test, systemd) starts it again.
  int crashes = 0;
  for (int start = 0; start < 6; ++start) {
    ASSERT_TRUE(test::WaitFor(
        [&] {
          if (!nodes_["a"]->process()->running()) return true;
          const json::Value r = Release("a");
          return RunningVersion("a") == 0 && r.is_object() && !r.find("failed")->as_array().empty();
        },
        20s));
    if (nodes_["a"]->process()->running()) break;
    ++crashes;
    (void)nodes_["a"]->Start();  // false while it dies before it is ready
  }
  EXPECT_EQ(crashes, 3);
  ASSERT_TRUE(nodes_["a"]->process()->running());
  EXPECT_EQ(Get("a", "/index.html"), "<h1>v0</h1>");
  EXPECT_NE(nodes_["a"]->Log().find("restarted 3 times while starting it"), std::string::npos);
}

}  // namespace
}  // namespace peerstack
