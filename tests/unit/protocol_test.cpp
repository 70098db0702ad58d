#include <gtest/gtest.h>

#include "crypto/encoding.h"
#include "protocol/event.h"
#include "protocol/genesis.h"

namespace peerstack::protocol {
namespace {

TEST(Genesis, CreatesAValidNetworkWithTheAuthorAsOnlyMember) {
  const auto key = crypto::SigningKey::Generate();
  auto g = MakeGenesis(key, "http://127.0.0.1:8080", 1700000000000);
  ASSERT_TRUE(g.ok());
  const std::string wire = Encode(*g);
  auto state = StateFromGenesis(wire);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->network_id, HashOf(wire));
  ASSERT_EQ(state->members.size(), 1u);
  EXPECT_EQ(state->members[0].id, NodeIdFor(key.public_key()));
  EXPECT_EQ(state->members[0].url, "http://127.0.0.1:8080");
  EXPECT_EQ(state->publishers.size(), 1u);
  EXPECT_EQ(state->params.approval_numerator, 2);
  EXPECT_EQ(state->params.approval_denominator, 3);
  EXPECT_EQ(state->StateHash(), StateFromGenesis(wire)->StateHash());
}

TEST(Genesis, RefusesTamperedEvents) {
  const auto key = crypto::SigningKey::Generate();
  const std::string wire = Encode(*MakeGenesis(key, "http://a", 1));
  std::string tampered = wire;
  tampered.replace(tampered.find("http://a"), 8, "http://b");
  EXPECT_FALSE(StateFromGenesis(tampered).ok());
  // Non-canonical bytes of a valid event are refused too (the hash must be unique).
  std::string spaced = wire;
  spaced.insert(1, " ");
  EXPECT_EQ(Decode(spaced).status().code(), "bad_event");
  // Someone else re-signing the event as its author is refused: author must be the member.
  auto other = crypto::SigningKey::Generate();
  auto g = *MakeGenesis(key, "http://a", 1);
  auto resigned = Sign(g, other);
  EXPECT_FALSE(StateFromGenesis(Encode(*resigned)).ok());
}

TEST(Events, SignatureIsBoundToTheKind) {
  const auto key = crypto::SigningKey::Generate();
  Event e;
  e.kind = "genesis";
  e.body = json::Object{{"x", 1}};
  auto signed_event = Sign(e, key);
  ASSERT_TRUE(VerifySignature(*signed_event).ok());
  Event relabelled = *signed_event;
  relabelled.kind = "release";
  EXPECT_FALSE(VerifySignature(relabelled).ok());
}

TEST(Events, DecodeRefusesExtraOrMissingFields) {
  EXPECT_FALSE(Decode("{}").ok());
  EXPECT_FALSE(
      Decode(R"({"author":"","body":{},"kind":"k","parents":[],"sig":"","time":1,"x":1})").ok());
  EXPECT_FALSE(Decode("not json").ok());
}

TEST(NodeId, IsStableAndDerivedFromTheKey) {
  const auto key = crypto::SigningKey::Generate();
  const std::string id = NodeIdFor(key.public_key());
  EXPECT_EQ(id.size(), 40u);
  EXPECT_EQ(NodeIdForHex(crypto::HexEncode(key.public_key().data(), 32)), id);
  EXPECT_EQ(NodeIdForHex("zz"), "");
}

}  // namespace
}  // namespace peerstack::protocol
