// Real peerstack processes on loopback forming one network: sequential and concurrent joins,
// refusals, forged and replayed messages, a member killed mid-join, and nodes catching up.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <set>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "protocol/join.h"
#include "protocol/ledger.h"
#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::TestNode;

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir_.Sub("plugins").c_str(), 0755);
    ::mkdir(dir_.Sub("other-plugins").c_str(), 0755);
    test::CopyFile(test::BuiltPlugin("hello"), dir_.Sub("plugins/libhello.so"));
    test::CopyFile(test::FixturePlugin("good"), dir_.Sub("other-plugins/libgood.so"));
  }

  // Starts node `name` on a fixed port (so it can restart at the same URL).
  TestNode& Start(const std::string& name, const std::string& join_url = "",
                  const std::string& plugins = "plugins",
                  const std::vector<std::string>& extra = {}) {
    if (!ports_.count(name)) ports_[name] = test::FreePort();
    ::mkdir(dir_.Sub(name).c_str(), 0755);
    auto node = std::make_unique<TestNode>(
        dir_.Sub(name),
        test::NodeArgs(ports_[name], dir_.Sub(plugins), dir_.Sub("front"), join_url, extra));
    std::string why;
    EXPECT_TRUE(node->Start(&why)) << why;
    auto& slot = nodes_[name];
    slot = std::move(node);
    return *slot;
  }
  std::string Url(const std::string& name) {
    return "http://127.0.0.1:" + std::to_string(ports_.at(name));
  }
  json::Value Network(const std::string& name) {
    const json::Value st = nodes_.at(name)->Status();
    return st.is_object() ? *st.find("network") : json::Value(nullptr);
  }
  std::set<std::string> MemberIds(const std::string& name) {
    std::set<std::string> ids;
    const json::Value nodes = nodes_.at(name)->GetJson("/nodes");
    if (!nodes.is_object()) return ids;
    for (const auto& n : nodes.find("nodes")->as_array()) ids.insert(*n.find_string("id"));
    return ids;
  }
  std::string StateHash(const std::string& name) {
    const json::Value n = Network(name);
    return n.is_object() ? *n.find_string("state_hash") : "";
  }
  bool IsMember(const std::string& name) {
    const json::Value n = Network(name);
    return n.is_object() && n.find("member")->as_bool();
  }
  // All named nodes report the same state hash and `members` members.
  bool Converged(const std::vector<std::string>& names, size_t members) {
    std::string hash;
    for (const auto& n : names) {
      const json::Value net = Network(n);
      if (!net.is_object() || *net.find_int("members") != static_cast<int64_t>(members))
        return false;
      const std::string h = *net.find_string("state_hash");
      if (!hash.empty() && h != hash) return false;
      hash = h;
    }
    return true;
  }

  test::TempDir dir_;
  std::map<std::string, uint16_t> ports_;
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

TEST_F(NetworkTest, FiveNodesJoinOneAfterAnotherAndAgree) {
  Start("a");
  const std::vector<std::string> names{"a", "b", "c", "d", "e"};
  for (size_t i = 1; i < names.size(); ++i) {
    Start(names[i], Url("a"));
    ASSERT_TRUE(test::WaitFor([&] { return IsMember(names[i]); }, 20s))
        << names[i] << " was not admitted:\n"
        << nodes_[names[i]]->Log();
  }
  ASSERT_TRUE(test::WaitFor([&] { return Converged(names, 5); }, 20s));
  const std::set<std::string> ids = MemberIds("a");
  EXPECT_EQ(ids.size(), 5u);
  for (const auto& n : names) EXPECT_EQ(MemberIds(n), ids) << n;
  // Every node's /nodes names the same network.
  const std::string network = *nodes_["a"]->GetJson("/nodes").find_string("network");
  for (const auto& n : names)
    EXPECT_EQ(*nodes_[n]->GetJson("/nodes").find_string("network"), network);
}

TEST_F(NetworkTest, ThreeJoinersAtOnceAreAllAdmitted) {
  Start("a");
  for (const char* n : {"b", "c", "d"}) Start(n, Url("a"));
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return Converged({"a", "b", "c", "d"}, 4);
      },
      40s))
      << nodes_["b"]->Log();
}

