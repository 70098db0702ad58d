// GET /download (core/bundle/): a friend downloads one file from a member with a plain HTTP
// client, runs it, and becomes a member serving the same app, also in an empty root that
// holds only glibc; a file whose release is older than the network's joins and updates; a
// damaged or cut-short file, or one whose card names other publisher keys, refuses to run
// and writes nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "bundle/bundle.h"
#include "crypto/sha256.h"
#include "http/client.h"
#include "json/json.h"
#include "protocol/genesis.h"
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
  TestNode& Start(const std::string& name, const std::string& join = "",
                  const std::vector<std::string>& extra = {}) {
    ::mkdir(dir_.Sub(name).c_str(), 0755);
    std::vector<std::string> args{"--plugins", dir_.Sub("app/plugins"),
                                  "--front",   dir_.Sub("app/front"),
                                  "--tunnel",  "direct"};
    if (!join.empty()) args.insert(args.end(), {"--join", join});
    args.insert(args.end(), extra.begin(), extra.end());
    auto node = std::make_unique<TestNode>(dir_.Sub(name), args);
    std::string why;
    EXPECT_TRUE(node->Start(&why)) << why;
    return *(nodes_[name] = std::move(node));
  }
  std::string Url(const std::string& name) {
    return "http://127.0.0.1:" + std::to_string(nodes_.at(name)->public_port());
  }
  int64_t Members(const std::string& name) {
    const json::Value st = nodes_.at(name)->Status();
    return st.is_object() ? *st.find("network")->find_int("members") : -1;
  }
  // Downloads name's /download into path (mode 0755).
  void Download(const std::string& name, const std::string& path) {
    DownloadFrom(Url(name) + "/download", path);
  }
  void DownloadFrom(const std::string& url, const std::string& path) {
    auto r = Get(url);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
    test::WriteFile(path, r->body);
    ::chmod(path.c_str(), 0755);
  }

  // A plain HTTP GET of a whole file (up to 1 GiB, 60 s).
  static Result<http::ClientResponse> Get(const std::string& url,
                                          std::vector<http::Header> headers = {}) {
    http::ClientRequest req;
    req.url = url;
    req.headers = std::move(headers);
    req.max_response_bytes = 1u << 30;
    req.timeout = 60s;
    return http::Fetch(req);
  }

  json::Value Release(const std::string& name) {
    const json::Value st = nodes_.at(name)->Status();
    return st.is_object() ? *st.find("release") : json::Value(nullptr);
  }
  // The release a node runs ({id, version, code}), from the /status of the node whose data
  // dir is data (a friend's: no TestNode knows its ports).
  static json::Value Running(const std::string& data) {
    auto ports = json::Parse(test::ReadFileOrEmpty(data + "/ports.json"));
    if (!ports.ok() || !ports->find_int("admin")) return nullptr;
    std::string token = test::ReadFileOrEmpty(data + "/admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    test::RawConnection c(static_cast<uint16_t>(*ports->find_int("admin")));
    if (!c.Send("GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n"))
      return nullptr;
    auto r = c.ReadResponse();
    auto st =
        r && r->status == 200 ? json::Parse(r->body) : Result<json::Value>(Status::Error("x", "x"));
    const json::Value* rel = st.ok() ? st->find("release") : nullptr;
    const json::Value* run = rel && rel->is_object() ? rel->find("running") : nullptr;
    return run ? *run : json::Value(nullptr);
  }
  static std::string Get(uint16_t port, const std::string& path) {
    test::RawConnection c(port);
    if (!c.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")) return "";
    auto r = c.ReadResponse();
    return r && r->status == 200 ? r->body : "";
  }
  static uint16_t PublicPort(const std::string& data) {
    auto ports = json::Parse(test::ReadFileOrEmpty(data + "/ports.json"));
    return ports.ok() && ports->find_int("public")
               ? static_cast<uint16_t>(*ports->find_int("public"))
               : 0;
  }

  test::TempDir dir_;
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

// The shared libraries ldd names for binary (the loader included), or why not.
Result<std::vector<std::string>> SharedLibraries(const std::string& binary) {
  std::string out;
  if (test::RunCommand({"ldd", binary}, &out) != 0)
    return Status::Error("ldd", "ldd " + binary + ": " + out);
  std::vector<std::string> libs;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("not found") != std::string::npos)
      return Status::Error("ldd", binary + ": " + line);
    size_t at = line.find("=> ");
    at = at == std::string::npos ? line.find('/') : at + 3;
    if (at == std::string::npos) continue;  // linux-vdso.so.1
    libs.push_back(line.substr(at, line.find(" (", at) - at));
  }
  return libs;
}

