// Replicated app data between real peerstack processes on loopback: a blog's posts written on
// the author's node appear on every node, concurrent writes of one key converge, a node frozen
// (SIGSTOP) or killed during 1000 writes catches up, a node that joins later gets everything,
// and refused writes change no node's data hash.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <set>
#include <thread>

#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::TestNode;

class AppDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir_.Sub("plugins").c_str(), 0755);
    test::CopyFile(test::BuiltPlugin("blog"), dir_.Sub("plugins/libblog.so"));
    test::CopyFile(test::FixturePlugin("notes"), dir_.Sub("plugins/libnotes.so"));
  }

  TestNode& Start(const std::string& name, const std::string& join = "") {
    if (!ports_.count(name)) ports_[name] = test::FreePort();
    ::mkdir(dir_.Sub(name).c_str(), 0755);
    auto node = std::make_unique<TestNode>(
        dir_.Sub(name), test::NodeArgs(ports_[name], dir_.Sub("plugins"), dir_.Sub("front"),
                                       join.empty() ? "" : Url(join)));
    std::string why;
    EXPECT_TRUE(node->Start(&why)) << why;
    auto& slot = nodes_[name];
    slot = std::move(node);
    return *slot;
  }
  std::string Url(const std::string& name) {
    return "http://127.0.0.1:" + std::to_string(ports_.at(name));
  }
  TestNode& N(const std::string& name) { return *nodes_.at(name); }

  int64_t Members(const std::string& name) {
    const json::Value st = N(name).Status();
    return st.is_object() ? *st.find("network")->find_int("members") : 0;
  }
  // A network of the named nodes, the first founding it, each later one joining it.
  void Form(const std::vector<std::string>& names) {
    Start(names[0]);
    for (size_t i = 1; i < names.size(); ++i) Start(names[i], names[0]);
    ASSERT_TRUE(test::WaitFor(
        [&] {
          for (const auto& n : names) {
            if (Members(n) != static_cast<int64_t>(names.size())) return false;
          }
          return true;
        },
        60s))
        << N(names.back()).Log();
  }
  // The data hash of a plugin's replicated collections on a node, as /status shows it.
  std::string Hash(const std::string& name, const std::string& plugin) {
    const json::Value st = N(name).Status();
    if (!st.is_object()) return "";
    const json::Value* p = st.find("appdata");
    p = p ? p->find("plugins") : nullptr;
    p = p ? p->find(plugin) : nullptr;
    const std::string* h = p ? p->find_string("hash") : nullptr;
    return h ? *h : "";
  }
  int64_t Entries(const std::string& name, const std::string& plugin) {
    const json::Value st = N(name).Status();
    const json::Value* p = st.is_object() ? st.find("appdata") : nullptr;
    p = p ? p->find("plugins") : nullptr;
    p = p ? p->find(plugin) : nullptr;
    const int64_t* e = p ? p->find_int("entries") : nullptr;
    return e ? *e : -1;
  }
  bool SameHash(const std::vector<std::string>& names, const std::string& plugin,
                const std::string& expect = "") {
    std::string first = expect.empty() ? Hash(names[0], plugin) : expect;
    if (first.empty()) return false;
    for (const auto& n : names) {
      if (Hash(n, plugin) != first) return false;
    }
    return true;
  }
  std::set<std::string> Titles(const std::string& name) {
    std::set<std::string> out;
    const json::Value posts = N(name).GetJson("/api/blog/posts");
    if (!posts.is_object()) return out;
    for (const auto& p : posts.find("posts")->as_array()) out.insert(*p.find_string("title"));
    return out;
  }
  std::optional<std::string> Value(const std::string& name, const std::string& coll,
                                   const std::string& key) {
    auto r = N(name).Request("GET", "/api/notes/c/" + coll + "/" + key);
    if (!r || r->status != 200) return std::nullopt;
    return r->body;
  }

  test::TempDir dir_;
  std::map<std::string, uint16_t> ports_;
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

