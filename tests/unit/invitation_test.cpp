// Invitations (protocol/invitation.h): the token, the ledger's rule for member-added events
// on a network that admits by invitation, and members judging joins: a missing, reused,
// expired, forged or foreign invitation, one made by a member who left, and one invitation
// used at two sponsors at once.
#include "protocol/invitation.h"

#include <gtest/gtest.h>

#include <memory>

#include "crypto/encoding.h"
#include "engine_wires.h"
#include "protocol/engine.h"
#include "protocol/ledger.h"

namespace peerstack::protocol {
namespace {

std::string Hex(const crypto::SigningKey& k) {
  return crypto::HexEncode(k.public_key().data(), 32);
}

class CountingRandom final : public Random {
 public:
  uint64_t Next() override { return ++n_ * 0x9E3779B97F4A7C15ull; }

 private:
  uint64_t n_ = 0;
};

constexpr int64_t kNow = 1'000'000;
constexpr int64_t kDay = 86'400'000;

TEST(InvitationToken, RoundTripsAndRefusesWhatIsNotOne) {
  const auto key = crypto::SigningKey::Generate();
  const Invitation inv =
      MakeInvitation(key, std::string(64, 'a'), std::string(32, 'b'), kNow + kDay, "for Ana");
  auto back = ParseInvitationToken(InvitationToken(inv));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Hash(), inv.Hash());
  EXPECT_EQ(back->note, "for Ana");
  for (const std::string& bad : {std::string(), std::string("zz"), std::string(3000, 'a'),
                                 crypto::HexEncode("{}"), crypto::HexEncode("[1,2]")}) {
    EXPECT_EQ(ParseInvitationToken(bad).status().code(), "bad_invitation") << bad.substr(0, 20);
  }
  // Any change to the signed fields breaks the signature.
  Invitation forged = inv;
  forged.expires_ms += kDay;
  auto f = ParseInvitationToken(InvitationToken(forged));
  EXPECT_EQ(f.status().code(), "bad_invitation");
  EXPECT_NE(f.status().message().find("not signed by the member it names"), std::string::npos)
      << f.status().message();
  Invitation long_note = inv;
  long_note.note = std::string(kMaxInvitationNote + 1, 'x');
  EXPECT_EQ(ParseInvitation(long_note.ToJson()).status().code(), "bad_invitation");
}

// Members judging joins: three founders (quorum 2 of 3), joiners with and without invitations.
class InviteEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (size_t i = 0; i < kUrls.size(); ++i) keys_.push_back(crypto::SigningKey::Generate());
    GenesisParams params;
    params.admission = "invite";
    for (size_t i = 1; i < 3; ++i) params.founders.emplace_back(Hex(keys_[i]), kUrls[i]);
    genesis_ = Encode(*MakeGenesis(keys_[0], kUrls[0], kNow, params));
    for (size_t i = 0; i < 3; ++i) {
      EngineConfig config;
      config.url = kUrls[i];
      engines_[i] = std::make_unique<Engine>(
          config, keys_[i], std::move(Ledger::FromGenesis(genesis_)).value(), &random_);
      net_.engines[kUrls[i]] = engines_[i].get();
    }
  }
  // A joiner engine (index i >= 3) presenting invitation, asking the member `seed`.
  void Joiner(size_t i, json::Value invitation, size_t seed = 0) {
    EngineConfig config;
    config.url = kUrls[i];
    config.invitation = std::move(invitation);
    engines_[i] = std::make_unique<Engine>(config, keys_[i], kUrls[seed], &random_);
    net_.engines[kUrls[i]] = engines_[i].get();
  }
  // Ticks the joiners (a few rounds) and delivers everything; what each was refused.
  std::map<size_t, std::vector<std::string>> Run(const std::vector<size_t>& joiners,
                                                 int64_t now = kNow) {
    std::map<size_t, std::vector<std::string>> refusals;
    for (int t = 0; t < 3; ++t) {
      for (size_t j : joiners) {
        if (!engines_[j]->is_member()) net_.Tick(kUrls[j], now + t * 3000);
      }
      while (!net_.wire.empty()) {
        Envelope e = std::move(net_.wire.front());
        net_.wire.pop_front();
        if (!net_.engines.count(e.to)) continue;
        Output out;
        net_.engines.at(e.to)->Receive(e, now + t * 3000, &out);
        for (size_t j : joiners) {
          if (e.to == kUrls[j])
            refusals[j].insert(refusals[j].end(), out.refusals.begin(), out.refusals.end());
        }
        net_.Post(out);
      }
    }
    return refusals;
  }
  Invitation InviteBy(size_t member, int64_t ttl = kDay) {
    auto inv = engines_[member]->Invite(kNow + ttl, "");
    EXPECT_TRUE(inv.ok()) << inv.status().ToString();
    return *inv;
  }
  static bool Has(const std::vector<std::string>& refusals, const std::string& what) {
    for (const auto& r : refusals) {
      if (r.find(what) != std::string::npos) return true;
    }
    return false;
  }

  const std::vector<std::string> kUrls = {"http://a", "http://b", "http://c", "http://j",
                                          "http://k", "http://l", "http://m"};
  std::vector<crypto::SigningKey> keys_;
  std::string genesis_;
  CountingRandom random_;
  std::unique_ptr<Engine> engines_[7];
  Wires net_;
};

