// Engine behaviour that is easier to pin down with one engine than in the simulator.
#include "protocol/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "crypto/encoding.h"
#include "engine_wires.h"

namespace peerstack::protocol {
namespace {

class CountingRandom final : public Random {
 public:
  uint64_t Next() override { return ++n_; }

 private:
  uint64_t n_ = 0;
};

TEST(Engine, StrangersCannotUseSyncAnswersAsAReflector) {
  const auto key = crypto::SigningKey::Generate();
  const std::string genesis = Encode(*MakeGenesis(key, "http://me", 0));
  CountingRandom random;
  EngineConfig config;
  config.url = "http://me";
  Engine engine(config, key, std::move(Ledger::FromGenesis(genesis)).value(), &random);
  auto sync_from = [&](const std::string& from, int64_t now) {
    Output out;
    engine.Receive(Envelope{from, "http://me", "sync", json::Object{{"heads", json::Array{}}}}, now,
                   &out);
    return out.messages.size();
  };
  // A joiner's first pull is answered...
  EXPECT_EQ(sync_from("http://victim", 1000), 1u);
  // ...but not again to the same URL within 2 s, whoever signs the request.
  EXPECT_EQ(sync_from("http://victim", 1500), 0u);
  EXPECT_EQ(sync_from("http://victim", 3100), 1u);
  // And at most 20 strangers a second in all.
  size_t answered = 0;
  for (int i = 0; i < 50; ++i) answered += sync_from("http://s" + std::to_string(i), 5000);
  EXPECT_EQ(answered, 20u);
}

// Four founders, one silent: a join needs the three others (quorum 3 of 4). J2's request is
// out (its challenges held back) when J1 is admitted; from then J2 needs 4 approvals of 5,
// so J1's too, though J1 was not a member when J2's request was forwarded. The sponsor asks
// J1 once it has admitted it, and J1 takes part even when that request reaches it before
// the event admitting it (reversed order). Nothing is retried here: no tick after the start.
TEST(Engine, TheSponsorAsksMembersAdmittedWhileAJoinIsPending) {
  for (bool reversed : {false, true}) {
    SCOPED_TRACE(reversed ? "each output delivered in reverse" : "in order");
    const std::vector<std::string> urls = {"http://a", "http://b",  "http://c",
                                           "http://d", "http://j1", "http://j2"};
    std::vector<crypto::SigningKey> keys;
    for (size_t i = 0; i < urls.size(); ++i) keys.push_back(crypto::SigningKey::Generate());
    GenesisParams params;
    for (size_t i = 1; i < 4; ++i) {
      params.founders.emplace_back(crypto::HexEncode(keys[i].public_key().data(), 32), urls[i]);
    }
    const std::string genesis = Encode(*MakeGenesis(keys[0], urls[0], 0, params));
    CountingRandom random;
    std::vector<std::unique_ptr<Engine>> engines;
    Wires net;
    net.reversed = reversed;
    net.silent.insert("http://d");
    for (size_t i = 0; i < urls.size(); ++i) {
      EngineConfig config;
      config.url = urls[i];
      if (i < 4) {
        engines.push_back(std::make_unique<Engine>(
            config, keys[i], std::move(Ledger::FromGenesis(genesis)).value(), &random));
      } else {
        engines.push_back(std::make_unique<Engine>(config, keys[i], urls[0], &random));
      }
      net.engines[urls[i]] = engines.back().get();
    }
    const int64_t now = 1000;
    net.hold = [](const Envelope& e) { return e.to == "http://j2" && e.type == "challenge"; };
    net.Tick("http://j2", now);
    net.Drain(now);
    ASSERT_EQ(engines[0]->pending_joins(), 1u);  // J2's, waiting for its answers
    net.Tick("http://j1", now);
    net.Drain(now);
    ASSERT_TRUE(engines[4]->is_member());
    ASSERT_EQ(engines[0]->ledger()->state().members.size(), 5u);
    net.Release(now);
    EXPECT_TRUE(engines[5]->is_member());
    EXPECT_EQ(engines[0]->ledger()->state().members.size(), 6u);
  }
}

// One clock an hour off. Membership, events, gossip and sync do not read the clock's value
// (liveness only measures intervals on one node's own clock); join requests do: they must be
// within 5 minutes of each judging member's clock (replays). So a member whose clock is off
// refuses every join it judges, and the others admit without it while they are a quorum;
// a joiner whose clock is off is refused by everyone, with the reason.
TEST(Engine, AClockAnHourOffRefusesTheJoinsItJudgesAndIsRefusedWhenItJoins) {
  constexpr int64_t kHour = 3600 * 1000;
  const std::vector<std::string> urls = {"http://a", "http://b", "http://c", "http://j",
                                         "http://k"};
  std::vector<crypto::SigningKey> keys;
  for (size_t i = 0; i < urls.size(); ++i) keys.push_back(crypto::SigningKey::Generate());
  GenesisParams params;
  for (size_t i = 1; i < 3; ++i) {
    params.founders.emplace_back(crypto::HexEncode(keys[i].public_key().data(), 32), urls[i]);
  }
  const int64_t now = 10 * kHour;
  const std::string genesis = Encode(*MakeGenesis(keys[0], urls[0], now, params));
  CountingRandom random;
  std::vector<std::unique_ptr<Engine>> engines;
  Wires net;
  net.skew["http://c"] = kHour;   // a member an hour ahead
  net.skew["http://k"] = -kHour;  // a joiner an hour behind
  for (size_t i = 0; i < urls.size(); ++i) {
    EngineConfig config;
    config.url = urls[i];
    if (i < 3) {
      engines.push_back(std::make_unique<Engine>(
          config, keys[i], std::move(Ledger::FromGenesis(genesis)).value(), &random));
    } else {
      engines.push_back(std::make_unique<Engine>(config, keys[i], urls[0], &random));
    }
    net.engines[urls[i]] = engines.back().get();
  }
  std::vector<std::string> refusals_j, refusals_k;
  auto joined = [&](size_t who, std::vector<std::string>* refusals) {
    for (int t = 0; t < 3 && !engines[who]->is_member(); ++t) {
      Output out;
      engines[who]->Tick(now + net.Skew(urls[who]) + t * 100, &out);
      net.Post(out);
      // Collect what the joiner is told (its own Receive reports refusals in Output).
      while (!net.wire.empty()) {
        Envelope e = std::move(net.wire.front());
        net.wire.pop_front();
        if (!net.engines.count(e.to)) continue;
        Output o2;
        net.engines.at(e.to)->Receive(e, now + net.Skew(e.to), &o2);
        if (e.to == urls[who])
          refusals->insert(refusals->end(), o2.refusals.begin(), o2.refusals.end());
        net.Post(o2);
      }
    }
    return engines[who]->is_member();
  };
  // j (right clock): a and b approve, c refuses; 2 of 3 is the quorum.
  EXPECT_TRUE(joined(3, &refusals_j));
  ASSERT_FALSE(refusals_j.empty());
  EXPECT_NE(refusals_j[0].find("60 min behind this member's clock"), std::string::npos)
      << refusals_j[0];
  // k (an hour behind): refused by all, and told why; never admitted.
  EXPECT_FALSE(joined(4, &refusals_k));
  ASSERT_FALSE(refusals_k.empty());
  EXPECT_NE(refusals_k[0].find("60 min behind"), std::string::npos) << refusals_k[0];
  EXPECT_EQ(engines[0]->ledger()->state().members.size(), 4u);
  // The member whose clock is off still holds the same state as the others.
  EXPECT_EQ(engines[2]->ledger()->StateHash(), engines[0]->ledger()->StateHash());
}

}  // namespace
}  // namespace peerstack::protocol
