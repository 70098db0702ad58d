// The plugin host in the real binary: example plugins, every misbehaving fixture, timeouts,
// private routes, dev-mode loading and hot swap, and a plugin built out of tree against the
// installed SDK.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "crypto/sha256.h"
#include "protocol/release.h"
#include "store/key_file.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::TestNode;

class PluginNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir_.Sub("plugins").c_str(), 0755);
    ::mkdir(dir_.Sub("front").c_str(), 0755);
    test::WriteFile(dir_.Sub("front/index.html"), "<!doctype html><title>t</title>");
  }
  std::string Plugins(const std::string& file = "") const {
    return file.empty() ? dir_.Sub("plugins") : dir_.Sub("plugins/" + file);
  }
  // The SDK of this build installed into dir_/name, as a user would install it.
  ::testing::AssertionResult InstallSdk(const std::string& name, std::string* prefix) {
    std::string out;
    *prefix = dir_.Sub(name);
    if (test::RunCommand(
            {"cmake", "--install", PEERSTACK_BUILD_DIR, "--prefix", *prefix, "--component", "sdk"},
            &out) != 0) {
      return ::testing::AssertionFailure() << out;
    }
    return ::testing::AssertionSuccess();
  }
  // Configures and builds the out-of-tree project in src (into src/build) against the SDK in
  // prefix.
  static ::testing::AssertionResult BuildAgainst(const std::string& src,
                                                 const std::string& prefix) {
    std::string out;
    if (test::RunCommand({"cmake", "-S", src, "-B", src + "/build", "-DCMAKE_PREFIX_PATH=" + prefix,
                          "-DCMAKE_BUILD_TYPE=Release"},
                         &out) != 0 ||
        test::RunCommand({"cmake", "--build", src + "/build"}, &out) != 0) {
      return ::testing::AssertionFailure() << out;
    }
    return ::testing::AssertionSuccess();
  }
  void StartNode(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--front", dir_.Sub("front"), "--plugins", Plugins()};
    args.insert(args.end(), extra.begin(), extra.end());
    node_ = std::make_unique<TestNode>(dir_.path(), args);
    std::string why;
    ASSERT_TRUE(node_->Start(&why)) << why;
  }
  std::map<std::string, std::string> FailedPlugins() {
    std::map<std::string, std::string> out;
    const json::Value st = node_->Status();
    const json::Value* failed = st.is_object() ? st.find("plugins")->find("failed") : nullptr;
    if (!failed) return out;
    for (const auto& f : failed->as_array()) out[*f.find_string("file")] = *f.find_string("reason");
    return out;
  }
  std::string LoadedVersion(const std::string& name) {
    const json::Value st = node_->Status();
    if (!st.is_object()) return "";
    for (const auto& p : st.find("plugins")->find("loaded")->as_array()) {
      if (*p.find_string("name") == name) return *p.find_string("version");
    }
    return "";
  }

  test::TempDir dir_;
  std::unique_ptr<TestNode> node_;
};