TEST_F(NetworkTest, AJoinerWithAnotherPluginSetIsRefusedWithTheReason) {
  Start("a");
  Start("x", Url("a"), "other-plugins");
  ASSERT_TRUE(test::WaitFor(
      [&] {
        const json::Value net = Network("x");
        return net.is_object() && !net.find("join_refusals")->as_array().empty();
      },
      20s))
      << nodes_["x"]->Log();
  const std::string reason = Network("x").find("join_refusals")->as_array()[0].as_string();
  EXPECT_NE(reason.find("does not match the network's accepted code"), std::string::npos) << reason;
  EXPECT_NE(reason.find(*Network("a").find_string("code_hash")), std::string::npos) << reason;
  EXPECT_FALSE(IsMember("x"));
  EXPECT_EQ(*Network("a").find_int("members"), 1);
  EXPECT_NE(nodes_["x"]->Log().find("join refused"), std::string::npos);
}

// Posts a message to a node the way a peer would (signed envelope), or tampered.
test::RawResponse PostMessage(uint16_t port, const std::string& type, const json::Value& body,
                              const crypto::SigningKey& key, bool tamper = false) {
  std::string raw = json::Serialize(json::Object{{"body", body}, {"from", "http://127.0.0.1:9"}});
  const auto sig = key.SignWithDomain("p2p/" + type, raw);
  if (tamper) raw[raw.size() / 2] ^= 1;
  test::RawConnection c(port);
  c.Send("POST /p2p/" + type +
         " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(raw.size()) +
         "\r\nX-Peerstack-Key: " + crypto::HexEncode(key.public_key().data(), 32) +
         "\r\nX-Peerstack-Signature: " + crypto::HexEncode(sig.data(), sig.size()) + "\r\n\r\n" +
         raw);
  auto r = c.ReadResponse();
  return r ? *r : test::RawResponse{};
}

