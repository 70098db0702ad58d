// Replicated app data without sockets: ops (signing, strict reading), the merge rules and every
// refusal, the push and pull flows between replicas in one process, tombstones and a long
// absence, and a purge when a member is removed.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "appdata/op.h"
#include "appdata/replica.h"
#include "crypto/encoding.h"
#include "support/test_support.h"

namespace peerstack::appdata {
namespace {

const std::string kNet(64, 'e');

std::string Hex(const crypto::SigningKey& k) {
  return crypto::HexEncode(k.public_key().data(), 32);
}

// Replicas of one network in one process, delivering each other's messages by hand.
class Cluster {
 public:
  explicit Cluster(size_t n, const std::string& dir = "") {
    for (size_t i = 0; i < n; ++i) keys_.push_back(crypto::SigningKey::Generate());
    for (size_t i = 0; i < n; ++i) {
      authority_.keys[Hex(keys_[i])] = {"node" + std::to_string(i), {{0, INT64_MAX}}, {}};
    }
    authority_.keys[Hex(keys_[0])].publisher = {{0, INT64_MAX}};  // node 0 publishes
    authority_.network_id = kNet;
    for (size_t i = 0; i < n; ++i)
      replicas_.push_back(
          Open(i, dir.empty() ? ":memory:" : dir + "/" + std::to_string(i) + ".db"));
    Share();
  }

  std::unique_ptr<Replica> Open(size_t i, const std::string& db, ReplicaOptions o = {}) {
    o.db_path = db;
    o.clock = &clock_;
    o.key = std::make_unique<crypto::SigningKey>(keys_[i]);
    o.random = [this] { return ++draws_; };
    auto r = Replica::Open(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto replica = std::move(r).value();
    EXPECT_TRUE(replica
                    ->Declare("p", {{"c", Rule::kMembers, false},
                                    {"pub", Rule::kPublishers, false},
                                    {"own", Rule::kOwnKeys, false},
                                    {"open", Rule::kMembers, true}})
                    .ok());
    return replica;
  }

  std::vector<Peer> Peers() const {
    std::vector<Peer> p;
    for (size_t i = 0; i < keys_.size(); ++i)
      p.push_back({Hex(keys_[i]), Url(i), online_.count(i) == 0});
    return p;
  }
  void Share() {
    for (auto& r : replicas_) {
      if (r) r->SetAuthority(authority_, Peers());
    }
  }
  static std::string Url(size_t i) { return "r" + std::to_string(i); }

  // Delivers messages until none is left (dropping those to or from nodes marked down).
  // Returns how many bytes travelled.
  size_t Deliver(std::vector<std::pair<size_t, Outgoing>> queue) {
    size_t bytes = 0;
    for (size_t step = 0; step < queue.size() && step < 100000; ++step) {
      const auto [from, m] = queue[step];
      const size_t to = static_cast<size_t>(std::stoi(m.to.substr(1)));
      if (down_.count(to) || down_.count(from) || !replicas_[to]) continue;
      bytes += m.body.size();
      auto body = json::Parse(m.body);
      EXPECT_TRUE(body.ok());
      std::vector<Outgoing> out;
      EXPECT_TRUE(replicas_[to]->Receive(Hex(keys_[from]), Url(from), m.type, *body, &out).ok())
          << m.type;
      for (auto& o : out) queue.emplace_back(to, std::move(o));
    }
    return bytes;
  }
  // One tick of every replica (pushes, and pulls once the sync interval passed), delivered.
  size_t Round() {
    clock_.Advance(1000);
    std::vector<std::pair<size_t, Outgoing>> queue;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (!replicas_[i] || down_.count(i)) continue;
      std::vector<Outgoing> out;
      replicas_[i]->Tick(&out);
      for (auto& o : out) queue.emplace_back(i, std::move(o));
    }
    return Deliver(std::move(queue));
  }
  bool Agree() {
    std::string h;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (!replicas_[i] || down_.count(i)) continue;
      if (h.empty()) h = replicas_[i]->DataHash("p");
      if (replicas_[i]->DataHash("p") != h) return false;
    }
    return true;
  }
  Replica& R(size_t i) { return *replicas_[i]; }
  std::optional<std::string> Get(size_t i, const std::string& key, const std::string& coll = "c") {
    auto v = replicas_[i]->Get("p", coll, key);
    EXPECT_TRUE(v.ok());
    return *v;
  }
  // A signed op by key k, as a peer would send it.
  Op MakeOp(const crypto::SigningKey& k, const std::string& coll, const std::string& key,
            const std::string& value, int64_t seq, int64_t t) {
    Op op;
    op.network = kNet;
    op.plugin = "p";
    op.collection = coll;
    op.key = key;
    op.value = value;
    op.seq = seq;
    op.t = t;
    return Sign(std::move(op), k);
  }
  // Delivers one op to replica `to` as a pull answer from node `from` would carry it.
  void Send(size_t from, size_t to, const Op& op) {
    const std::string body = "{\"more\":false,\"plugins\":{\"p\":[{\"a\":\"" + op.author +
                             "\",\"from\":" + std::to_string(op.seq - 1) + ",\"ops\":[" + Wire(op) +
                             "],\"upto\":" + std::to_string(op.seq) + "}]}}";
    std::vector<Outgoing> out;
    EXPECT_TRUE(replicas_[to]
                    ->Receive(Hex(keys_[from]), Url(from), "appops", *json::Parse(body), &out)
                    .ok());
  }