TEST_F(PluginNodeTest, ServesHelloAndABlogWhosePostsSurviveARestart) {
  test::CopyFile(test::BuiltPlugin("hello"), Plugins("libhello.so"));
  test::CopyFile(test::BuiltPlugin("blog"), Plugins("libblog.so"));
  StartNode();
  const json::Value hello = node_->GetJson("/api/hello/");
  ASSERT_TRUE(hello.is_object());
  EXPECT_EQ(*hello.find_string("greeting"), "hello");
  EXPECT_EQ(*hello.find_string("node"), *node_->Status().find("node")->find_string("id"));
  EXPECT_EQ(*hello.find_string("version"), "1.0.0");
  EXPECT_EQ(node_->Request("GET", "/api/hello")->status, 200);

  auto created = node_->Request("POST", "/api/blog/posts",
                                R"({"title":"First \"post\"","body":"Hello, network"})", true);
  ASSERT_TRUE(created.has_value());
  ASSERT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(created->headers["location"], "/api/blog/posts/1");
  ASSERT_EQ(
      node_->Request("POST", "/api/blog/posts", R"({"title":"Second","body":""})", true)->status,
      201);
  auto updated = node_->Request("PUT", "/api/blog/posts/2", R"({"title":"2nd","body":"b"})", true);
  EXPECT_EQ(updated->status, 200);
  EXPECT_EQ(node_->Request("POST", "/api/blog/posts", R"({"title":""})", true)->status, 400);
  EXPECT_EQ(node_->Request("POST", "/api/blog/posts", "not json", true)->status, 400);
  EXPECT_EQ(node_->Request("GET", "/api/blog/posts/99")->status, 404);
  EXPECT_EQ(node_->Request("GET", "/api/blog/posts/abc")->status, 404);

  ASSERT_EQ(node_->Stop(SIGTERM), 0);
  StartNode();
  const json::Value posts = node_->GetJson("/api/blog/posts");
  ASSERT_TRUE(posts.is_object());
  const auto& list = posts.find("posts")->as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(*list[0].find_string("title"), "2nd");  // newest first
  EXPECT_EQ(*list[1].find_string("title"), "First \"post\"");
  EXPECT_EQ(node_->Request("DELETE", "/api/blog/posts/1", "", true)->status, 204);
  EXPECT_EQ(node_->Request("DELETE", "/api/blog/posts/1", "", true)->status, 404);
  EXPECT_EQ(node_->Request("GET", "/api/blog/posts/1")->status, 404);
}