TEST_F(NetworkTest, ForgedApprovalsReplaysAndForgeriesAdmitNobody) {
  Start("a");
  Start("b", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b"}, 2); }, 20s));
  const std::string network = *Network("a").find_string("id");
  const std::string before = StateHash("a");
  const auto attacker = crypto::SigningKey::Generate();
  const uint16_t port = nodes_["a"]->public_port();

  // Unsigned, badly signed, or signed under another message type: refused before parsing.
  EXPECT_EQ(PostMessage(port, "join", json::Object{}, attacker, /*tamper=*/true).status, 401);
  {
    test::RawConnection c(port);
    c.Send("POST /p2p/join HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_EQ(c.ReadResponse()->status, 401);
  }
  // A stale join request (a replay of an old one) and a request for another network.
  auto stale = protocol::MakeJoinRequest(attacker, "http://127.0.0.1:9", "x", network, "aa", 1000);
  EXPECT_EQ(PostMessage(port, "join", json::Object{{"request", stale.ToJson()}}, attacker).status,
            202);
  // A forged certificate: the attacker approves its own request and authors the event.
  auto own = protocol::MakeJoinRequest(attacker, "http://127.0.0.1:9",
                                       *Network("a").find_string("code_hash"), network, "bb", 0);
  protocol::Event e;
  e.kind = "member-added";
  e.parents = {network};  // the genesis event: a real parent
  e.body = protocol::Ledger::MemberAddedBody(
      own, {protocol::MakeApproval(attacker, network, own.Hash())});
  const std::string wire = protocol::Encode(*protocol::Sign(std::move(e), attacker));
  EXPECT_EQ(PostMessage(port, "event", json::Object{{"event", wire}}, attacker).status, 202);
  // A forged approval for a join nobody sponsors.
  EXPECT_EQ(
      PostMessage(
          port, "approval",
          json::Object{{"approval", protocol::MakeApproval(attacker, network, own.Hash()).ToJson()},
                       {"request", own.Hash()}},
          attacker)
          .status,
      202);
  // Malformed JSON with a valid signature: 400, nothing changes.
  {
    const std::string raw = "{\"body\":{},\"body\":{},\"from\":\"x\"}";
    const auto sig = attacker.SignWithDomain("p2p/sync", raw);
    test::RawConnection c(port);
    c.Send("POST /p2p/sync HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(raw.size()) +
           "\r\nX-Peerstack-Key: " + crypto::HexEncode(attacker.public_key().data(), 32) +
           "\r\nX-Peerstack-Signature: " + crypto::HexEncode(sig.data(), sig.size()) + "\r\n\r\n" +
           raw);
    EXPECT_EQ(c.ReadResponse()->status, 400);
  }
  // Give the nodes time to (not) act: a full anti-entropy round later nothing changed.
  ASSERT_EQ(nodes_["a"]->Request("GET", "/sync", "", true)->status, 200);
  EXPECT_EQ(StateHash("a"), before);
  EXPECT_EQ(*Network("a").find_int("members"), 2);
  EXPECT_EQ(*Network("a").find_int("pending_joins"), 0);
}

TEST_F(NetworkTest, PeerMessagesAreLimitedPerKeyAndInAllWith429AndRetryAfter) {
  Start("a");
  const uint16_t port = nodes_["a"]->public_port();
  const std::string network = *Network("a").find_string("id");
  auto join_from = [&](const crypto::SigningKey& k) {
    auto req =
        protocol::MakeJoinRequest(k, "http://127.0.0.1:9", "aa", network, crypto::RandomHex(8), 0);
    return PostMessage(port, "join", json::Object{{"request", req.ToJson()}}, k);
  };
  // One key: two joins a second, then 429 with Retry-After.
  const auto key = crypto::SigningKey::Generate();
  EXPECT_EQ(join_from(key).status, 202);
  EXPECT_EQ(join_from(key).status, 202);
  const test::RawResponse limited = join_from(key);
  EXPECT_EQ(limited.status, 429);
  ASSERT_TRUE(limited.headers.count("retry-after"));
  EXPECT_EQ(limited.headers.at("retry-after"), "1");
  // Fresh keys cost nothing: all keys together get twenty joins a second.
  int accepted = 0, refused = 0;
  for (int i = 0; i < 40; ++i) {
    const int status = join_from(crypto::SigningKey::Generate()).status;
    accepted += status == 202;
    refused += status == 429;
  }
  EXPECT_LE(accepted, 20);
  EXPECT_GE(refused, 20);
  // Another type has its own budget; an unknown type is refused before any of them.
  EXPECT_EQ(PostMessage(port, "sync", json::Object{}, key).status, 202);
  EXPECT_EQ(PostMessage(port, "nosuchtype", json::Object{}, key).status, 404);
}

TEST_F(NetworkTest, AMemberKilledDuringAJoinRestartsAndCatchesUp) {
  Start("a");
  Start("b", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b"}, 2); }, 20s));
  Start("c", Url("a"));
  // Kill b while c's join is in flight (it needs b's approval: quorum 2 of 2).
  nodes_["b"]->process()->Stop(SIGKILL, 5s);
  Start("b");
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return Converged({"a", "b", "c"}, 3);
      },
      40s))
      << nodes_["c"]->Log() << nodes_["b"]->Log();
}

// kill -9 of the sponsor while joins are in flight, ten times: after every restart its
// database is whole, every member it had admitted is still there, and the joiner it was
// handling is admitted in the end (it asks again).
TEST_F(NetworkTest, TheSponsorKilledMidJoinTenTimesLosesNoAdmission) {
  Start("a");
  std::vector<std::string> admitted;
  for (int i = 0; i < 10; ++i) {
    const std::string name = "j" + std::to_string(i);
    SCOPED_TRACE(name);
    Start(name, Url("a"));  // its join starts at once
    if (i % 2 == 1) {
      // Later: while a holds the join (or right after it admitted it).
      test::WaitFor(
          [&] {
            const json::Value st = nodes_["a"]->Status();
            return !st.is_object() || *st.find("network")->find_int("pending_joins") > 0 ||
                   IsMember(name);
          },
          5s);
    }
    ASSERT_TRUE(nodes_["a"]->Stop(SIGKILL, 5s).has_value());
    std::string check;
    ASSERT_EQ(test::RunCommand({"sqlite3", dir_.Sub("a/data/state.db"), "PRAGMA integrity_check;"},
                               &check),
              0);
    ASSERT_EQ(check, "ok\n");
    Start("a");
    ASSERT_TRUE(test::WaitFor([&] { return IsMember(name); }, 30s)) << nodes_[name]->Log();
    admitted.push_back(name);
    const std::set<std::string> ids = MemberIds("a");
    for (const std::string& n : admitted) {
      EXPECT_TRUE(ids.count(*nodes_[n]->Status().find("node")->find_string("id")))
          << n << " was lost";
    }
  }
  EXPECT_EQ(MemberIds("a").size(), 11u);
}