  FakeClock clock_;
  uint64_t draws_ = 0;
  std::vector<crypto::SigningKey> keys_;
  Authority authority_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::set<size_t> down_, online_;
};

TEST(AppDataOp, SignsEveryFieldAndReadsStrictly) {
  const auto key = crypto::SigningKey::Generate();
  Cluster c(1);
  Op op = c.MakeOp(key, "c", "k/1", "text", 1, 5);
  ASSERT_TRUE(VerifySignature(op).ok());
  auto parsed = FromJson(*json::Parse(Wire(op)));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(VerifySignature(*parsed).ok());
  EXPECT_EQ(Wire(*parsed), Wire(op));
  // Any field changed: the signature no longer holds.
  for (auto mutate : std::vector<std::function<void(Op&)>>{
           [](Op& o) { o.key = "k/2"; }, [](Op& o) { o.value = "other"; }, [](Op& o) { o.seq = 2; },
           [](Op& o) { o.t = 6; }, [](Op& o) { o.l = 1; }, [](Op& o) { o.deleted = true; },
           [](Op& o) { o.plugin = "q"; }, [](Op& o) { o.collection = "d"; },
           [](Op& o) { o.network = std::string(64, 'f'); }}) {
    Op changed = op;
    mutate(changed);
    EXPECT_EQ(VerifySignature(changed).code(), "bad_signature");
  }
  // Bytes that are not UTF-8 travel as base64, once spelled.
  Op bytes = c.MakeOp(key, "c", "b", std::string("\xff\x00\x01", 3), 2, 5);
  const json::Value wire = *json::Parse(Wire(bytes));
  ASSERT_NE(wire.find_string("b"), nullptr);
  EXPECT_EQ(FromJson(wire)->value, bytes.value);
  // Strict: a missing or an extra field, both value forms, a UTF-8 value as base64, limits.
  auto with = [&](const std::string& field, json::Value v) {
    json::Value j = ToJson(op);
    if (v.is_null()) {
      j.as_object().erase(field);
    } else {
      j.as_object()[field] = std::move(v);
    }
    return FromJson(j);
  };
  EXPECT_EQ(with("s", nullptr).status().code(), "bad_op");
  EXPECT_EQ(with("x", 1).status().code(), "bad_op");
  EXPECT_EQ(with("b", crypto::Base64Encode("\xff")).status().code(), "bad_op");
  EXPECT_EQ(with("s", 0).status().code(), "bad_op");
  EXPECT_EQ(with("k", std::string(257, 'k')).status().code(), "bad_op");
  EXPECT_EQ(with("k", "tab\there").status().code(), "bad_op");
  EXPECT_EQ(with("v", std::string(64 * 1024 + 1, 'v')).status().code(), "bad_op");
  EXPECT_EQ(with("a", std::string(64, 'A')).status().code(), "bad_op");
  json::Value text_as_b64 = ToJson(op);
  text_as_b64.as_object().erase("v");
  text_as_b64.as_object()["b"] = crypto::Base64Encode("text");
  EXPECT_EQ(FromJson(text_as_b64).status().code(), "bad_op");
}

TEST(AppDataOp, Base64AndUtf8HaveOneSpelling) {
  for (const std::string& s : {std::string(), std::string("f"), std::string("fo"),
                               std::string("foo"), std::string("\x00\xff\x10", 3)}) {
    EXPECT_EQ(crypto::Base64Decode(crypto::Base64Encode(s)), s);
  }
  EXPECT_EQ(crypto::Base64Encode("foob"), "Zm9vYg==");
  EXPECT_FALSE(crypto::Base64Decode("Zm9vYh==").has_value());  // unused bits set
  EXPECT_FALSE(crypto::Base64Decode("Zm9vYg").has_value());    // no padding
  EXPECT_FALSE(crypto::Base64Decode("Zm9v Yg==").has_value());
  EXPECT_TRUE(crypto::IsUtf8("h\xc3\xa9llo \xf0\x9f\x98\x80"));
  EXPECT_FALSE(crypto::IsUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(crypto::IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(crypto::IsUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(crypto::IsUtf8("\xe2\x82"));          // cut short
}

TEST(AppDataReplica, WritesReachEveryReplicaAndConcurrentOnesConvergeOnTheGreaterAuthor) {
  Cluster c(3);
  ASSERT_TRUE(c.R(0).Put("p", "c", "hello", "world").ok());
  c.Round();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(c.Get(i, "hello"), "world") << i;
  EXPECT_TRUE(c.Agree());
  // The same key written on two replicas at the same clock reading: the greater key wins
  // everywhere.
  ASSERT_TRUE(c.R(1).Put("p", "c", "same", "from 1").ok());
  ASSERT_TRUE(c.R(2).Put("p", "c", "same", "from 2").ok());
  c.Round();
  c.Round();
  const std::string winner = Hex(c.keys_[1]) > Hex(c.keys_[2]) ? "from 1" : "from 2";
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(c.Get(i, "same"), winner) << i;
  EXPECT_TRUE(c.Agree());
  // Deletes are ops too; a deleted key lists and reads as absent everywhere.
  ASSERT_TRUE(c.R(2).Delete("p", "c", "hello").ok());
  EXPECT_EQ(c.R(2).Delete("p", "c", "hello").code(), "not_found");
  c.Round();
  for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(c.Get(i, "hello").has_value()) << i;
  EXPECT_TRUE(c.Agree());
  EXPECT_GE(c.R(0).Changes("p", "c"), 3u);
}

TEST(AppDataReplica, TheSameOpsInAnyOrderGiveTheSameDataHash) {
  Cluster c(4);
  std::vector<std::pair<size_t, Op>> ops;
  for (int k = 0; k < 30; ++k) {
    const size_t author = 1 + k % 3;
    ops.emplace_back(
        author, c.MakeOp(c.keys_[author], "c", "k" + std::to_string(k % 7), "v" + std::to_string(k),
                         k / 3 + 1, c.clock_.WallMs() - 1000 + k % 5));
  }
  // Replica 0 gets them in order, the others reversed or interleaved; all end the same.
  for (const auto& [a, op] : ops) c.Send(a, 0, op);
  for (auto it = ops.rbegin(); it != ops.rend(); ++it) c.Send(it->first, 1, it->second);
  for (size_t i = 0; i < ops.size(); i += 2) c.Send(ops[i].first, 2, ops[i].second);
  for (size_t i = 1; i < ops.size(); i += 2) c.Send(ops[i].first, 2, ops[i].second);
  EXPECT_EQ(c.R(0).DataHash("p"), c.R(1).DataHash("p"));
  EXPECT_EQ(c.R(0).DataHash("p"), c.R(2).DataHash("p"));
  EXPECT_NE(c.R(0).DataHash("p"), c.R(3).DataHash("p"));  // 3 got none of them
}

TEST(AppDataReplica, RefusesBadOpsAndLeavesTheDataAsItWas) {
  Cluster c(3);
  ASSERT_TRUE(c.R(1).Put("p", "c", "x", "1").ok());
  c.Round();
  const std::string before = c.R(0).DataHash("p");
  const int64_t now = c.clock_.WallMs();
  const auto stranger = crypto::SigningKey::Generate();
  auto refused = [&](const std::string& why) {
    auto counters = c.R(0).Counters();
    return counters.refused.count(why) ? counters.refused.at(why) : 0;
  };
  // A bad signature.
  Op forged = c.MakeOp(c.keys_[1], "c", "x", "forged", 2, now);
  forged.value = "changed after signing";
  c.Send(1, 0, forged);
  EXPECT_EQ(refused("bad_signature"), 1u);
  // A non-member author (relayed by a member).
  c.Send(1, 0, c.MakeOp(stranger, "c", "x", "stranger", 1, now));
  EXPECT_EQ(refused("unknown_author"), 1u);
  // The collection's rule: posts by a member that is no publisher; a key not its own.
  c.Send(1, 0, c.MakeOp(c.keys_[1], "pub", "post", "not a publisher", 2, now));
  EXPECT_EQ(refused("not_publisher"), 1u);
  c.Send(1, 0, c.MakeOp(c.keys_[1], "own", "node2/x", "someone else's", 3, now));
  EXPECT_EQ(refused("not_own_key"), 1u);
  // A clock too far ahead; a plugin or collection this node does not run; another network.
  c.Send(1, 0, c.MakeOp(c.keys_[1], "c", "x", "future", 4, now + 61000));
  EXPECT_EQ(refused("clock_ahead"), 1u);
  Op other = c.MakeOp(c.keys_[1], "c", "x", "other plugin", 5, now);
  other.plugin = "q";
  c.Send(1, 0, Sign(other, c.keys_[1]));
  EXPECT_EQ(refused("plugin_not_run"), 1u);
  c.Send(1, 0, c.MakeOp(c.keys_[1], "nosuch", "x", "v", 6, now));
  EXPECT_EQ(refused("unknown_collection"), 1u);
  Op elsewhere = c.MakeOp(c.keys_[1], "c", "x", "v", 7, now);
  elsewhere.network = std::string(64, 'f');
  c.Send(1, 0, Sign(elsewhere, c.keys_[1]));
  EXPECT_EQ(refused("other_network"), 1u);
  // A replay of an op already held: counted, changes nothing.
  const auto stale_before = c.R(0).Counters().ops_stale;
  auto listed = c.R(1).List("p", "c", "", 10);
  ASSERT_TRUE(listed.ok());
  c.Send(1, 0, c.MakeOp(c.keys_[1], "c", "x", "1", 1, now - 1000));  // older than what is held
  EXPECT_EQ(c.R(0).Counters().ops_stale, stale_before + 1);
  // Malformed messages: refused as a whole.
  std::vector<Outgoing> out;
  EXPECT_EQ(
      c.R(0)
          .Receive(Hex(c.keys_[1]), Cluster::Url(1), "appdata", *json::Parse(R"({"ops":5})"), &out)
          .code(),
      "bad_message");
  EXPECT_EQ(c.R(0)
                .Receive(Hex(c.keys_[1]), Cluster::Url(1), "appops",
                         *json::Parse(R"({"more":false,"plugins":{"p":[{"a":1}]}})"), &out)
                .code(),
            "bad_message");
  EXPECT_EQ(
      c.R(0).Receive(Hex(c.keys_[1]), Cluster::Url(1), "appnope", json::Object{}, &out).code(),
      "bad_message");
  EXPECT_EQ(c.R(0).DataHash("p"), before);
  EXPECT_EQ(c.Get(0, "x"), "1");
  // Local writes that the rules forbid, or that are too large, never become ops.
  EXPECT_EQ(c.R(1).Put("p", "pub", "post", "x").code(), "forbidden");
  EXPECT_EQ(c.R(1).Put("p", "own", "node2/x", "x").code(), "forbidden");
  EXPECT_TRUE(c.R(1).Put("p", "own", "node1/x", "mine").ok());
  EXPECT_EQ(c.R(1).Put("p", "c", "k", "x", /*public_request=*/true).code(), "forbidden");
  EXPECT_TRUE(c.R(1).Put("p", "open", "k", "x", /*public_request=*/true).ok());
  EXPECT_EQ(c.R(1).Put("p", "c", "k", std::string(64 * 1024 + 1, 'x')).code(), "too_large");
  EXPECT_EQ(c.R(1).Put("p", "c", "", "x").code(), "invalid");
  EXPECT_EQ(c.R(1).Put("p", "nosuch", "k", "x").code(), "unknown_collection");
  EXPECT_TRUE(c.R(0).Put("p", "pub", "post", "by the publisher").ok());
}

TEST(AppDataReplica, ARemovedMembersLaterOpsAreRefusedAndPurgedOnceTheRemovalIsKnown) {
  Cluster c(3);
  ASSERT_TRUE(c.R(0).Put("p", "c", "k", "original").ok());
  c.Round();
  const int64_t removed_at = c.clock_.WallMs();
  c.clock_.Advance(5000);
  // Node 2 is removed at removed_at; replica 0 learns it at once, replica 1 only later.
  Authority after = c.authority_;
  after.keys[Hex(c.keys_[2])].member = {{0, removed_at}};
  c.R(0).SetAuthority(after, c.Peers());
  const Op late = c.MakeOp(c.keys_[2], "c", "k", "after removal", 1, c.clock_.WallMs());
  c.Send(2, 0, late);
  c.Send(2, 1, late);
  EXPECT_EQ(c.Get(0, "k"), "original");
  EXPECT_EQ(c.R(0).Counters().refused.at("not_member_then"), 1u);
  EXPECT_EQ(c.Get(1, "k"), "after removal");  // 1 did not know yet
  // Once it knows, the op goes, and a pull brings back what it had replaced.
  c.R(1).SetAuthority(after, c.Peers());
  EXPECT_EQ(c.R(1).Counters().purged, 1u);
  EXPECT_FALSE(c.Get(1, "k").has_value());
  c.Round();
  c.Round();
  EXPECT_EQ(c.Get(1, "k"), "original");
  EXPECT_EQ(c.R(1).DataHash("p"), c.R(0).DataHash("p"));
}

TEST(AppDataReplica, AMemberCannotMakeAnotherSkipAThirdAuthorsOps) {
  Cluster c(3);
  c.down_.insert(1);
  ASSERT_TRUE(c.R(0).Put("p", "c", "k", "by 0").ok());
  c.Round();  // 1 misses the push
  c.down_.clear();
  // Member 2 tells 1 it covers 0's ops up to 5, and sends none (or one beyond a gap): 1's mark
  // for 0 does not move, so its next pulls still ask for them.
  std::vector<Outgoing> out;
  const std::string author = Hex(c.keys_[0]);
  Op far =
      c.MakeOp(c.keys_[0], "c", "other", "x", 3, c.clock_.WallMs() - 10);  // a real op of 0, seq 3
  const std::string claim = "{\"more\":false,\"plugins\":{\"p\":[{\"a\":\"" + author +
                            "\",\"from\":0,\"ops\":[" + Wire(far) + "],\"upto\":5}]}}";
  ASSERT_TRUE(
      c.R(1).Receive(Hex(c.keys_[2]), Cluster::Url(2), "appops", *json::Parse(claim), &out).ok());
  for (int round = 0; round < 6 && !c.Get(1, "k"); ++round) c.Round();
  EXPECT_EQ(c.Get(1, "k"), "by 0");
}

TEST(AppDataReplica, AFloodingAuthorIsSlowedAndItsOpsArriveLater) {
  Cluster c(2);
  ReplicaOptions small;
  small.author_ops_per_window = 50;
  small.window_ms = 10000;
  c.replicas_[1] = c.Open(1, ":memory:", std::move(small));
  c.Share();
  // The author writes 120 ops; the receiver takes 50 per window, refuses the rest ("rate")
  // and its mark stays below them, so later pulls bring them once the window passed.
  for (int i = 0; i < 120; ++i)
    ASSERT_TRUE(c.R(0).Put("p", "c", "k" + std::to_string(i), "v").ok());
  c.Round();
  EXPECT_GT(c.R(1).Counters().refused.at("rate"), 0u);
  EXPECT_FALSE(c.Agree());
  for (int round = 0; round < 40 && !c.Agree(); ++round) c.Round();
  EXPECT_TRUE(c.Agree());
  // Locally, a writer over its own rate is told so.
  ReplicaOptions tiny;
  tiny.author_ops_per_window = 3;
  auto r = c.Open(0, ":memory:", std::move(tiny));
  r->SetAuthority(c.authority_, c.Peers());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r->Put("p", "c", "x", "v").ok());
  EXPECT_EQ(r->Put("p", "c", "x", "v").code(), "busy");
}

TEST(AppDataReplica, ANodeBackAfterThousandsOfWritesFetchesThemOnceInBoundedAnswers) {
  Cluster c(2);
  c.down_.insert(1);
  for (int i = 0; i < 3000; ++i)
    ASSERT_TRUE(c.R(0).Put("p", "c", "k" + std::to_string(i), std::string(300, 'v')).ok());
  c.Round();  // the pushes to 1 are lost
  c.down_.clear();
  size_t largest = 0, total = 0;
  for (int round = 0; round < 10 && !c.Agree(); ++round) {
    c.clock_.Advance(1000);
    std::vector<Outgoing> out;
    c.R(1).Tick(&out);  // its pull
    std::vector<std::pair<size_t, Outgoing>> queue;
    for (auto& o : out) queue.emplace_back(1, std::move(o));
    // Deliver by hand to see each answer's size.
    for (size_t step = 0; step < queue.size(); ++step) {
      auto [from, m] = queue[step];
      const size_t to = static_cast<size_t>(std::stoi(m.to.substr(1)));
      largest = std::max(largest, m.body.size());
      total += m.body.size();
      std::vector<Outgoing> more;
      ASSERT_TRUE(
          c.R(to)
              .Receive(Hex(c.keys_[from]), Cluster::Url(from), m.type, *json::Parse(m.body), &more)
              .ok());
      for (auto& o : more) queue.emplace_back(to, std::move(o));
    }
  }
  EXPECT_TRUE(c.Agree());
  EXPECT_LE(largest, 512u * 1024 + 4096) << "answers stay within the batch limit";
  // Everything once: the bytes pulled are about the ops' own size, not twice it.
  const size_t ops_bytes = 3000 * (300 + 250);
  EXPECT_LT(total, ops_bytes * 3 / 2) << total;
  // In step now: a pull costs only the marks.
  const size_t again = c.Round();
  EXPECT_LT(again, 2000u);
}

TEST(AppDataReplica, PushesThatOvertakeEachOtherStillMoveTheMarkSoPullsSendNothingTwice) {
  Cluster c(2);
  ReplicaOptions small;
  small.max_batch_bytes = 2000;  // a few ops per push
  c.replicas_[0] = c.Open(0, ":memory:", std::move(small));
  c.Share();
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(c.R(0).Put("p", "c", "k" + std::to_string(i), std::string(400, 'v')).ok());
  std::vector<Outgoing> out;
  c.R(0).Tick(&out);
  std::vector<std::pair<size_t, Outgoing>> pushes;
  for (auto& o : out) {
    if (o.type == "appdata") pushes.emplace_back(0, std::move(o));
  }
  ASSERT_GT(pushes.size(), 3u);
  std::reverse(pushes.begin(), pushes.end());  // the last one first
  c.Deliver(std::move(pushes));
  EXPECT_TRUE(c.Agree());
  // Replica 1's mark covers all 20: its next pull carries marks only, and no op comes back
  // (3 s later: the pushes no longer count as live, only the mark can spare the resend).
  c.clock_.Advance(3000);
  std::vector<Outgoing> pull;
  c.R(1).Tick(&pull);
  ASSERT_EQ(pull.size(), 1u);
  EXPECT_EQ(pull[0].type, "appsync");
  std::vector<Outgoing> answer;
  ASSERT_TRUE(
      c.R(0)
          .Receive(Hex(c.keys_[1]), Cluster::Url(1), "appsync", *json::Parse(pull[0].body), &answer)
          .ok());
  EXPECT_TRUE(answer.empty()) << answer[0].body.substr(0, 200);
}

TEST(AppDataReplica, TombstonesExpireAndANodeAwayLongerFetchesEverythingAgain) {
  test::TempDir dir;
  Cluster c(2, dir.path());
  ASSERT_TRUE(c.R(0).Put("p", "c", "gone", "v").ok());
  ASSERT_TRUE(c.R(0).Put("p", "c", "kept", "v").ok());
  ASSERT_TRUE(c.R(1).Put("p", "c", "mine", "v").ok());
  c.Round();
  c.Round();
  ASSERT_TRUE(c.R(0).Delete("p", "c", "gone").ok());
  c.Round();
  ASSERT_TRUE(c.Agree());
  EXPECT_EQ(*c.R(0).StatusJson().find("plugins")->find("p")->find_int("tombstones"), 1);
  // 31 days later the tombstone is dropped; the data hash does not change (tombstones are
  // not part of it).
  const std::string hash = c.R(0).DataHash("p");
  c.clock_.Advance(31LL * 24 * 3600 * 1000);
  c.Round();
  EXPECT_EQ(*c.R(0).StatusJson().find("plugins")->find("p")->find_int("tombstones"), 0);
  EXPECT_EQ(c.R(0).DataHash("p"), hash);
  // Replica 1 last exchanged app data 31 days ago: reopened, it pulls everything again from
  // nothing (its marks may count on tombstones the others dropped); replica 0, which heard
  // nobody meanwhile either, drops nothing (it may be all that is left of some data).
  c.replicas_[1].reset();
  c.clock_.Advance(31LL * 24 * 3600 * 1000);
  c.replicas_[1] = c.Open(1, dir.Sub("1.db"));
  c.Share();
  std::vector<Outgoing> pull;
  c.clock_.Advance(1000);
  c.R(1).Tick(&pull);
  ASSERT_FALSE(pull.empty());
  EXPECT_EQ(json::Parse(pull.back().body)->find("marks")->find("p")->as_object().size(), 0u)
      << pull.back().body << json::Serialize(c.R(1).StatusJson());
  c.Round();
  c.Round();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(c.Get(i, "kept"), "v") << i;
    EXPECT_EQ(c.Get(i, "mine"), "v") << i;
  }
  EXPECT_TRUE(c.Agree());
}

}  // namespace
}  // namespace peerstack::appdata
