// The wire rule for peer messages (protocol/envelope.h): sealed, verified over the raw bytes,
// opened strictly, the sender bound to its key's URL in the ledger.
#include "protocol/envelope.h"

#include <gtest/gtest.h>

#include "crypto/encoding.h"
#include "protocol/genesis.h"

namespace peerstack::protocol {
namespace {

TEST(Envelope, SealedMessagesVerifyAndOpenAsSent) {
  const auto key = crypto::SigningKey::Generate();
  const Envelope e{"http://stranger", "http://me", "sync", json::Object{{"heads", json::Array{}}}};
  const Sealed s = Seal(e, key);
  EXPECT_EQ(s.path, "/p2p/sync");
  ASSERT_TRUE(Verify("sync", s.body, &s.key_hex, &s.sig_hex).ok());
  auto opened = Open("sync", s.body, s.key_hex, nullptr, "http://me");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->from, "http://stranger");
  EXPECT_EQ(opened->to, "http://me");
  EXPECT_EQ(opened->type, "sync");
  EXPECT_EQ(json::Serialize(opened->body), json::Serialize(e.body));
}

TEST(Envelope, RefusesUnsignedTamperedAndReplayedAsAnotherType) {
  const auto key = crypto::SigningKey::Generate();
  const Sealed s = Seal(Envelope{"http://x", "", "join", json::Object{}}, key);
  EXPECT_EQ(Verify("join", s.body, nullptr, &s.sig_hex).code(), "unsigned");
  std::string tampered = s.body;
  tampered[tampered.size() / 2] ^= 1;
  EXPECT_EQ(Verify("join", tampered, &s.key_hex, &s.sig_hex).code(), "bad_signature");
  EXPECT_EQ(Verify("approval", s.body, &s.key_hex, &s.sig_hex).code(), "bad_signature");
  const std::string other =
      crypto::HexEncode(crypto::SigningKey::Generate().public_key().data(), 32);
  EXPECT_EQ(Verify("join", s.body, &other, &s.sig_hex).code(), "bad_signature");
  EXPECT_EQ(Verify("join", std::string(kMaxEnvelopeBytes + 1, ' '), &s.key_hex, &s.sig_hex).code(),
            "too_large");
}

TEST(Envelope, OpensOnlyTheExactShape) {
  const std::string key = "00";
  EXPECT_EQ(Open("sync", R"({"body":{},"body":{},"from":"x"})", key, nullptr, "").status().code(),
            "bad_json");
  EXPECT_EQ(Open("sync", R"({"body":{},"from":"x"} x)", key, nullptr, "").status().code(),
            "bad_json");
  EXPECT_EQ(Open("sync", R"({"body":{},"from":"x","extra":1})", key, nullptr, "").status().code(),
            "bad_message");
  EXPECT_EQ(Open("sync", R"({"body":[],"from":"x"})", key, nullptr, "").status().code(),
            "bad_message");
  EXPECT_EQ(Open("sync", R"({"body":{}})", key, nullptr, "").status().code(), "bad_message");
}

TEST(Envelope, AMembersMessageComesFromItsLedgerUrlWhateverItSays) {
  const auto key = crypto::SigningKey::Generate();
  auto ledger = Ledger::FromGenesis(Encode(*MakeGenesis(key, "http://member", 0)));
  ASSERT_TRUE(ledger.ok());
  const Sealed s = Seal(Envelope{"http://somewhere-else", "", "ping", json::Object{}}, key);
  auto opened = Open("ping", s.body, s.key_hex, &*ledger, "http://me");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->from, "http://member");
  // A stranger's "from" is taken as it is (it is where the answer goes; rate-limited there).
  const auto stranger = crypto::SigningKey::Generate();
  const Sealed t = Seal(Envelope{"http://somewhere-else", "", "ping", json::Object{}}, stranger);
  EXPECT_EQ(Open("ping", t.body, t.key_hex, &*ledger, "http://me")->from, "http://somewhere-else");
}

// A member that lost its state and answers elsewhere asks to sync from its new URL: answered
// there (as a stranger would be), never at another member's URL.
TEST(Envelope, AMembersSyncFromAUrlOfNoMemberKeepsItsUrl) {
  const auto key = crypto::SigningKey::Generate();
  const auto other = crypto::SigningKey::Generate();
  GenesisParams params;
  params.founders.emplace_back(crypto::HexEncode(other.public_key().data(), 32), "http://other");
  auto ledger = Ledger::FromGenesis(Encode(*MakeGenesis(key, "http://member", 0, params)));
  ASSERT_TRUE(ledger.ok());
  const Sealed moved = Seal(Envelope{"http://moved", "", "sync", json::Object{}}, key);
  EXPECT_EQ(Open("sync", moved.body, moved.key_hex, &*ledger, "http://me")->from, "http://moved");
  const Sealed posing = Seal(Envelope{"http://other", "", "sync", json::Object{}}, key);
  EXPECT_EQ(Open("sync", posing.body, posing.key_hex, &*ledger, "http://me")->from,
            "http://member");
  const Sealed ping = Seal(Envelope{"http://moved", "", "ping", json::Object{}}, key);
  EXPECT_EQ(Open("ping", ping.body, ping.key_hex, &*ledger, "http://me")->from, "http://member");
}

}  // namespace
}  // namespace peerstack::protocol
