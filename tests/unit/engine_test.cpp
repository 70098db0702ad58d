// Engine behaviour that is easier to pin down with one engine than in the simulator.
#include <gtest/gtest.h>

#include "protocol/engine.h"

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

}  // namespace
}  // namespace peerstack::protocol
