// Checkpoints in the ledger (docs/protocol.md, "Checkpoints"): what makes one valid, what it
// prunes and voids, and the package a node without the pruned events starts from.
#include "protocol/checkpoint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "protocol/ledger.h"

namespace peerstack::protocol {
namespace {

std::string Hex(const crypto::SigningKey& k) {
  return crypto::HexEncode(k.public_key().data(), 32);
}

class CheckpointTest : public ::testing::Test {
 protected:
  // A network founded by keys 0..founders-1.
  void Found(size_t founders) {
    for (int i = 0; i < 8; ++i) keys_.push_back(crypto::SigningKey::Generate());
    GenesisParams p;
    p.code_hash = "c0de";
    for (size_t i = 1; i < founders; ++i) p.founders.emplace_back(Hex(keys_[i]), Url(i));
    genesis_ = Encode(*MakeGenesis(keys_[0], Url(0), 1000, p));
    ledger_.emplace(std::move(Ledger::FromGenesis(genesis_)).value());
  }
  static std::string Url(size_t i) { return "http://k" + std::to_string(i); }

  std::string Event(const std::string& kind, json::Value body, size_t author,
                    std::vector<std::string> parents = {}) {
    protocol::Event e;
    e.kind = kind;
    e.parents = parents.empty() ? ledger_->Heads() : std::move(parents);
    e.time_ms = 3000;
    e.body = std::move(body);
    return Encode(*Sign(std::move(e), keys_[author]));
  }
  std::string Admit(size_t joiner, const std::vector<size_t>& approvers) {
    const JoinRequest req =
        MakeJoinRequest(keys_[joiner], Url(joiner), "c0de", ledger_->network_id(), "n", 2000);
    std::vector<Approval> approvals;
    for (size_t a : approvers) {
      approvals.push_back(MakeApproval(keys_[a], ledger_->network_id(), req.Hash()));
    }
    return Event("member-added", Ledger::MemberAddedBody(req, approvals), 0);
  }
  std::string Checkpoint(const CheckpointProposal& p, const std::vector<size_t>& approvers,
                         size_t author = 0) {
    std::vector<Approval> approvals;
    for (size_t a : approvers) {
      approvals.push_back(MakeCheckpointApproval(keys_[a], ledger_->network_id(), p));
    }
    return Event("checkpoint", Ledger::CheckpointBody(p, approvals), author, p.cut);
  }
  std::string AddError(const std::string& wire) {
    auto r = ledger_->Add(wire);
    return r.ok() ? "" : r.status().message();
  }
  void Add(const std::string& wire) { ASSERT_EQ(AddError(wire), ""); }

  std::vector<crypto::SigningKey> keys_;
  std::string genesis_;
  std::optional<Ledger> ledger_;
};

TEST_F(CheckpointTest, AQuorumOfTheFoundersMakesTheFirstAndTheLedgerPrunesBelowIt) {
  Found(1);
  Add(Admit(1, {0}));
  Add(Admit(2, {0, 1}));
  const std::string before = ledger_->StateHash();
  EXPECT_EQ(ledger_->events_since_checkpoint(), 2u);
  auto p = ledger_->ProposeCheckpoint();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->seq, 1);
  const Ledger::History history = ledger_->MembershipHistory();
  // The first checkpoint is signed by the members the genesis names: key 0 alone.
  Add(Checkpoint(*p, {0}));
  // Who was a member when (app data's write rules) survives the pruning.
  EXPECT_EQ(ledger_->MembershipHistory().member, history.member);
  EXPECT_EQ(ledger_->MembershipHistory().publisher, history.publisher);
  EXPECT_EQ(ledger_->checkpoint_seq(), 1);
  EXPECT_EQ(ledger_->StateHash(), before);
  EXPECT_EQ(ledger_->size(), 2u);  // the cut (one event) and the checkpoint
  EXPECT_EQ(ledger_->events_since_checkpoint(), 0u);
  EXPECT_EQ(ledger_->checkpoint_signers().size(), 3u);  // the next one: the cut's members
  // The network goes on above it; a node with nothing but the genesis and the package
  // rebuilds the same state.
  Add(Admit(3, {0, 1}));
  auto fresh = Ledger::FromCheckpoint(genesis_, ledger_->CheckpointPackage());
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  for (const std::string& w : ledger_->AllInOrder()) ASSERT_TRUE(fresh->Add(w).ok());
  EXPECT_EQ(fresh->StateHash(), ledger_->StateHash());
  EXPECT_EQ(fresh->Heads(), ledger_->Heads());
  EXPECT_EQ(fresh->RebuiltStateHash(), ledger_->StateHash());
  EXPECT_EQ(fresh->MembershipHistory().member, ledger_->MembershipHistory().member);
  // The second is signed by the members the first named (three: two of them needed).
  auto p2 = ledger_->ProposeCheckpoint();
  ASSERT_TRUE(p2.ok());
  EXPECT_NE(AddError(Checkpoint(*p2, {0})).find("needs 2"), std::string::npos);
  Add(Checkpoint(*p2, {1, 2}));
  EXPECT_EQ(ledger_->checkpoint_seq(), 2);
  auto second = Ledger::FromCheckpoint(genesis_, ledger_->CheckpointPackage());
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->StateHash(), ledger_->StateHash());
}