TEST_F(NetworkTest, AStoppedNodeCatchesUpThroughSyncAndThroughTheTimer) {
  Start("a");
  Start("b", Url("a"));
  Start("c", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c"}, 3); }, 40s));
  // c is away while d and e join (a and b form the quorum of 2 of 3).
  ASSERT_EQ(nodes_["c"]->Stop(SIGTERM), 0);
  Start("d", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return IsMember("d"); }, 30s)) << nodes_["d"]->Log();
  Start("e", Url("b"));
  ASSERT_TRUE(test::WaitFor([&] { return IsMember("e"); }, 30s)) << nodes_["e"]->Log();
  Start("c");
  // An operator's /sync brings c up to date at once: when it returns, c holds d's and e's
  // admissions (the genesis and four member-added events; its first anti-entropy round may
  // have brought them already, so `added` may be 0).
  auto sync = nodes_["c"]->Request("GET", "/sync", "", true);
  ASSERT_EQ(sync->status, 200);
  auto report = json::Parse(sync->body);
  EXPECT_GE(*report->find_int("events"), 5) << sync->body;
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c", "d", "e"}, 5); }, 20s));
  // b is away while f joins; b catches up by itself (the anti-entropy timer), no /sync.
  ASSERT_EQ(nodes_["b"]->Stop(SIGTERM), 0);
  Start("f", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return IsMember("f"); }, 40s)) << nodes_["f"]->Log();
  Start("b");
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c", "d", "e", "f"}, 6); }, 30s));
}

TEST_F(NetworkTest, ANodeBackAtAnotherPortAnnouncesItsNewAddress) {
  Start("a");
  Start("b", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b"}, 2); }, 20s));
  ASSERT_EQ(nodes_["b"]->Stop(SIGTERM), 0);
  ports_["b"] = test::FreePort();  // b comes back elsewhere
  Start("b");
  const std::string b_id = *nodes_["b"]->Status().find("node")->find_string("id");
  auto url_in_a = [&] {
    const json::Value nodes = nodes_["a"]->GetJson("/nodes");
    for (const auto& n : nodes.find("nodes")->as_array()) {
      if (*n.find_string("id") == b_id) return *n.find_string("url");
    }
    return std::string();
  };
  ASSERT_TRUE(test::WaitFor([&] { return url_in_a() == Url("b"); }, 20s)) << url_in_a();
  // And the network keeps working through the new address: a third node joins via a.
  Start("c", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c"}, 3); }, 40s));
}

// The internet's usual failure: a member that goes silent (a frozen process accepts TCP
// connections and answers nothing). Its messages may wait; nobody else's may.
TEST_F(NetworkTest, AFrozenMemberStallsNeitherJoinsNorSyncForTheOthers) {
  Start("a");
  for (const char* n : {"b", "c"}) {
    Start(n, Url("a"));
    ASSERT_TRUE(test::WaitFor([&] { return IsMember(n); }, 30s)) << nodes_[n]->Log();
  }
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c"}, 3); }, 20s));
  // The same join twice, healthy then with c frozen: d into 3 members, then e into 4 with a
  // quorum of 3 of 4 (a, b, d). Timed from a started joiner to the member flag.
  auto timed_join = [&](const std::string& name) {
    Start(name, Url("a"));
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(test::WaitFor([&] { return IsMember(name); }, 60s)) << nodes_[name]->Log();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  };
  const auto healthy = timed_join("d");
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c", "d"}, 4); }, 20s));
  ASSERT_EQ(::kill(nodes_["c"]->process()->pid(), SIGSTOP), 0);
  const auto frozen = timed_join("e");
  std::printf("join into a healthy network: %lld ms; with a frozen member: %lld ms\n",
              static_cast<long long>(healthy.count()), static_cast<long long>(frozen.count()));
  // 1.5x, with 300 ms for the granularity of the joiner's own timer (100 ms ticks).
  EXPECT_LE(frozen.count(), healthy.count() * 3 / 2 + 300)
      << "healthy " << healthy.count() << " ms, frozen " << frozen.count() << " ms\n"
      << nodes_["e"]->Log() << "\n---- a\n"
      << nodes_["a"]->Log();
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "d", "e"}, 5); }, 20s));
  // An operator's /sync on a healthy member is not held up by the frozen one.
  const auto sync_t0 = std::chrono::steady_clock::now();
  auto sync = nodes_["a"]->Request("GET", "/sync", "", true);
  ASSERT_TRUE(sync && sync->status == 200);
  EXPECT_LT(std::chrono::steady_clock::now() - sync_t0, 3500ms);
  // The frozen member is shown offline.
  auto c_online_in_a = [&] {
    const json::Value nodes = nodes_["a"]->GetJson("/nodes");
    for (const auto& n : nodes.find("nodes")->as_array()) {
      if (*n.find_string("url") == Url("c")) return n.find("online")->as_bool();
    }
    return true;
  };
  EXPECT_TRUE(test::WaitFor([&] { return !c_online_in_a(); }, 20s));
  // Thawed, it catches up (it missed e's admission) and is online again.
  ASSERT_EQ(::kill(nodes_["c"]->process()->pid(), SIGCONT), 0);
  const auto c_back = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return Converged({"a", "b", "c", "d", "e"}, 5);
      },
      30s))
      << nodes_["c"]->Log();
  EXPECT_TRUE(test::WaitFor(c_online_in_a, 20s));
}