TEST_F(InviteEngineTest, MembersAdmitOnlyWithAValidUnusedInvitationAndSayWhy) {
  Joiner(3, nullptr);
  auto r = Run({3});
  EXPECT_FALSE(engines_[3]->is_member());
  EXPECT_TRUE(Has(r[3], "admits members by invitation")) << (r[3].empty() ? "no refusal" : r[3][0]);

  const Invitation inv = InviteBy(1);
  Joiner(4, inv.ToJson());
  Run({4});
  ASSERT_TRUE(engines_[4]->is_member());
  EXPECT_EQ(engines_[0]->ledger()->state().invitations_used.count(inv.Hash()), 1u);

  Joiner(5, inv.ToJson());  // the same invitation again
  r = Run({5});
  EXPECT_FALSE(engines_[5]->is_member());
  EXPECT_TRUE(Has(r[5], "used already")) << (r[5].empty() ? "no refusal" : r[5][0]);

  const Invitation soon = InviteBy(0, 1000);  // expires a second after kNow
  Joiner(6, soon.ToJson());
  r = Run({6}, kNow + 60'000);
  EXPECT_FALSE(engines_[6]->is_member());
  EXPECT_TRUE(Has(r[6], "expired")) << (r[6].empty() ? "no refusal" : r[6][0]);
  EXPECT_EQ(engines_[0]->ledger()->state().members.size(), 4u);
  for (size_t i : {1, 2, 4})
    EXPECT_EQ(engines_[i]->ledger()->StateHash(), engines_[0]->ledger()->StateHash()) << i;
}

TEST_F(InviteEngineTest, AForgedInvitationOrOneOfAMemberWhoLeftIsRefused) {
  Invitation forged = InviteBy(0);
  forged.inviter = Hex(keys_[1]);  // claims another member made it
  Joiner(3, forged.ToJson());
  auto r = Run({3});
  EXPECT_FALSE(engines_[3]->is_member());
  // A forged request gets no answer at all from a member that cannot verify it... but the
  // invitation is checked after the request's own signature, so the joiner hears why.
  EXPECT_TRUE(Has(r[3], "not signed by the member it names"))
      << (r[3].empty() ? "no refusal" : r[3][0]);

  const Invitation by_c = InviteBy(2);
  Output out;
  ASSERT_TRUE(engines_[2]->Leave(kNow, &out).ok());
  net_.Post(out);
  net_.Drain(kNow);
  ASSERT_FALSE(engines_[0]->ledger()->IsMember(Hex(keys_[2])));
  Joiner(4, by_c.ToJson());
  r = Run({4});
  EXPECT_FALSE(engines_[4]->is_member());
  EXPECT_TRUE(Has(r[4], "not a member")) << (r[4].empty() ? "no refusal" : r[4][0]);
}

// Two nodes holding one invitation ask two different members at the same moment: one is
// admitted, the other refused, and every member holds the same state.
TEST_F(InviteEngineTest, OneInvitationAtTwoSponsorsAtOnceAdmitsOneNode) {
  const Invitation inv = InviteBy(0);
  Joiner(3, inv.ToJson(), 0);
  Joiner(4, inv.ToJson(), 1);
  auto r = Run({3, 4});
  EXPECT_NE(engines_[3]->is_member(), engines_[4]->is_member());
  const size_t refused = engines_[3]->is_member() ? 4 : 3;
  EXPECT_FALSE(r[refused].empty());
  EXPECT_EQ(engines_[0]->ledger()->state().members.size(), 4u);
  for (size_t i = 1; i < 3; ++i)
    EXPECT_EQ(engines_[i]->ledger()->StateHash(), engines_[0]->ledger()->StateHash());
}

TEST_F(InviteEngineTest, OnlyAMemberOfAnInviteNetworkMakesInvitations) {
  GenesisParams open;
  const std::string g = Encode(*MakeGenesis(keys_[0], kUrls[0], kNow, open));
  Engine e(EngineConfig{}, keys_[0], std::move(Ledger::FromGenesis(g)).value(), &random_);
  EXPECT_EQ(e.Invite(kNow + kDay, "").status().code(), "open_network");
  Joiner(3, nullptr);
  EXPECT_EQ(engines_[3]->Invite(kNow + kDay, "").status().code(), "not_member");
  EXPECT_EQ(engines_[0]->Invite(kNow + kDay, std::string(201, 'x')).status().code(), "bad_request");
}

}  // namespace
}  // namespace peerstack::protocol