// A small tmpfs as the data dir, filled up: writes fail with an error (the node does not
// crash, nor acknowledge what it could not store), it keeps serving what it has, and once
// space returns it writes again, with nothing half-written (SQLite's integrity check).
TEST_F(PluginNodeTest, AFullDiskFailsWritesClearlyAndLeavesNoPartialState) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const std::string data = dir_.Sub("data");
  ::mkdir(data.c_str(), 0700);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=4m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{data};
  test::CopyFile(test::BuiltPlugin("blog"), Plugins("libblog.so"));
  StartNode();
  const std::string big(50 * 1024, 'x');  // the blog's posts are at most 60 KiB
  auto post = [&](const std::string& title) {
    return node_->Request("POST", "/api/blog/posts",
                          R"({"title":")" + title + R"(","body":")" + big + R"("})", true);
  };
  ASSERT_EQ(post("before")->status, 201);
  // Fill the disk.
  {
    const std::string filler = data + "/filler";
    std::FILE* f = std::fopen(filler.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string chunk(64 * 1024, '\0');
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  // Writes fail (within a few posts: SQLite may reuse space it already holds), each with a
  // JSON error and no exception text; the node keeps serving.
  std::vector<std::string> acknowledged{"before"};
  int failures = 0;
  for (int i = 0; i < 20 && failures == 0; ++i) {
    auto r = post("full" + std::to_string(i));
    ASSERT_TRUE(r.has_value());
    if (r->status == 201) {
      acknowledged.push_back("full" + std::to_string(i));
    } else {
      ++failures;
      EXPECT_EQ(r->status, 500) << r->body;
      EXPECT_NE(r->body.find("\"error\""), std::string::npos) << r->body;
    }
  }
  ASSERT_EQ(failures, 1) << "a full disk never failed a write";
  EXPECT_NE(node_->Log().find("full"), std::string::npos) << "the log says the disk is full:\n"
                                                          << node_->Log();
  EXPECT_EQ(node_->Request("GET", "/")->status, 200);
  EXPECT_EQ(node_->Request("GET", "/nodes")->status, 200);
  const json::Value during = node_->GetJson("/api/blog/posts");
  ASSERT_TRUE(during.is_object());
  EXPECT_EQ(during.find("posts")->as_array().size(), acknowledged.size());
  // Space returns: writes work again; after a restart exactly the acknowledged posts are there.
  ASSERT_EQ(::unlink((data + "/filler").c_str()), 0);
  ASSERT_EQ(post("after")->status, 201);
  acknowledged.push_back("after");
  ASSERT_EQ(node_->Stop(SIGTERM), 0);
  std::string check;
  ASSERT_EQ(test::RunCommand({"sqlite3", data + "/state.db", "PRAGMA integrity_check;"}, &check),
            0);
  EXPECT_EQ(check, "ok\n");
  StartNode();
  const json::Value after = node_->GetJson("/api/blog/posts");
  ASSERT_TRUE(after.is_object());
  std::set<std::string> titles;
  for (const auto& p : after.find("posts")->as_array()) titles.insert(*p.find_string("title"));
  EXPECT_EQ(titles, std::set<std::string>(acknowledged.begin(), acknowledged.end()));
  ASSERT_EQ(node_->Stop(SIGTERM), 0);
}

// kill -9, a hundred times, each time while a write is in flight (its request sent, its
// answer not read): after every restart SQLite's integrity check is ok and every write the
// node acknowledged is there: blog posts (plugin KV) and release events (the network log).
TEST_F(PluginNodeTest, AHundredKillsMidWriteLoseNoAcknowledgedWrite) {
  test::CopyFile(test::BuiltPlugin("blog"), Plugins("libblog.so"));
  std::set<std::string> acknowledged_posts;
  int64_t acknowledged_release = 0;
  int n = 0;
  // A release of the same files (the blog plugin, already in the node's blob store), signed
  // with the node's key (the network's publisher), at the next version.
  const std::string blog = test::ReadFileOrEmpty(Plugins("libblog.so"));
  auto release_body = [&] {
    auto key = store::LoadKey(dir_.Sub("data/node.key"));
    const json::Value net = *node_->Status().find("network");
    protocol::Manifest m;
    m.network = *net.find_string("id");
    m.version = *net.find_int("release") + 1;
    m.created_ms = 1;
    m.expires_ms = 4'000'000'000'000;
    m.files = {
        {"plugin", "libblog.so", crypto::Sha256Hex(blog), static_cast<int64_t>(blog.size())}};
    return json::Serialize(
        json::Object{{"manifest", m.ToJson()},
                     {"signatures", protocol::ToJson({protocol::SignManifest(*key, m)})}});
  };
  auto write_request = [&](bool release, std::string* title) {
    std::string path = "/api/blog/posts", body;
    if (release) {
      path = "/releases";
      body = release_body();
    } else {
      *title = "p" + std::to_string(n++);
      body = R"({"title":")" + *title + R"(","body":"x"})";
    }
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + node_->AuthHeader() +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  auto record = [&](const std::optional<test::RawResponse>& r, bool release,
                    const std::string& title) {
    if (!r || r->status != 201) return;
    if (release) {
      auto v = json::Parse(r->body);
      acknowledged_release = *v->find_int("version");
    } else {
      acknowledged_posts.insert(title);
    }
  };
  for (int cycle = 0; cycle < 100; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    StartNode();
    // What survived: everything acknowledged, and the database is whole.
    const json::Value posts = node_->GetJson("/api/blog/posts");
    ASSERT_TRUE(posts.is_object()) << node_->Log();
    std::set<std::string> titles;
    for (const auto& p : posts.find("posts")->as_array()) titles.insert(*p.find_string("title"));
    for (const std::string& t : acknowledged_posts)
      ASSERT_TRUE(titles.count(t)) << t << " was lost";
    const int64_t release = *node_->Status().find("network")->find_int("release");
    ASSERT_GE(release, acknowledged_release);
    // A few writes answered, then one in flight when the process dies.
    for (int i = 0; i < cycle % 4; ++i) {
      const bool rel = (cycle + i) % 3 == 0;
      std::string title;
      test::RawConnection c(node_->admin_port());
      ASSERT_TRUE(c.Send(write_request(rel, &title)));
      record(c.ReadResponse(), rel, title);
    }
    const bool rel = cycle % 3 == 1;
    std::string title;
    test::RawConnection c(node_->admin_port());
    ASSERT_TRUE(c.Send(write_request(rel, &title)));
    ASSERT_TRUE(node_->Stop(SIGKILL, 5s).has_value());
    record(c.ReadResponse(1s), rel, title);  // answered before it died: acknowledged
    std::string check;
    ASSERT_EQ(
        test::RunCommand({"sqlite3", dir_.Sub("data/state.db"), "PRAGMA integrity_check;"}, &check),
        0);
    ASSERT_EQ(check, "ok\n");
  }
  EXPECT_GE(acknowledged_posts.size(), 50u);
  EXPECT_GE(acknowledged_release, 10);
}

TEST_F(PluginNodeTest, PrivateRoutesAnswerOnlyOnTheAdminListener) {
  test::CopyFile(test::BuiltPlugin("blog"), Plugins("libblog.so"));
  StartNode();
  const std::string post = R"({"title":"t","body":"b"})";
  const auto on_public = node_->Request("POST", "/api/blog/posts", post);
  EXPECT_TRUE(on_public->status == 404 || on_public->status == 405) << on_public->status;
  EXPECT_EQ(node_->Request("DELETE", "/api/blog/posts/1")->status, 405);
  // The admin listener wants the token for plugin routes too.
  test::RawConnection c(node_->admin_port());
  ASSERT_TRUE(c.Send("POST /api/blog/posts HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(post.size()) + "\r\n\r\n" + post));
  EXPECT_EQ(c.ReadResponse()->status, 401);
  EXPECT_EQ(node_->Request("POST", "/api/blog/posts", post, true)->status, 201);
  EXPECT_TRUE(node_->GetJson("/api/blog/posts").is_object());
}

TEST_F(PluginNodeTest, RefusesBrokenPluginsWithTheirReasonAndServesTheRest) {
  test::CopyFile(test::BuiltPlugin("hello"), Plugins("libhello.so"));
  for (const char* f : {"good", "wrong_major", "newer_minor", "no_entry", "bad_route", "init_fails",
                        "undefined_symbol"}) {
    test::CopyFile(test::FixturePlugin(f), Plugins(std::string("lib") + f + ".so"));
  }
  // Sorted after libhello.so, so the real hello keeps its name.
  test::CopyFile(test::FixturePlugin("duplicate_name"), Plugins("zz_duplicate.so"));
  test::WriteFile(Plugins("notes.so"), "this is a text file, not a library\n");
  test::WriteFile(Plugins("readme.txt"), "ignored: not a .so");
  StartNode();

  const auto failed = FailedPlugins();
  const std::map<std::string, std::string> expected = {
      {"libwrong_major.so", "this host supports ABI major 1"},
      {"libnewer_minor.so", "newer than this host's 1.1"},
      {"libno_entry.so", "missing entry symbol peerstack_plugin_entry"},
      {"libbad_route.so", "bad route pattern"},
      {"libinit_fails.so", "init failed"},
      {"libundefined_symbol.so", "undefined symbol: peerstack_function_that_does_not_exist"},
      {"zz_duplicate.so", "duplicate plugin name 'hello'"},
      {"notes.so", "not a shared library"},
  };
  EXPECT_EQ(failed.size(), expected.size());
  for (const auto& [file, reason] : expected) {
    ASSERT_TRUE(failed.count(file)) << file << " not listed as failed";
    EXPECT_NE(failed.at(file).find(reason), std::string::npos) << file << ": " << failed.at(file);
    // One clear log line per cause.
    EXPECT_NE(node_->Log().find("refused " + Plugins(file) + ": "), std::string::npos) << file;
  }
  EXPECT_EQ(LoadedVersion("hello"), "1.0.0");
  EXPECT_EQ(*node_->GetJson("/api/hello/").find_string("greeting"), "hello");
  EXPECT_TRUE(node_->GetJson("/api/good/").find("good")->as_bool());
}

TEST_F(PluginNodeTest, HandlerErrorsGive500AndHungHandlers504) {
  test::CopyFile(test::BuiltPlugin("hello"), Plugins("libhello.so"));
  for (const char* f : {"errors", "throws", "hangs"}) {
    test::CopyFile(test::FixturePlugin(f), Plugins(std::string("lib") + f + ".so"));
  }
  StartNode({"--plugin-timeout", "300"});
  auto thrown = node_->Request("GET", "/api/throws/");
  EXPECT_EQ(thrown->status, 500);
  EXPECT_EQ(thrown->body.find("secret"), std::string::npos) << thrown->body;
  EXPECT_EQ(node_->Request("GET", "/api/throws/teapot")->status, 418);
  auto errored = node_->Request("GET", "/api/errors/");
  EXPECT_EQ(errored->status, 500);
  EXPECT_EQ(errored->body.find("secret"), std::string::npos) << errored->body;

  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    auto hung = node_->Request("GET", "/api/hangs/");
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(hung.has_value());
    EXPECT_EQ(hung->status, 504);
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 3s);
    // The node keeps serving, on every worker.
    for (int i = 0; i < 10; ++i) EXPECT_EQ(node_->Request("GET", "/api/hello/")->status, 200);
  }
  EXPECT_NE(node_->Log().find("took longer than 300 ms"), std::string::npos);
  EXPECT_NE(node_->Log().find("secret exception text"), std::string::npos);  // log, not client
  EXPECT_EQ(node_->Stop(SIGTERM), 0);
}

TEST_F(PluginNodeTest, ANonBlockingPluginThatBlocksIsMovedToTheWorkerPool) {
  test::CopyFile(test::FixturePlugin("slow_nonblocking"), Plugins("libslownb.so"));
  test::CopyFile(test::BuiltPlugin("hello"), Plugins("libhello.so"));
  StartNode();
  auto nonblocking = [&](const std::string& name) {
    const json::Value st = node_->Status();  // keep the value alive while iterating
    for (const auto& p : st.find("plugins")->find("loaded")->as_array()) {
      if (*p.find_string("name") == name) return p.find("nonblocking")->as_bool();
    }
    return false;
  };
  EXPECT_TRUE(nonblocking("slownb"));
  EXPECT_TRUE(nonblocking("hello"));
  EXPECT_EQ(node_->Request("GET", "/api/slownb/")->status, 200);
  EXPECT_FALSE(nonblocking("slownb"));
  EXPECT_TRUE(nonblocking("hello"));
  EXPECT_NE(node_->Log().find("slownb declares itself non-blocking but"), std::string::npos);
  EXPECT_EQ(node_->Request("GET", "/api/slownb/")->status, 200);  // still served, pooled
}

TEST_F(PluginNodeTest, DevModeLoadsADroppedInPluginWithoutRestart) {
  StartNode({"--dev"});
  EXPECT_EQ(node_->Request("GET", "/api/hello/")->status, 404);
  test::CopyFile(test::BuiltPlugin("hello"), Plugins("libhello.so"));
  EXPECT_TRUE(
      test::WaitFor([&] { return node_->Request("GET", "/api/hello/")->status == 200; }, 30s));
  std::filesystem::remove(Plugins("libhello.so"));
  EXPECT_TRUE(
      test::WaitFor([&] { return node_->Request("GET", "/api/hello/")->status == 404; }, 30s));
}

TEST_F(PluginNodeTest, DevModeHotSwapFailsNoRequest) {
  test::CopyFile(test::BuiltPlugin("hello"), Plugins("libhello.so"));
  StartNode({"--dev"});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::atomic<bool> saw_new{false};
  auto hammer = [&] {
    test::RawConnection c(node_->public_port());
    for (int i = 0; i < 200000 && !stop; ++i) {
      auto r =
          c.Send("GET /api/hello/ HTTP/1.1\r\nHost: x\r\n\r\n") ? c.ReadResponse(5s) : std::nullopt;
      if (!r || r->status != 200) {
        ++failed;
        return;
      }
      ++ok;
      if (r->body.find("\"version\":\"1.1.0\"") != std::string::npos) saw_new = true;
    }
  };
  std::thread a(hammer), b(hammer);
  ASSERT_TRUE(test::WaitFor([&] { return ok.load() > 200; }, 10s));
  test::CopyFile(test::FixturePlugin("hello_v2"), Plugins("libhello.so"));
  const bool swapped = test::WaitFor([&] { return saw_new.load() || failed.load() > 0; }, 15s);
  const int at_swap = ok.load();
  test::WaitFor([&] { return ok.load() > at_swap + 200 || failed.load() > 0; }, 5s);
  stop = true;
  a.join();
  b.join();
  EXPECT_TRUE(swapped && saw_new) << node_->Log();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 400);
  EXPECT_EQ(LoadedVersion("hello"), "1.1.0");
  EXPECT_NE(node_->Log().find("retired hello 1.0.0"), std::string::npos);
}

// `peerstack init` makes an app that builds out of tree against the installed SDK and runs:
// its page, its public route, its private one (a replicated write); and refuses a non-empty
// directory or a bad name.
TEST_F(PluginNodeTest, AnAppMadeByInitBuildsAgainstTheInstalledSdkAndServesBothRoutes) {
  std::string out, prefix;
  ASSERT_TRUE(InstallSdk("sdk", &prefix));
  const std::string app = dir_.Sub("my-app");
  ASSERT_EQ(test::RunCommand({test::PeerstackBinary(), "init", app}, &out), 0) << out;
  EXPECT_NE(out.find("wrote the app my-app"), std::string::npos) << out;
  EXPECT_NE(test::RunCommand({test::PeerstackBinary(), "init", app}, &out), 0);
  EXPECT_NE(out.find("not empty"), std::string::npos) << out;
  EXPECT_EQ(test::RunCommand(
                {test::PeerstackBinary(), "init", dir_.Sub("other"), "--name", "Bad Name"}, &out),
            2);
  const std::string readme = test::ReadFileOrEmpty(app + "/README.md");
  for (const char* step :
       {"cmake -S . -B build", "peerstack run --dev", "peerstack release create"}) {
    EXPECT_NE(readme.find(step), std::string::npos) << step;
  }
  ASSERT_TRUE(BuildAgainst(app, prefix));
  node_ = std::make_unique<test::TestNode>(
      dir_.path(), std::vector<std::string>{"--dev", "--plugins", app + "/build/plugins", "--front",
                                            app + "/front"});
  std::string why;
  ASSERT_TRUE(node_->Start(&why)) << why;
  auto page = node_->Request("GET", "/");
  ASSERT_TRUE(page.has_value());
  EXPECT_NE(page->body.find("/api/my-app/messages"), std::string::npos) << page->body;
  ASSERT_TRUE(test::WaitFor(
      [&] { return node_->Request("GET", "/api/my-app/messages")->status == 200; }, 30s))
      << node_->Log();
  EXPECT_EQ(node_->Request("POST", "/api/my-app/messages", R"({"text":"hi"})")->status,
            405);  // public: no
  auto posted = node_->Request("POST", "/api/my-app/messages", R"({"text":"hi"})", true);
  ASSERT_TRUE(posted.has_value());
  EXPECT_EQ(posted->status, 201) << posted->body << node_->Log();
  const json::Value list = node_->GetJson("/api/my-app/messages");
  ASSERT_TRUE(list.is_object()) << node_->Log();
  ASSERT_EQ(list.find("messages")->as_array().size(), 1u);
  EXPECT_EQ(*list.find("messages")->as_array()[0].find_string("text"), "hi");
}

TEST_F(PluginNodeTest, AnOutOfTreePluginBuiltAgainstTheInstalledSdkAnswers) {
  // Install the SDK from this build, then build the quick-start example as a user would.
  std::string out, prefix;
  ASSERT_TRUE(InstallSdk("sdk", &prefix));
  std::filesystem::copy(std::string(PEERSTACK_SOURCE_DIR) + "/plugin-sdk/examples/quickstart",
                        dir_.Sub("greet"));
  ASSERT_TRUE(BuildAgainst(dir_.Sub("greet"), prefix));
  // The same source against the ABI 1.0 headers (tests/fixtures/sdk-1.0): it still builds,
  // and today's host still loads what it makes.
  const std::string prefix10 = dir_.Sub("sdk-1.0");
  std::filesystem::copy(prefix, prefix10, std::filesystem::copy_options::recursive);
  for (const char* h : {"plugin.h", "plugin.hpp"}) {
    std::filesystem::copy_file(
        std::string(PEERSTACK_SOURCE_DIR) + "/tests/fixtures/sdk-1.0/peerstack/" + h,
        prefix10 + "/include/peerstack/" + h, std::filesystem::copy_options::overwrite_existing);
  }
  std::filesystem::copy(std::string(PEERSTACK_SOURCE_DIR) + "/plugin-sdk/examples/quickstart",
                        dir_.Sub("greet10"));
  ASSERT_TRUE(BuildAgainst(dir_.Sub("greet10"), prefix10));
  // Dropped into a running dev-mode node: it answers without a restart; first the 1.0 build,
  // then the 1.1 one replaces it.
  StartNode({"--dev"});
  test::CopyFile(dir_.Sub("greet10/build/libgreet.so"), Plugins("libgreet.so"));
  ASSERT_TRUE(
      test::WaitFor([&] { return node_->Request("GET", "/api/greet/")->status == 200; }, 30s))
      << node_->Log();
  const std::string sha10 =
      crypto::Sha256Hex(test::ReadFileOrEmpty(dir_.Sub("greet10/build/libgreet.so")));
  const std::string sha11 =
      crypto::Sha256Hex(test::ReadFileOrEmpty(dir_.Sub("greet/build/libgreet.so")));
  ASSERT_NE(sha10, sha11) << "the two headers made the same library";
  auto loaded_sha = [&] {
    const json::Value st = node_->Status();
    for (const auto& p : st.find("plugins")->find("loaded")->as_array()) {
      if (*p.find_string("name") == "greet") return *p.find_string("sha256");
    }
    return std::string();
  };
  EXPECT_EQ(loaded_sha(), sha10);
  test::CopyFile(dir_.Sub("greet/build/libgreet.so"), Plugins("libgreet.so"));
  ASSERT_TRUE(test::WaitFor([&] { return loaded_sha() == sha11; }, 30s)) << node_->Log();
  EXPECT_EQ(node_->Request("GET", "/api/greet/")->status, 200);
  EXPECT_EQ(node_->Request("POST", "/api/greet/greeting", R"({"text":"hi"})", true)->status, 200)
      << node_->Log();
  ASSERT_EQ(node_->Stop(SIGTERM), 0);
  // And after a restart without --dev, with its stored greeting.
  StartNode();
  const json::Value g = node_->GetJson("/api/greet/");
  ASSERT_TRUE(g.is_object()) << node_->Log();
  EXPECT_NE(g.find_string("greeting")->find("hi from "), std::string::npos);
  EXPECT_EQ(*node_->GetJson("/api/greet/ada").find_string("greeting"), "hi, ada");
  // Only the entry point is exported.
  ASSERT_EQ(
      test::RunCommand({"nm", "-D", "--defined-only", dir_.Sub("greet/build/libgreet.so")}, &out),
      0);
  EXPECT_NE(out.find("peerstack_plugin_entry"), std::string::npos);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
}  // namespace peerstack