TEST_F(AppDataTest, PostsOnTheAuthorsNodeAppearOnEveryNodeAndOnALaterJoiner) {
  const std::vector<std::string> five{"a", "b", "c", "d", "e"};
  Form(five);
  for (const char* title : {"One", "Two", "Three"}) {
    auto r = N("a").Request("POST", "/api/blog/posts",
                            std::string(R"({"title":")") + title + R"(","body":"text"})", true);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  const std::set<std::string> titles{"One", "Two", "Three"};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::WaitFor(
      [&] {
        for (const auto& n : five) {
          if (Titles(n) != titles) return false;
        }
        return true;
      },
      20s))
      << N("e").Log();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  RecordProperty("posts_everywhere_ms", static_cast<int>(took.count()));
  // Two members comment on post 1 at once: both comments, everywhere (each writes its own keys).
  std::thread tb([&] {
    EXPECT_EQ(
        N("b").Request("POST", "/api/blog/posts/1/comments", R"({"body":"from b"})", true)->status,
        201);
  });
  std::thread tc([&] {
    EXPECT_EQ(
        N("c").Request("POST", "/api/blog/posts/1/comments", R"({"body":"from c"})", true)->status,
        201);
  });
  tb.join();
  tc.join();
  auto comments = [&](const std::string& n) {
    std::set<std::string> out;
    const json::Value post = N(n).GetJson("/api/blog/posts/1");
    if (!post.is_object()) return out;
    for (const auto& c : post.find("comments")->as_array()) out.insert(*c.find_string("body"));
    return out;
  };
  ASSERT_TRUE(test::WaitFor(
      [&] {
        for (const auto& n : five) {
          if (comments(n) != std::set<std::string>{"from b", "from c"}) return false;
        }
        return SameHash(five, "blog");
      },
      20s));
  // A node that joins later gets every current post and comment.
  Start("f", "a");
  ASSERT_TRUE(
      test::WaitFor([&] { return Titles("f") == titles && comments("f").size() == 2; }, 30s))
      << N("f").Log();
  EXPECT_TRUE(test::WaitFor([&] { return Hash("f", "blog") == Hash("a", "blog"); }, 10s));
}

TEST_F(AppDataTest, OneKeyWrittenOnTwoNodesAtOnceConvergesToOneValueEverywhere) {
  const std::vector<std::string> five{"a", "b", "c", "d", "e"};
  Form(five);
  for (int round = 0; round < 5; ++round) {
    const std::string key = "k" + std::to_string(round);
    std::thread tb([&] { N("b").Request("PUT", "/api/notes/c/notes/" + key, "from b", true); });
    std::thread tc([&] { N("c").Request("PUT", "/api/notes/c/notes/" + key, "from c", true); });
    tb.join();
    tc.join();
    ASSERT_TRUE(test::WaitFor(
        [&] {
          std::set<std::string> seen;
          for (const auto& n : five) {
            auto v = Value(n, "notes", key);
            if (!v) return false;
            seen.insert(*v);
          }
          return seen.size() == 1 && SameHash(five, "notes");
        },
        20s))
        << "round " << round;
  }
}

TEST_F(AppDataTest, ANodeFrozenAndANodeKilledDuringAThousandWritesCatchUp) {
  const std::vector<std::string> five{"a", "b", "c", "d", "e"};
  Form(five);
  const pid_t frozen = N("d").process()->pid();
  ASSERT_EQ(::kill(frozen, SIGSTOP), 0);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }  // even when an assertion fails: the process is then stopped
  } thaw{frozen};
  ASSERT_EQ(N("e").Stop(SIGKILL), -SIGKILL);
  auto r = N("a").Request("POST", "/api/notes/bulk/notes", R"({"n":1000,"size":200,"prefix":"w"})",
                          true);
  ASSERT_EQ(r->status, 200) << r->body;
  // The writer is not held up by the frozen peer: the others hold all 1000 soon.
  ASSERT_TRUE(test::WaitFor(
      [&] { return Entries("b", "notes") == 1000 && Entries("c", "notes") == 1000; }, 20s));
  const std::string hash = Hash("a", "notes");
  ASSERT_TRUE(test::WaitFor([&] { return SameHash({"a", "b", "c"}, "notes", hash); }, 10s));
  // Back: the frozen one thaws, the killed one restarts; both catch up to the same data.
  ASSERT_EQ(::kill(frozen, SIGCONT), 0);
  Start("e");
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return SameHash({"d", "e"}, "notes", hash);
      },
      30s))
      << "d: " << Entries("d", "notes") << " e: " << Entries("e", "notes") << "\n"
      << N("e").Log();
}