bool IsGlibc(const std::string& path) {
  static const std::set<std::string> kGlibc = {"ld-linux-x86-64.so.2", "libc.so.6",  "libm.so.6",
                                               "libpthread.so.0",      "libdl.so.2", "librt.so.1",
                                               "libresolv.so.2"};
  return kGlibc.count(std::filesystem::path(path).filename().string()) > 0;
}

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
  test::Process friend_node(file,
                            {"--data-dir", data, "--port", "0", "--admin-port", "0", "--bind",
                             "127.0.0.1", "--tunnel", "direct"},
                            dir_.Sub("friend.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 3; }, 30s))
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
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
  test::Process again(file,
                      {"--data-dir", data, "--port", "0", "--admin-port", "0", "--bind",
                       "127.0.0.1", "--tunnel", "direct"},
                      dir_.Sub("again.log"));
  ASSERT_TRUE(
      test::WaitFor([&] { return !test::ReadFileOrEmpty(data + "/ports.json").empty(); }, 20s));
  EXPECT_EQ(test::ReadFileOrEmpty(dir_.Sub("again.log")).find("joining through"),
            std::string::npos);
  EXPECT_EQ(Members("a"), 3);
}

// The three-line friend flow on the default network (admission by invitation): a member's
// invitation link, downloaded with a plain HTTP client, run on a machine that has glibc and
// nothing else. The test makes a root holding only the glibc files that ldd names for the
// runtime and the app's plugin (and fails if it names anything else), runs the file in it (a
// private mount namespace: /proc and two device nodes bound in; the host's loopback), and
// sees it join and serve what the others serve: the same page, the same plugin answer, the
// same release.
TEST_F(DownloadTest, TheFileRunsInAnEmptyRootThatHoldsOnlyGlibc) {
  if (!PEERSTACK_PORTABLE_BUILD)
    GTEST_SKIP() << "this build's runtime needs shared libraries beyond glibc "
                    "(PEERSTACK_PORTABLE=OFF: sanitizer and fuzz builds)";
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to make the empty root (unshare --mount, chroot)";
  for (const char* tool : {"/usr/bin/unshare", "/usr/sbin/chroot", "/usr/bin/ldd"}) {
    if (::access(tool, X_OK) != 0) GTEST_SKIP() << tool << " is missing";
  }
  // The default network: admission by invitation; b joins with one, the friend with a link.
  std::string out;
  auto invite = [&](const std::string& at, const std::string& field) {
    EXPECT_EQ(test::Cli({"invite", "--data-dir", nodes_.at(at)->data_dir(), "--json"}, &out), 0)
        << out;
    auto v = json::Parse(out);
    return v.ok() && v->find_string(field) ? *v->find_string(field) : std::string();
  };
  Start("a", "", {"--admission", "invite"});
  Start("b", Url("a"), {"--invite", invite("a", "token")});
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 2 && Members("b") == 2; }, 30s));
  // A release, so the file carries a signed manifest (the node's key is genesis's publisher).
  const std::string v1 =
      test::MakeApp(dir_.Sub("v1"), {{"libhello.so", test::BuiltPlugin("hello")}},
                    {{"index.html", "<h1>the app, v1</h1>"}, {"app.js", "// v1\n"}});
  ASSERT_EQ(test::PublishApp(v1, nodes_["a"]->data_dir(), {nodes_["a"]->data_dir() + "/node.key"},
                             dir_.Sub("r1.json"), {}, &out),
            0)
      << out;
  auto version = [&](const std::string& n) {
    const json::Value r = Release(n);
    const json::Value* run = r.is_object() ? r.find("running") : nullptr;
    return run && run->is_object() ? *run->find_int("version") : -1;
  };
  ASSERT_TRUE(test::WaitFor([&] { return version("a") == 1 && version("b") == 1; }, 30s));

  const std::string root = dir_.Sub("root");
  for (const char* d : {"proc", "dev", "tmp", "data"})
    std::filesystem::create_directories(root + "/" + d);
  const std::string link = invite("b", "link");
  ASSERT_NE(link.find("/download?invite="), std::string::npos) << out;
  DownloadFrom(link, root + "/blog.run");
  std::set<std::string> libs;
  for (const std::string& binary : {root + "/blog.run", test::BuiltPlugin("hello")}) {
    auto l = SharedLibraries(binary);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    for (const std::string& lib : *l) {
      EXPECT_TRUE(IsGlibc(lib)) << binary << " needs " << lib << ", which is not glibc's";
      libs.insert(lib);
    }
  }
  ASSERT_FALSE(libs.empty());
  for (const std::string& lib : libs) {
    std::filesystem::create_directories(std::filesystem::path(root + lib).parent_path());
    test::CopyFile(std::filesystem::canonical(lib).string(), root + lib);
  }
  for (const char* dev : {"null", "urandom"}) test::WriteFile(root + "/dev/" + dev, "");
  const std::string script =
      "mount -t proc proc " + root + "/proc && mount --bind /dev/null " + root +
      "/dev/null && mount --bind /dev/urandom " + root + "/dev/urandom && exec chroot " + root +
      " /blog.run --data-dir /data --port 0 --admin-port 0 --bind 127.0.0.1 --tunnel direct";
  // unshare and sh exec into chroot and the node: one process, killed by its PID.
  test::Process friend_node("/usr/bin/unshare", {"--mount", "--", "/bin/sh", "-c", script},
                            dir_.Sub("friend.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 3; }, 30s))
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  const std::string data = root + "/data";
  const json::Value ours = Release("a");
  ASSERT_TRUE(test::WaitFor([&] { return Running(data) == *ours.find("running"); }, 15s))
      << json::Serialize(Running(data)) << " vs " << json::Serialize(ours) << "\n"
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  const uint16_t port = PublicPort(data);
  ASSERT_NE(port, 0);
  EXPECT_EQ(Get(port, "/"), "<h1>the app, v1</h1>");
  EXPECT_EQ(Get(port, "/app.js"), "// v1\n");
  // The same plugin answers (each node names itself in its answer).
  auto hello = [](uint16_t at) {
    auto v = json::Parse(Get(at, "/api/hello/"));
    if (!v.ok() || !v->find_string("plugin") || !v->find_string("version"))
      return std::string("no answer");
    return *v->find_string("plugin") + " " + *v->find_string("version");
  };
  EXPECT_EQ(hello(port), "hello 1.0.0");
  EXPECT_EQ(hello(port), hello(nodes_["a"]->public_port()));
  EXPECT_NE(test::ReadFileOrEmpty(dir_.Sub("friend.log")).find("all verified"), std::string::npos);
  EXPECT_EQ(friend_node.Stop(SIGTERM, 10s), std::optional<int>(0));
}

// A file downloaded before the network's latest release: the friend joins with the code it
// carries (the release before the current one is still accepted), then fetches and runs
// the current release from its peers.
TEST_F(DownloadTest, AFileOlderThanTheNetworksReleaseJoinsAndThenUpdates) {
  Start("a");
  const std::string key = nodes_["a"]->data_dir() + "/node.key";
  const std::string v1 = test::MakeApp(
      dir_.Sub("v1"), {{"libhello.so", test::BuiltPlugin("hello")}}, {{"app.js", "// v1\n"}});
  const std::string v2 = test::MakeApp(
      dir_.Sub("v2"), {{"libhello.so", test::BuiltPlugin("hello")}}, {{"app.js", "// v2\n"}});
  std::string out;
  ASSERT_EQ(test::PublishApp(v1, nodes_["a"]->data_dir(), {key}, dir_.Sub("r1.json"), {}, &out), 0)
      << out;
  ASSERT_TRUE(
      test::WaitFor([&] { return Get(nodes_["a"]->public_port(), "/app.js") == "// v1\n"; }, 30s));
  const std::string file = dir_.Sub("old.run");
  Download("a", file);
  ASSERT_EQ(test::PublishApp(v2, nodes_["a"]->data_dir(), {key}, dir_.Sub("r2.json"), {}, &out), 0)
      << out;
  ASSERT_TRUE(
      test::WaitFor([&] { return Get(nodes_["a"]->public_port(), "/app.js") == "// v2\n"; }, 30s));
  auto old = bundle::Read(file);
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->manifest->version, 1);

  const std::string data = dir_.Sub("friend");
  test::Process friend_node(file,
                            {"--data-dir", data, "--port", "0", "--admin-port", "0", "--bind",
                             "127.0.0.1", "--tunnel", "direct"},
                            dir_.Sub("friend.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 2; }, 30s))
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Get(PublicPort(data), "/app.js") == "// v2\n"; }, 30s))
      << json::Serialize(Running(data)) << "\n"
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  EXPECT_EQ(Running(data), *Release("a").find("running"));
}