TEST_F(CheckpointTest, ForgedCheckpointsAreRefusedAndChangeNothing) {
  Found(4);  // the first checkpoint needs 3 of the 4 founders
  Add(Admit(4, {0, 1, 2}));
  const std::string hash = ledger_->StateHash();
  const size_t size = ledger_->size();
  auto p = ledger_->ProposeCheckpoint();
  ASSERT_TRUE(p.ok());
  auto refused = [&](const std::string& wire, const std::string& why) {
    const std::string error = AddError(wire);
    EXPECT_NE(error.find(why), std::string::npos) << error;
    EXPECT_EQ(ledger_->StateHash(), hash);
    EXPECT_EQ(ledger_->size(), size);
    EXPECT_EQ(ledger_->checkpoint_seq(), 0);
  };
  refused(Checkpoint(*p, {0, 1}), "needs 3");
  refused(Checkpoint(*p, {0, 1, 4}), "does not name");  // 4 is a member, not a founder
  refused(Checkpoint(*p, {0, 1, 5}), "does not name");  // 5 is nobody
  refused(Checkpoint(*p, {0, 0, 1}), "duplicate approver");
  refused(Checkpoint(*p, {0, 1, 2}, /*author=*/5), "author was not a member");
  CheckpointProposal state = *p;
  state.state = std::string(64, 'a');
  refused(Checkpoint(state, {0, 1, 2}), "state is not the one stated");
  CheckpointProposal members = *p;
  members.members = std::string(64, 'b');
  refused(Checkpoint(members, {0, 1, 2}), "members are not the ones stated");
  CheckpointProposal later = *p;
  later.seq = 2;
  refused(Checkpoint(later, {0, 1, 2}), "not the next one");
  CheckpointProposal deeper = *p;
  deeper.depths[0] += 1;
  refused(Checkpoint(deeper, {0, 1, 2}), "depth");
  // Approvals over another proposal than the one carried.
  std::vector<Approval> approvals;
  for (size_t a : {0, 1, 2}) approvals.push_back(MakeCheckpointApproval(keys_[a], "x", *p));
  refused(Event("checkpoint", Ledger::CheckpointBody(*p, approvals), 0, p->cut),
          "approval signature");
  // And a true one is taken.
  Add(Checkpoint(*p, {0, 1, 2}));
  EXPECT_EQ(ledger_->checkpoint_seq(), 1);
}

TEST_F(CheckpointTest, ATamperedPackageIsRefused) {
  Found(1);
  Add(Admit(1, {0}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0}));
  Add(Admit(2, {0, 1}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0, 1}));
  const json::Value good = ledger_->CheckpointPackage();
  ASSERT_TRUE(Ledger::FromCheckpoint(genesis_, good).ok());
  auto refused = [&](const json::Value& package, const std::string& why) {
    auto l = Ledger::FromCheckpoint(genesis_, package);
    ASSERT_FALSE(l.ok());
    EXPECT_NE(l.status().message().find(why), std::string::npos) << l.status().message();
  };
  {  // a state naming another member
    json::Value p = good;
    p.as_object()["state"].as_object()["state"].as_object()["members"].as_array().push_back(
        json::Object{{"joined", 1}, {"key", Hex(keys_[6])}, {"url", "http://evil"}, {"via", ""}});
    refused(p, "not the signed one");
  }
  {  // the second link's signers swapped for a set of the attacker's
    json::Value p = good;
    p.as_object()["chain"].as_array()[1].as_object()["signers"] = json::Array{Hex(keys_[6])};
    refused(p, "not the members the checkpoint before it named");
  }
  {  // the first link left out
    json::Value p = good;
    auto& chain = p.as_object()["chain"].as_array();
    chain.erase(chain.begin());
    refused(p, "skips");
  }
  {  // a cut event replaced
    json::Value p = good;
    p.as_object()["cut"].as_array()[0] = Admit(5, {0, 1});
    refused(p, "not of the cut");
  }
  {  // for another network
    const std::string other = Encode(*MakeGenesis(keys_[0], Url(0), 1000, GenesisParams{}));
    auto l = Ledger::FromCheckpoint(other, good);
    EXPECT_FALSE(l.ok());
  }
}