TEST_F(AppDataTest, RefusedWritesLeaveEveryDataHashUnchanged) {
  const std::vector<std::string> three{"a", "b", "c"};
  Form(three);
  ASSERT_EQ(N("a")
                .Request("POST", "/api/blog/posts", R"({"title":"By the author","body":""})", true)
                ->status,
            201);
  ASSERT_EQ(N("b").Request("PUT", "/api/notes/c/notes/x", "shared", true)->status, 204);
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return SameHash(three, "blog") && SameHash(three, "notes") && Value("c", "notes", "x");
      },
      20s));
  const std::string blog = Hash("a", "blog"), notes = Hash("a", "notes");

  // b is a member, not a publisher: its post is refused (403 with the reason), and so is a
  // comment key that is not its own, a public route's write to a collection not open to
  // them, an oversized value, a bad key.
  auto post =
      N("b").Request("POST", "/api/blog/posts", R"({"title":"Not mine to write","body":""})", true);
  EXPECT_EQ(post->status, 403) << post->body;
  EXPECT_NE(post->body.find("forbidden"), std::string::npos) << post->body;
  EXPECT_EQ(N("b").Request("PUT", "/api/notes/c/pub/x", "no", true)->status, 403);
  EXPECT_EQ(N("b").Request("PUT", "/api/notes/c/mine/someone-else%2Fx", "no", true)->status, 403);
  EXPECT_EQ(N("b").Request("PUT", "/api/notes/c/notes/y", "no")->status, 403);  // public route
  EXPECT_EQ(N("b").Request("PUT", "/api/notes/c/nosuch/y", "no", true)->status, 400);
  EXPECT_EQ(
      N("b").Request("PUT", "/api/notes/c/notes/big", std::string(65 * 1024, 'x'), true)->status,
      413);
  // The collection that takes public writes does, from any visitor, signed by b.
  EXPECT_EQ(N("b").Request("PUT", "/api/notes/c/open/guestbook", "hi", false)->status, 204);
  // A stranger's app data message is refused before anything reads it.
  {
    const auto stranger = crypto::SigningKey::Generate();
    const std::string raw =
        R"({"body":{"ops":[],"plugin":"notes","prev":0,"upto":5},"from":"http://127.0.0.1:9"})";
    const auto sig = stranger.SignWithDomain("p2p/appdata", raw);
    test::RawConnection conn(N("a").public_port());
    conn.Send(
        "POST /p2p/appdata HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(raw.size()) +
        "\r\nX-Peerstack-Key: " + crypto::HexEncode(stranger.public_key().data(), 32) +
        "\r\nX-Peerstack-Signature: " + crypto::HexEncode(sig.data(), sig.size()) + "\r\n\r\n" +
        raw);
    auto answer = conn.ReadResponse();
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->status, 403) << answer->body;
  }
  // A sync round later nothing refused arrived anywhere.
  for (const auto& n : three) ASSERT_EQ(N(n).Request("GET", "/sync", "", true)->status, 200);
  ASSERT_TRUE(test::WaitFor([&] { return Value("c", "open", "guestbook").has_value(); }, 10s));
  for (const auto& n : three) {
    EXPECT_EQ(Hash(n, "blog"), blog) << n;
    EXPECT_FALSE(Value(n, "pub", "x").has_value()) << n;
    EXPECT_FALSE(Value(n, "notes", "y").has_value()) << n;
  }
  EXPECT_NE(Hash("a", "notes"), notes) << "the guestbook entry is there";
  EXPECT_TRUE(SameHash(three, "notes"));
}

}  // namespace
}  // namespace peerstack