// Checkpoints between real processes (one is due at every event): joins make several; a
// member killed (kill -9) across two of them restarts from its store, a member frozen
// (SIGSTOP) across two more thaws; both catch up from the latest checkpoint's package, and
// every node holds only the events above it.
TEST_F(NetworkTest, CheckpointsPruneAndAMemberKilledOrFrozenAcrossTwoCatchesUp) {
  const std::vector<std::string> every{"--checkpoint-every", "1"};
  auto checkpoint = [&](const std::string& name) -> int64_t {
    const json::Value n = Network(name);
    const json::Value* c = n.is_object() ? n.find("checkpoint") : nullptr;
    return c && c->is_object() ? *c->find_int("seq") : -1;
  };
  std::vector<std::string> names{"a"};
  auto dump = [&] {  // every node's checkpoint status, and a's log
    std::string all;
    for (const auto& n : names) {
      const json::Value net = Network(n);
      const json::Value* c = net.is_object() ? net.find("checkpoint") : nullptr;
      all += n + ": " + (c ? json::Serialize(*c) : std::string("-")) + "\n";
    }
    return all + nodes_["a"]->Log();
  };
  Start("a", "", "plugins", every);
  auto join = [&](const std::string& name) {
    Start(name, Url("a"), "plugins", every);
    ASSERT_TRUE(test::WaitFor([&] { return IsMember(name); }, 30s)) << nodes_[name]->Log();
    names.push_back(name);
  };
  for (const char* n : {"b", "c", "d", "e"}) join(n);
  ASSERT_TRUE(test::WaitFor([&] { return Converged(names, names.size()); }, 20s));
  ASSERT_TRUE(test::WaitFor([&] { return checkpoint("a") >= 1; }, 30s)) << nodes_["a"]->Log();
  // b killed while two more checkpoints are made.
  nodes_["b"]->process()->Stop(SIGKILL, 5s);
  auto others = [&](const std::string& away) {
    std::vector<std::string> v;
    for (const auto& n : names) {
      if (n != away) v.push_back(n);
    }
    return v;
  };
  // Each join, then the checkpoint it makes due.
  auto join_and_checkpoint = [&](const std::string& name) {
    const int64_t before = checkpoint("a");
    join(name);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(test::WaitFor([&] { return checkpoint("a") > before; }, 30s)) << dump();
    std::printf("%s admitted, checkpoint %lld %lld ms later\n", name.c_str(),
                static_cast<long long>(checkpoint("a")),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - t0)
                                           .count()));
  };
  for (const char* n : {"f", "g"}) join_and_checkpoint(n);
  Start("b", "", "plugins", every);
  const auto b_back = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::WaitFor(
      [&] { return Converged(names, names.size()) && checkpoint("b") == checkpoint("a"); }, 40s))
      << dump() << nodes_["b"]->Log();
  const auto ms = [](auto since) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - since)
                                      .count());
  };
  std::printf("b (killed) caught up %lld ms after its restart\n", ms(b_back));
  // c frozen while two more are made.
  ASSERT_EQ(::kill(nodes_["c"]->process()->pid(), SIGSTOP), 0);
  for (const char* n : {"h", "i"}) join_and_checkpoint(n);
  ASSERT_TRUE(test::WaitFor([&] { return Converged(others("c"), names.size()); }, 40s)) << dump();
  ASSERT_EQ(::kill(nodes_["c"]->process()->pid(), SIGCONT), 0);
  const auto c_back = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::WaitFor(
      [&] { return Converged(names, names.size()) && checkpoint("c") == checkpoint("a"); }, 40s))
      << dump() << nodes_["c"]->Log();
  std::printf("c (frozen) caught up %lld ms after it thawed\n", ms(c_back));
  // Nobody holds much more than what is above the last checkpoint.
  for (const auto& n : names) {
    EXPECT_LE(*Network(n).find_int("events"), 20) << n;
  }
}