// The card names the serving member first; frozen (SIGSTOP) after serving the file, it costs
// the friend one 3 s question, and the friend joins through the next member.
TEST_F(DownloadTest, AFrozenMemberFirstOnTheCardCostsOneQuestionNotTheJoin) {
  Start("a");
  Start("b", Url("a"));
  Start("c", Url("a"));
  ASSERT_TRUE(test::WaitFor(
      [&] { return Members("a") == 3 && Members("b") == 3 && Members("c") == 3; }, 30s));
  const std::string file = dir_.Sub("blog.run");
  Download("b", file);
  auto contents = bundle::Read(file);
  ASSERT_TRUE(contents.ok());
  ASSERT_EQ(contents->card.bootstrap.size(), 3u);
  ASSERT_EQ(contents->card.bootstrap.front(), Url("b"));
  ASSERT_EQ(::kill(nodes_["b"]->process()->pid(), SIGSTOP), 0);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }
  } thaw{nodes_["b"]->process()->pid()};
  const auto t0 = std::chrono::steady_clock::now();
  test::Process friend_node(file,
                            {"--data-dir", dir_.Sub("friend"), "--port", "0", "--admin-port", "0",
                             "--bind", "127.0.0.1", "--tunnel", "direct"},
                            dir_.Sub("friend.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 4 && Members("c") == 4; }, 30s))
      << test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  const std::string log = test::ReadFileOrEmpty(dir_.Sub("friend.log"));
  EXPECT_NE(log.find("asking " + Url("b") + " ... no answer (timeout"), std::string::npos) << log;
  EXPECT_EQ(log.find("joining through " + Url("b")), std::string::npos) << log;
  EXPECT_NE(log.find("joining through "), std::string::npos) << log;
  std::cout << "joined in " << took.count() << " ms with the card's first member frozen\n";
}

// Twenty clients at once: every one ends with the whole file, byte for byte (those over the
// limit, eight files in flight, are told 429 with Retry-After and come back, as curl --retry
// does; a client that does not read keeps its slot until it hangs up), and the node
// keeps answering its app meanwhile. A broken download resumes with a Range request; one
// whose If-Range names another release gets the whole file again.
TEST_F(DownloadTest, TwentyClientsAtOnceEachGetTheWholeFileAndABrokenOneResumes) {
  Start("a");
  const std::string url = Url("a") + "/download";
  auto fetch = [&](std::vector<http::Header> headers) { return Get(url, std::move(headers)); };
  auto first = fetch({});
  ASSERT_TRUE(first.ok() && first->status == 200);
  const std::string whole = first->body;
  const std::string etag = *first->header("etag");
  // Eight clients that ask and do not read hold the eight slots until their files are written:
  // once the node holds their eight slots (not merely their requests: a request is counted
  // before its handler takes a slot), the ninth is told to come back; once they hang up, it is
  // served.
  auto downloads_in_flight = [&] {
    const json::Value st = nodes_["a"]->Status();
    const json::Value* d = st.is_object() ? st.find("downloads") : nullptr;
    return d && d->find_int("in_flight") ? *d->find_int("in_flight") : -1;
  };
  {
    std::vector<std::unique_ptr<test::RawConnection>> stalled;
    for (int i = 0; i < 8; ++i) {
      stalled.push_back(std::make_unique<test::RawConnection>(nodes_["a"]->public_port()));
      ASSERT_TRUE(stalled.back()->Send("GET /download HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    ASSERT_TRUE(test::WaitFor([&] { return downloads_in_flight() == 8; }, 10s));
    auto ninth = fetch({});
    ASSERT_TRUE(ninth.ok());
    EXPECT_EQ(ninth->status, 429);
    EXPECT_NE(ninth->header("retry-after"), nullptr);
  }
  ASSERT_TRUE(test::WaitFor(
      [&] {
        auto r = fetch({});
        return r.ok() && r->status == 200 && r->body == whole;
      },
      10s));
  std::atomic<int> busy{0}, failed{0};
  // A client told 429 comes back once another download finished (a slot may be free then),
  // or after the Retry-After the node sent (1 s), whichever comes first.
  std::mutex mu;
  std::condition_variable finished;
  int completions = 0;  // under mu
  std::vector<std::string> got(20);
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (size_t i = 0; i < got.size(); ++i) {
    clients.emplace_back([&, i] {
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < deadline) {
        int seen;
        {
          std::lock_guard<std::mutex> lock(mu);
          seen = completions;
        }
        auto r = fetch({});
        if (r.ok() && r->status == 200) {
          got[i] = crypto::Sha256Hex(r->body);
          {
            std::lock_guard<std::mutex> lock(mu);
            ++completions;
          }
          finished.notify_all();
          return;
        }
        if (!r.ok() || r->status != 429) {
          std::cout << "client " << i << ": "
                    << (r.ok() ? "status " + std::to_string(r->status) : r.status().ToString())
                    << "\n";
          failed++;
          return;
        }
        busy++;
        std::unique_lock<std::mutex> lock(mu);
        finished.wait_for(lock, 1s, [&] { return completions != seen; });
      }
    });
  }
  // Meanwhile the app answers every request (the slowest answer is printed, not judged).
  int answered = 0, unanswered = 0;
  std::chrono::steady_clock::duration slowest{};
  std::thread app([&] {
    while (!done) {
      const auto t = std::chrono::steady_clock::now();
      test::RawConnection c(nodes_["a"]->public_port());
      auto r = c.Send("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n") ? c.ReadResponse() : std::nullopt;
      if (!r || r->status != 200) {
        unanswered++;
        continue;
      }
      slowest = std::max(slowest, std::chrono::steady_clock::now() - t);
      answered++;
    }
  });
  for (auto& t : clients) t.join();
  done = true;
  app.join();
  EXPECT_EQ(failed.load(), 0);
  for (const std::string& h : got) EXPECT_EQ(h, crypto::Sha256Hex(whole));
  EXPECT_GT(answered, 0);
  EXPECT_EQ(unanswered, 0);
  std::cout << "20 clients: " << busy.load() << " answers 429 on the way, the app answered "
            << answered << " times meanwhile, the slowest in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count() << " ms\n";

  // Resume after a break at byte n.
  const size_t n = whole.size() / 3;
  auto rest = fetch({{"range", "bytes=" + std::to_string(n) + "-"}, {"if-range", etag}});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->status, 206);
  EXPECT_EQ(*rest->header("content-range"), "bytes " + std::to_string(n) + "-" +
                                                std::to_string(whole.size() - 1) + "/" +
                                                std::to_string(whole.size()));
  EXPECT_TRUE(whole.substr(0, n) + rest->body == whole);
  auto other =
      fetch({{"range", "bytes=" + std::to_string(n) + "-"}, {"if-range", "\"another-release\""}});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(other->body.size(), whole.size());
  auto past = fetch({{"range", "bytes=" + std::to_string(whole.size()) + "-"}});
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(past->status, 416);
}

// A network that admits by invitation (the default for a new one): the plain file runs but
// its node is refused with the reason; `peerstack invite` makes a link whose file carries the
// invitation, and its node is admitted; the link works once; a made-up one is refused.
TEST_F(DownloadTest, OnAnInviteNetworkTheLinksFileJoinsOnceAndThePlainFileIsRefused) {
  Start("a", "", {"--admission", "invite"});
  std::string out;
  const std::vector<std::string> friend_args{"--port", "0",         "--admin-port", "0",
                                             "--bind", "127.0.0.1", "--tunnel",     "direct"};
  auto run = [&](const std::string& file, const std::string& name) {
    std::vector<std::string> args{"--data-dir", dir_.Sub(name)};
    args.insert(args.end(), friend_args.begin(), friend_args.end());
    return std::make_unique<test::Process>(file, args, dir_.Sub(name + ".log"));
  };
  const std::string plain = dir_.Sub("plain.run");
  Download("a", plain);
  auto uninvited = run(plain, "uninvited");
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return test::ReadFileOrEmpty(dir_.Sub("uninvited.log"))
                   .find("admits members by invitation") != std::string::npos;
      },
      20s))
      << test::ReadFileOrEmpty(dir_.Sub("uninvited.log"));
  EXPECT_EQ(Members("a"), 1);

  ASSERT_EQ(test::Cli({"invite", "--data-dir", nodes_["a"]->data_dir(), "--note", "for the test",
                       "--json"},
                      &out),
            0)
      << out;
  auto made = json::Parse(out);
  ASSERT_TRUE(made.ok() && made->find_string("link")) << out;
  const std::string link = *made->find_string("link");
  EXPECT_EQ(link.rfind(Url("a") + "/download?invite=", 0), 0u) << link;
  auto fetch = [&](const std::string& url) { return Get(url); };
  auto invited_file = fetch(link);
  ASSERT_TRUE(invited_file.ok() && invited_file->status == 200)
      << (invited_file.ok() ? invited_file->body.substr(0, 300) : "");
  const std::string file = dir_.Sub("invited.run");
  test::WriteFile(file, invited_file->body);
  ::chmod(file.c_str(), 0755);
  auto contents = bundle::Read(file);
  ASSERT_TRUE(contents.ok()) << contents.status().ToString();
  EXPECT_EQ(contents->card.invitation, *made->find_string("token"));
  auto invited = run(file, "invited");
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 2; }, 30s))
      << test::ReadFileOrEmpty(dir_.Sub("invited.log"));
  EXPECT_NE(
      test::ReadFileOrEmpty(dir_.Sub("invited.log")).find("with the invitation the file carries"),
      std::string::npos);
  // Run again (stopped and restarted): still the same member, no second admission.
  ASSERT_TRUE(invited->Stop(SIGTERM, 10s).has_value());
  invited = run(file, "invited");
  ASSERT_TRUE(test::WaitFor([&] { return Running(dir_.Sub("invited")).is_object(); }, 20s))
      << test::ReadFileOrEmpty(dir_.Sub("invited.log"));
  EXPECT_EQ(Members("a"), 2);

  // Used now: the link is refused with the reason, and so is a made-up invitation.
  auto again = fetch(link);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 409);
  EXPECT_NE(again->body.find("used already"), std::string::npos) << again->body;
  auto garbage = fetch(Url("a") + "/download?invite=" + std::string(100, 'a'));
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(garbage->status, 400);
  // The uninvited node is still not a member. Stopped, and run again with an invitation given
  // by hand, it asks again (its data dir exists, it is no member yet) and is admitted.
  EXPECT_EQ(Members("a"), 2);
  ASSERT_TRUE(uninvited->running());
  ASSERT_TRUE(uninvited->Stop(SIGTERM, 10s).has_value());
  ASSERT_EQ(test::Cli({"invite", "--data-dir", nodes_["a"]->data_dir(), "--json"}, &out), 0) << out;
  auto second = json::Parse(out);
  ASSERT_TRUE(second.ok() && second->find_string("token")) << out;
  std::vector<std::string> args{"--data-dir", dir_.Sub("uninvited"), "--invite",
                                *second->find_string("token")};
  args.insert(args.end(), friend_args.begin(), friend_args.end());
  test::Process later(plain, args, dir_.Sub("later.log"));
  ASSERT_TRUE(test::WaitFor([&] { return Members("a") == 3; }, 30s))
      << test::ReadFileOrEmpty(dir_.Sub("later.log"));
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
  // A card whose genesis is another network's (its id left as it was).
  bundle::Contents other_genesis = *contents;
  const auto stranger = crypto::SigningKey::Generate();
  other_genesis.card.genesis = protocol::Encode(*protocol::MakeGenesis(stranger, "http://x", 1000));
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"runtime", {flipped(rt - 100), "program part does not match"}},  // in the section headers
      {"payload", {flipped(rt + 10), "payload does not match its hash"}},
      {"trailer", {flipped(bytes.size() - 5), "payload does not match its hash"}},
      {"truncated", {bytes.substr(0, bytes.size() - 1000), "no payload trailer"}},
      {"foreign card",
       {bundle::Build(*runtime, foreign), "publisher keys are not the ones its genesis names"}},
      {"another genesis",
       {bundle::Build(*runtime, other_genesis), "network id is not its genesis event's"}},
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