// An event concurrent with the checkpoint (not above every cut event) is void on every node
// that holds the checkpoint: dropped when it was there first (and reported, for its author to
// sign anew), refused when it comes after. Both orders end in the same state and heads.
TEST_F(CheckpointTest, AnEventConcurrentWithTheCheckpointIsVoidInEitherOrder) {
  Found(1);
  Add(Admit(1, {0}));
  const std::vector<std::string> base = ledger_->Heads();
  // Two events on the same parent: the cut is both of them.
  const std::string a = Event("address", Ledger::AddressBody("http://k0b", 1), 0, base);
  const std::string b = Event("address", Ledger::AddressBody("http://k1b", 1), 1, base);
  Add(a);
  Add(b);
  auto p = ledger_->ProposeCheckpoint();
  ASSERT_EQ(p->cut.size(), 2u);
  const std::string k = Checkpoint(*p, {0});
  // Above one of them only: concurrent with the checkpoint.
  const std::string concurrent =
      Event("address", Ledger::AddressBody("http://moved", 2), 1, {HashOf(b)});
  Ledger first = *ledger_;  // the concurrent event, then the checkpoint
  ASSERT_TRUE(first.Add(concurrent).ok());
  ASSERT_TRUE(first.Add(k).ok());
  const std::vector<std::string> voided = first.TakeVoided();
  ASSERT_EQ(voided.size(), 1u);
  EXPECT_EQ(voided[0], concurrent);
  Ledger after = *ledger_;  // the checkpoint, then the concurrent event
  ASSERT_TRUE(after.Add(k).ok());
  auto late = after.Add(concurrent);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.status().message().find("older than the checkpoint"), std::string::npos);
  EXPECT_EQ(first.StateHash(), after.StateHash());
  EXPECT_EQ(first.Heads(), after.Heads());
  EXPECT_EQ(first.state().FindMemberByKey(Hex(keys_[1]))->url, "http://k1b");
  // One whose parent is below the cut (pruned) waits for a parent that never comes.
  const std::string below = Event("address", Ledger::AddressBody("http://x", 3), 0, base);
  EXPECT_EQ(*after.Add(below), Ledger::Added::kMissingParents);
  // Signed anew above the checkpoint, it takes effect.
  ASSERT_TRUE(
      after.Add(Event("address", Ledger::AddressBody("http://moved", 2), 1, after.Heads())).ok());
  EXPECT_EQ(after.state().FindMemberByKey(Hex(keys_[1]))->url, "http://moved");
}

// A node on a checkpoint takes only a package that extends its chain (or replaces its last
// checkpoint by one of the same sequence with a smaller hash): a chain forked below it, even
// one whose every link is validly signed (by a past signer set), is not taken.
TEST_F(CheckpointTest, ANodeOnACheckpointTakesOnlyAChainThatExtendsItsOwn) {
  Found(1);
  const Ledger genesis_only = *ledger_;
  Add(Admit(1, {0}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0}));
  Add(Admit(2, {0, 1}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0, 1}));
  const Ledger ours = *ledger_;
  // Ours, one checkpoint further: taken.
  Add(Admit(3, {0, 1, 2}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0, 1, 2}));
  EXPECT_TRUE(ours.Prefers(ledger_->CheckpointPackage()));
  EXPECT_FALSE(ledger_->Prefers(ours.CheckpointPackage()));  // behind: not taken
  // The founder alone (the first checkpoint's signer set) forks the chain at the first link
  // and makes it longer: valid from the genesis, so a joiner would take it; we do not.
  ledger_.emplace(genesis_only);
  Add(Admit(5, {0}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0}));
  Add(Admit(6, {0, 5}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0, 5}));
  Add(Admit(7, {0, 5, 6}));
  Add(Checkpoint(*ledger_->ProposeCheckpoint(), {0, 5, 6}));
  const json::Value forked = ledger_->CheckpointPackage();
  ASSERT_TRUE(Ledger::FromCheckpoint(genesis_, forked).ok());
  EXPECT_FALSE(ours.Prefers(forked));
}

TEST(CheckpointProposal, ParsingIsStrict) {
  CheckpointProposal p;
  p.seq = 1;
  p.cut = {std::string(64, '1'), std::string(64, '2')};
  p.depths = {3, 4};
  p.state = std::string(64, 'a');
  p.members = std::string(64, 'b');
  ASSERT_TRUE(ParseCheckpointProposal(p.ToJson()).ok());
  EXPECT_EQ(*ParseCheckpointProposal(p.ToJson()), p);
  auto bad = [](CheckpointProposal q) { return !ParseCheckpointProposal(q.ToJson()).ok(); };
  CheckpointProposal q = p;
  std::swap(q.cut[0], q.cut[1]);
  EXPECT_TRUE(bad(q));  // unsorted
  q = p;
  q.depths.pop_back();
  EXPECT_TRUE(bad(q));
  q = p;
  q.seq = 0;
  EXPECT_TRUE(bad(q));
  q = p;
  q.state = "zz";
  EXPECT_TRUE(bad(q));
  q = p;
  q.cut.assign(17, std::string(64, '1'));
  EXPECT_TRUE(bad(q));
  json::Value extra = p.ToJson();
  extra.as_object()["x"] = 1;
  EXPECT_FALSE(ParseCheckpointProposal(extra).ok());
}

}  // namespace
}  // namespace peerstack::protocol