TEST_F(NetworkTest, AMemberLeavesAndAnAbsentOneIsEvicted) {
  Start("a");
  for (const char* n : {"b", "c", "d"}) {
    Start(n, Url("a"));
    ASSERT_TRUE(test::WaitFor([&] { return IsMember(n); }, 30s)) << nodes_[n]->Log();
  }
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c", "d"}, 4); }, 20s));
  // c leaves on its own.
  ASSERT_EQ(nodes_["c"]->Request("POST", "/leave", "", true)->status, 200);
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "d"}, 3); }, 20s));
  EXPECT_FALSE(IsMember("c"));
  // d disappears; once the others see it offline, a asks for its eviction (quorum 2 of 3,
  // approvals from members who also see it absent).
  const std::string d_id = *nodes_["d"]->Status().find("node")->find_string("id");
  nodes_["d"]->process()->Stop(SIGKILL, 5s);
  auto offline_in = [&](const std::string& who) {
    const json::Value nodes = nodes_[who]->GetJson("/nodes");
    for (const auto& n : nodes.find("nodes")->as_array()) {
      if (*n.find_string("id") == d_id) return !n.find("online")->as_bool();
    }
    return false;
  };
  ASSERT_TRUE(test::WaitFor([&] { return offline_in("a") && offline_in("b"); }, 20s));
  auto evict = nodes_["a"]->Request("POST", "/evict", "{\"id\":\"" + d_id + "\"}", true);
  ASSERT_EQ(evict->status, 202) << evict->body;
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return Converged({"a", "b"}, 2);
      },
      20s))
      << nodes_["a"]->Log() << nodes_["b"]->Log();
  EXPECT_EQ(nodes_["a"]->Request("POST", "/evict", "{\"id\":\"nobody\"}", true)->status, 404);
}

TEST_F(NetworkTest, ThePublisherReFormsTheNetworkWhenMostMembersAreGone) {
  Start("a");
  for (const char* n : {"b", "c"}) {
    Start(n, Url("a"));
    ASSERT_TRUE(test::WaitFor([&] { return IsMember(n); }, 30s));
  }
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "b", "c"}, 3); }, 20s));
  // b and c are gone for good: a alone cannot reach the quorum of 2 of 3 for a new member.
  nodes_["b"]->process()->Stop(SIGKILL, 5s);
  nodes_["c"]->process()->Stop(SIGKILL, 5s);
  const std::string a_id = *nodes_["a"]->Status().find("node")->find_string("id");
  auto recovered =
      nodes_["a"]->Request("POST", "/recover", R"({"keep":[")" + a_id + R"("]})", true);
  ASSERT_EQ(recovered->status, 200) << recovered->body;
  EXPECT_EQ(*Network("a").find_int("members"), 1);
  Start("d", Url("a"));
  ASSERT_TRUE(test::WaitFor([&] { return Converged({"a", "d"}, 2); }, 20s)) << nodes_["d"]->Log();
}

}  // namespace
}  // namespace peerstack
