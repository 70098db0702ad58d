// The validity rules of member-added events, one by one, with keys the test holds.
#include "protocol/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "crypto/encoding.h"
#include "protocol/invitation.h"

namespace peerstack::protocol {
namespace {

std::string Hex(const crypto::SigningKey& k) {
  return crypto::HexEncode(k.public_key().data(), 32);
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 6; ++i) keys_.push_back(crypto::SigningKey::Generate());
    GenesisParams p;
    p.code_hash = "c0de";
    Found(p);
  }
  // A new network (keys_[0] its founder) with these parameters.
  void Found(const GenesisParams& p) {
    genesis_ = Encode(*MakeGenesis(keys_[0], "http://k0", 1000, p));
    ledger_.emplace(std::move(Ledger::FromGenesis(genesis_)).value());
  }

  JoinRequest Request(size_t joiner, const std::string& code = "c0de",
                      json::Value invitation = nullptr) {
    return MakeJoinRequest(keys_[joiner], "http://k" + std::to_string(joiner), code,
                           ledger_->network_id(), "n" + std::to_string(joiner), 2000,
                           std::move(invitation));
  }

  // A member-added event for `joiner`, authored by `author`, approved by `approvers`, its
  // request carrying `invitation`.
  std::string Admit(size_t joiner, size_t author, const std::vector<size_t>& approvers,
                    std::vector<std::string> parents = {}, const std::string& code = "c0de",
                    json::Value invitation = nullptr) {
    const JoinRequest req = Request(joiner, code, std::move(invitation));
    std::vector<Approval> approvals;
    for (size_t a : approvers)
      approvals.push_back(MakeApproval(keys_[a], ledger_->network_id(), req.Hash()));
    Event e;
    e.kind = "member-added";
    e.parents = parents.empty() ? ledger_->Heads() : parents;
    e.time_ms = 3000;
    e.body = Ledger::MemberAddedBody(req, approvals);
    return Encode(*Sign(std::move(e), keys_[author]));
  }

  std::string AddError(const std::string& wire) { return AddError2(*ledger_, wire); }
  static std::string AddError2(Ledger& l, const std::string& wire) {
    auto r = l.Add(wire);
    return r.ok() ? "" : r.status().message();
  }

  std::vector<crypto::SigningKey> keys_;
  std::string genesis_;
  std::optional<Ledger> ledger_;
};

TEST_F(LedgerTest, AdmitsWithAQuorumOfMembersAsOfTheParents) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);  // 1 member: quorum 1
  EXPECT_TRUE(ledger_->IsMember(Hex(keys_[1])));
  // Two members now: ceil(2/3 x 2) = 2 approvals needed.
  EXPECT_NE(AddError(Admit(2, 0, {0})).find("needs 2"), std::string::npos);
  ASSERT_EQ(*ledger_->Add(Admit(2, 1, {0, 1})), Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().members.size(), 3u);
}

TEST_F(LedgerTest, RefusesApprovalsFromNonMembers) {
  EXPECT_NE(AddError(Admit(1, 0, {3})).find("non-member"), std::string::npos);
  EXPECT_FALSE(ledger_->IsMember(Hex(keys_[1])));
}

TEST_F(LedgerTest, RefusesDuplicateApprovers) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  EXPECT_NE(AddError(Admit(2, 0, {0, 0})).find("duplicate approver"), std::string::npos);
}

TEST_F(LedgerTest, RefusesAnAuthorWhoIsNotAMember) {
  EXPECT_NE(AddError(Admit(1, 4, {0})).find("author was not a member"), std::string::npos);
}

TEST_F(LedgerTest, RefusesReAdmittingAMember) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  EXPECT_NE(AddError(Admit(1, 0, {0, 1})).find("already a member"), std::string::npos);
}

TEST_F(LedgerTest, RefusesAnotherCodeHash) {
  EXPECT_NE(AddError(Admit(1, 0, {0}, {}, "bad")).find("code hash"), std::string::npos);
}

TEST_F(LedgerTest, RefusesApprovalsForAnotherRequest) {
  const JoinRequest req = Request(1);
  const JoinRequest other = Request(2);
  Event e;
  e.kind = "member-added";
  e.parents = ledger_->Heads();
  e.body =
      Ledger::MemberAddedBody(req, {MakeApproval(keys_[0], ledger_->network_id(), other.Hash())});
  EXPECT_NE(AddError(Encode(*Sign(std::move(e), keys_[0]))).find("approval signature"),
            std::string::npos);
}

TEST_F(LedgerTest, RefusesATamperedRequestOrEvent) {
  std::string wire = Admit(1, 0, {0});
  std::string tampered = wire;
  tampered.replace(tampered.find("http://k1"), 9, "http://k9");
  EXPECT_FALSE(ledger_->Add(tampered).ok());
  std::string spaced = wire;
  spaced.insert(1, " ");
  EXPECT_FALSE(ledger_->Add(spaced).ok());
  EXPECT_EQ(ledger_->size(), 1u);
  EXPECT_EQ(*ledger_->Add(wire), Ledger::Added::kAdded);
}

TEST_F(LedgerTest, SignaturesDoNotCrossMessageTypes) {
  // An approval's signature offered as the join request's signature is refused.
  JoinRequest req = Request(1);
  req.sig = MakeApproval(keys_[1], ledger_->network_id(), req.Hash()).sig;
  EXPECT_FALSE(VerifyJoinRequest(req).ok());
}

TEST_F(LedgerTest, WaitsForMissingParents) {
  const std::string first = Admit(1, 0, {0});
  Ledger other = std::move(Ledger::FromGenesis(genesis_)).value();
  ASSERT_EQ(*ledger_->Add(first), Ledger::Added::kAdded);
  const std::string second = Admit(2, 1, {0, 1});
  EXPECT_EQ(*other.Add(second), Ledger::Added::kMissingParents);
  EXPECT_EQ(*other.Add(first), Ledger::Added::kAdded);
  EXPECT_EQ(*other.Add(second), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(second), Ledger::Added::kAdded);
  EXPECT_EQ(other.StateHash(), ledger_->StateHash());
  EXPECT_EQ(other.Heads(), ledger_->Heads());
}

TEST_F(LedgerTest, ConcurrentAdmissionsOfOneKeyConvergeInAnyOrder) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  const auto parents = ledger_->Heads();
  // Two sponsors admit node 2 concurrently (same parents, different certificates).
  const std::string a = Admit(2, 0, {0, 1}, parents);
  const std::string b = Admit(2, 1, {1, 0}, parents);
  Ledger x = std::move(Ledger::FromGenesis(genesis_)).value();
  Ledger y = std::move(Ledger::FromGenesis(genesis_)).value();
  for (Ledger* l : {&x, &y}) ASSERT_EQ(*l->Add(*ledger_->Wire(parents[0])), Ledger::Added::kAdded);
  ASSERT_TRUE(x.Add(a).ok() && x.Add(b).ok());
  ASSERT_TRUE(y.Add(b).ok() && y.Add(a).ok());
  EXPECT_EQ(x.StateHash(), y.StateHash());
  EXPECT_EQ(x.state().members.size(), 3u);
  EXPECT_EQ(x.Heads().size(), 2u);
}

TEST_F(LedgerTest, MissingListsWhatAPeerLacksParentsFirst) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(Admit(2, 1, {0, 1})), Ledger::Added::kAdded);
  std::vector<std::string> unknown;
  const auto all = ledger_->Missing({HashOf(genesis_)}, 100, &unknown);
  ASSERT_EQ(all.size(), 2u);
  Ledger peer = std::move(Ledger::FromGenesis(genesis_)).value();
  for (const auto& w : all) EXPECT_EQ(*peer.Add(w), Ledger::Added::kAdded);
  EXPECT_TRUE(ledger_->Missing(peer.Heads(), 100, &unknown).empty());
  ledger_->Missing({std::string(64, 'a')}, 100, &unknown);
  EXPECT_EQ(unknown.size(), 1u);
}

std::string AddressEvent(const Ledger& l, const crypto::SigningKey& author, const std::string& url,
                         int64_t seq, std::vector<std::string> parents = {}) {
  Event e;
  e.kind = "address";
  e.parents = parents.empty() ? l.Heads() : parents;
  e.body = Ledger::AddressBody(url, seq);
  return Encode(*Sign(std::move(e), author));
}

// The state folded event by event (in place for events on the heads, replayed for concurrent
// ones) is the state replayed from scratch, whatever the order the events arrive in: a DAG of
// admissions and address events on random branches, added in two shuffled parent-first orders.
TEST_F(LedgerTest, TheIncrementalStateIsTheReplayedOneInAnyOrder) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(Admit(2, 0, {0, 1})), Ledger::Added::kAdded);
  std::vector<std::string> hashes = {HashOf(genesis_)};
  for (const std::string& w : ledger_->AllInOrder()) {
    if (HashOf(w) != hashes[0]) hashes.push_back(HashOf(w));
  }
  std::vector<std::string> order;  // parents first, as made
  uint64_t r = 12345;
  auto next = [&r] { return r = r * 6364136223846793005ULL + 1442695040888963407ULL; };
  for (int64_t seq = 1; seq <= 120; ++seq) {
    // Parents: one or two events made so far, beyond the genesis and both admissions.
    std::vector<std::string> parents = {hashes[2 + next() % (hashes.size() - 2)]};
    const std::string other = hashes[2 + next() % (hashes.size() - 2)];
    if (next() % 2 && other != parents[0]) parents.push_back(other);
    const std::string w =
        AddressEvent(*ledger_, keys_[next() % 3], "http://a" + std::to_string(seq), seq, parents);
    ASSERT_EQ(AddError(w), "") << seq;
    hashes.push_back(HashOf(w));
    order.push_back(w);
  }
  EXPECT_EQ(ledger_->StateHash(), ledger_->RebuiltStateHash());
  for (int round = 0; round < 2; ++round) {
    // Another arrival order: a random pending event whose parents are present.
    Ledger l = std::move(Ledger::FromGenesis(genesis_)).value();
    for (const std::string& w : ledger_->AllInOrder()) {
      if (HashOf(w) == hashes[1] || HashOf(w) == hashes[2]) ASSERT_EQ(AddError2(l, w), "");
    }
    std::vector<std::string> pending = order;
    for (int tries = 0; tries < 100000 && !pending.empty(); ++tries) {
      const size_t i = next() % pending.size();
      auto added = l.Add(pending[i]);
      ASSERT_TRUE(added.ok()) << added.status().message();
      if (*added == Ledger::Added::kAdded) pending.erase(pending.begin() + i);
      ASSERT_EQ(l.StateHash(), l.RebuiltStateHash());
    }
    ASSERT_TRUE(pending.empty());
    EXPECT_EQ(l.StateHash(), ledger_->StateHash());
    EXPECT_EQ(l.Heads(), ledger_->Heads());
  }
}

TEST_F(LedgerTest, AddressEventsMoveAMemberWithARisingSequence) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(AddressEvent(*ledger_, keys_[1], "http://moved:1", 1)),
            Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().FindMemberByKey(Hex(keys_[1]))->url, "http://moved:1");
  EXPECT_NE(AddError(AddressEvent(*ledger_, keys_[1], "http://old", 1)).find("not above 1"),
            std::string::npos);
  EXPECT_NE(AddError(AddressEvent(*ledger_, keys_[4], "http://evil", 9)).find("not a member"),
            std::string::npos);
  // Concurrent announcements on two branches: the highest sequence wins, in any order.
  const auto parents = ledger_->Heads();
  const std::string two = AddressEvent(*ledger_, keys_[1], "http://two", 2, parents);
  const std::string three = AddressEvent(*ledger_, keys_[1], "http://three", 3, parents);
  Ledger x = *ledger_;
  ASSERT_TRUE(x.Add(three).ok() && x.Add(two).ok());
  ASSERT_TRUE(ledger_->Add(two).ok() && ledger_->Add(three).ok());
  EXPECT_EQ(x.StateHash(), ledger_->StateHash());
  EXPECT_EQ(x.state().FindMemberByKey(Hex(keys_[1]))->url, "http://three");
}

std::string RemovedEvent(const Ledger& l, const crypto::SigningKey& author, const std::string& key,
                         const std::string& reason, const std::vector<Approval>& approvals) {
  Event e;
  e.kind = "member-removed";
  e.parents = l.Heads();
  e.body = Ledger::MemberRemovedBody(key, reason, approvals);
  return Encode(*Sign(std::move(e), author));
}

TEST_F(LedgerTest, AMemberLeavesAloneAndMayJoinAgain) {
  EXPECT_NE(
      AddError(RemovedEvent(*ledger_, keys_[0], Hex(keys_[0]), "leave", {})).find("last member"),
      std::string::npos);
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  // Only the member itself can leave.
  EXPECT_NE(AddError(RemovedEvent(*ledger_, keys_[0], Hex(keys_[1]), "leave", {}))
                .find("only a member itself"),
            std::string::npos);
  ASSERT_EQ(*ledger_->Add(RemovedEvent(*ledger_, keys_[1], Hex(keys_[1]), "leave", {})),
            Ledger::Added::kAdded);
  EXPECT_FALSE(ledger_->IsMember(Hex(keys_[1])));
  EXPECT_EQ(ledger_->state().members.size(), 1u);
  // Gone members cannot author; they can be admitted again.
  EXPECT_NE(AddError(AddressEvent(*ledger_, keys_[1], "http://x", 5)).find("not a member"),
            std::string::npos);
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  EXPECT_TRUE(ledger_->IsMember(Hex(keys_[1])));
}

// A member that announced addresses, left and came back announces with a sequence above its
// old ones (AddressSeq remembers them), or the ledger would refuse every announcement.
TEST_F(LedgerTest, AMemberBackAfterLeavingAnnouncesAboveItsOldSequences) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  ASSERT_EQ(AddError(AddressEvent(*ledger_, keys_[1], "http://a", 3)), "");
  ASSERT_EQ(AddError(RemovedEvent(*ledger_, keys_[1], Hex(keys_[1]), "leave", {})), "");
  ASSERT_EQ(AddError(Admit(1, 0, {0})), "");
  EXPECT_EQ(ledger_->AddressSeq(Hex(keys_[1])), 3);
  EXPECT_EQ(AddError(AddressEvent(*ledger_, keys_[1], "http://b",
                                  ledger_->AddressSeq(Hex(keys_[1])) + 1)),
            "");
  EXPECT_EQ(ledger_->state().FindMemberByKey(Hex(keys_[1]))->url, "http://b");
}

TEST_F(LedgerTest, EvictionNeedsAQuorumOfOtherMembersEvictionApprovals) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(Admit(2, 1, {0, 1})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(Admit(3, 0, {0, 1})), Ledger::Added::kAdded);  // 3 members: q = 2
  const std::string net = ledger_->network_id();
  const std::string target = Hex(keys_[3]);
  // One approval is short of the quorum of 3 (4 members: q = 3).
  EXPECT_NE(AddError(RemovedEvent(*ledger_, keys_[0], target, "evicted",
                                  {MakeEvictionApproval(keys_[0], net, target)}))
                .find("needs 3"),
            std::string::npos);
  // The evicted member's own approval does not count; join approvals are another domain.
  EXPECT_NE(AddError(RemovedEvent(*ledger_, keys_[0], target, "evicted",
                                  {MakeEvictionApproval(keys_[3], net, target)}))
                .find("cannot approve its eviction"),
            std::string::npos);
  EXPECT_NE(AddError(RemovedEvent(
                         *ledger_, keys_[0], target, "evicted",
                         {MakeApproval(keys_[0], net, target), MakeApproval(keys_[1], net, target),
                          MakeApproval(keys_[2], net, target)}))
                .find("approval signature"),
            std::string::npos);
  ASSERT_EQ(*ledger_->Add(RemovedEvent(*ledger_, keys_[0], target, "evicted",
                                       {MakeEvictionApproval(keys_[0], net, target),
                                        MakeEvictionApproval(keys_[1], net, target),
                                        MakeEvictionApproval(keys_[2], net, target)})),
            Ledger::Added::kAdded);
  EXPECT_FALSE(ledger_->IsMember(target));
  EXPECT_EQ(ledger_->state().members.size(), 3u);
}

std::string ReleaseEvent(const Ledger& l, const crypto::SigningKey& author,
                         const std::vector<const crypto::SigningKey*>& signers, const Manifest& m) {
  std::vector<PublisherSignature> sigs;
  for (const auto* k : signers) sigs.push_back(SignManifest(*k, m));
  Event e;
  e.kind = "release";
  e.parents = l.Heads();
  e.body = Ledger::ReleaseBody(m, sigs);
  return Encode(*Sign(std::move(e), author));
}

Manifest MakeManifest(const std::string& network, int64_t version, char fill = 'a') {
  Manifest m;
  m.network = network;
  m.version = version;
  m.created_ms = 1000;
  m.expires_ms = 99000;
  m.files = {{"front", "index.html", std::string(64, fill), 10},
             {"plugin", "libblog.so", std::string(64, 'b'), 20}};
  return m;
}

std::string Event_(const Ledger& l, const crypto::SigningKey& author, const std::string& kind,
                   json::Value body) {
  Event e;
  e.kind = kind;
  e.parents = l.Heads();
  e.time_ms = 5000;
  e.body = std::move(body);
  return Encode(*Sign(std::move(e), author));
}

TEST_F(LedgerTest, ReleasesChangeTheAcceptedCodesWithoutRollback) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  const Manifest m = MakeManifest(ledger_->network_id(), 1);
  // Only publishers' signatures count (genesis names key 0).
  EXPECT_NE(AddError(ReleaseEvent(*ledger_, keys_[1], {&keys_[1]}, m)).find("not a publisher"),
            std::string::npos);
  EXPECT_NE(AddError(ReleaseEvent(*ledger_, keys_[1], {}, m)).find("needs 1"), std::string::npos);
  ASSERT_EQ(*ledger_->Add(ReleaseEvent(*ledger_, keys_[1], {&keys_[0]}, m)), Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().release_version, 1);
  EXPECT_EQ(ledger_->state().accepted_code, m.CodeHash());
  // During the rollout both run: the release in force and the one before (the genesis code).
  EXPECT_EQ(ledger_->state().AcceptedCodes(), (std::vector<std::string>{m.CodeHash(), "c0de"}));
  // No rollback: the same version, or a lower one, is refused.
  EXPECT_NE(AddError(ReleaseEvent(*ledger_, keys_[0], {&keys_[0]},
                                  MakeManifest(ledger_->network_id(), 1, 'c')))
                .find("no rollback"),
            std::string::npos);
  EXPECT_EQ(*ledger_->Add(Admit(2, 0, {0, 1}, {}, "c0de")), Ledger::Added::kAdded);
  const Manifest m2 = MakeManifest(ledger_->network_id(), 2, 'c');
  ASSERT_EQ(*ledger_->Add(ReleaseEvent(*ledger_, keys_[0], {&keys_[0]}, m2)),
            Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().AcceptedCodes(),
            (std::vector<std::string>{m2.CodeHash(), m.CodeHash()}));
  // Two releases on, the genesis code is no longer accepted.
  EXPECT_NE(AddError(Admit(3, 0, {0, 1, 2}, {}, "c0de")).find("code hash"), std::string::npos);
  EXPECT_EQ(*ledger_->Add(Admit(3, 0, {0, 1, 2}, {}, m.CodeHash())), Ledger::Added::kAdded);
  // A tampered manifest no longer matches its signature.
  Manifest tampered = m;
  tampered.version = 3;
  auto sig = SignManifest(keys_[0], m);
  EXPECT_FALSE(VerifyManifestSignature(sig, tampered).ok());
}

TEST_F(LedgerTest, ReleasesNeedTheThresholdOfPublishersAndTheirOwnNetwork) {
  GenesisParams p;
  p.code_hash = "c0de";
  p.publishers = {Hex(keys_[3]), Hex(keys_[4]), Hex(keys_[5])};
  p.publisher_threshold = 2;
  Ledger l =
      std::move(Ledger::FromGenesis(Encode(*MakeGenesis(keys_[0], "http://k0", 1000, p)))).value();
  auto error = [&](const std::string& wire) {
    auto r = l.Add(wire);
    return r.ok() ? std::string() : r.status().message();
  };
  const Manifest m = MakeManifest(l.network_id(), 1);
  EXPECT_NE(error(ReleaseEvent(l, keys_[0], {&keys_[3]}, m)).find("needs 2"), std::string::npos);
  EXPECT_NE(error(ReleaseEvent(l, keys_[0], {&keys_[3], &keys_[3]}, m)).find("duplicate"),
            std::string::npos);
  EXPECT_NE(error(ReleaseEvent(l, keys_[0], {&keys_[3], &keys_[0]}, m)).find("not a publisher"),
            std::string::npos);
  // The same publisher keys signed a manifest for another network: not valid here.
  const Manifest elsewhere = MakeManifest(std::string(64, 'e'), 1);
  EXPECT_NE(error(ReleaseEvent(l, keys_[0], {&keys_[3], &keys_[4]}, elsewhere)).find("for network"),
            std::string::npos);
  ASSERT_EQ(*l.Add(ReleaseEvent(l, keys_[0], {&keys_[3], &keys_[5]}, m)), Ledger::Added::kAdded);
  EXPECT_EQ(l.state().release.version, 1);
}

TEST_F(LedgerTest, APublisherSetChangeNeedsTheCurrentThreshold) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  const std::vector<std::string> keys = {Hex(keys_[3]), Hex(keys_[4])};
  auto change = [&](const crypto::SigningKey& signer, int64_t seq) {
    const auto sig = signer.SignWithDomain(
        "publisher-set", PublisherSetPayload(ledger_->network_id(), keys, 2, seq));
    return Event_(*ledger_, keys_[1], "publishers",
                  Ledger::PublishersBody(
                      keys, 2, seq, {{Hex(signer), crypto::HexEncode(sig.data(), sig.size())}}));
  };
  // Signed by a key that is not a publisher yet (the new one itself): refused.
  EXPECT_NE(AddError(change(keys_[3], 1)).find("not a publisher"), std::string::npos);
  ASSERT_EQ(*ledger_->Add(change(keys_[0], 1)), Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().publishers, keys);
  EXPECT_EQ(ledger_->state().params.publisher_threshold, 2);
  EXPECT_NE(AddError(change(keys_[0], 1)).find("not rising"), std::string::npos);
  // The old (lost) key signs nothing any more; the new pair does.
  const Manifest m = MakeManifest(ledger_->network_id(), 1);
  EXPECT_NE(AddError(ReleaseEvent(*ledger_, keys_[1], {&keys_[0]}, m)).find("not a publisher"),
            std::string::npos);
  EXPECT_NE(AddError(ReleaseEvent(*ledger_, keys_[1], {&keys_[3]}, m)).find("needs 2"),
            std::string::npos);
  EXPECT_EQ(*ledger_->Add(ReleaseEvent(*ledger_, keys_[1], {&keys_[3], &keys_[4]}, m)),
            Ledger::Added::kAdded);
}

TEST_F(LedgerTest, AKeySpelledInUpperCaseIsNotASecondPublisher) {
  std::string upper = Hex(keys_[3]);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_NE(upper, Hex(keys_[3]));
  GenesisParams p;
  p.publishers = {Hex(keys_[3]), upper};
  p.publisher_threshold = 2;
  EXPECT_FALSE(Ledger::FromGenesis(Encode(*MakeGenesis(keys_[0], "http://k0", 1000, p))).ok());
  // Nor a signer: a signature under the upper-case spelling does not verify.
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  const Manifest m = MakeManifest(ledger_->network_id(), 1);
  std::string key0 = Hex(keys_[0]);
  for (char& c : key0) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  PublisherSignature sig = SignManifest(keys_[0], m);
  sig.publisher = key0;
  Event e;
  e.kind = "release";
  e.parents = ledger_->Heads();
  e.body = Ledger::ReleaseBody(m, {SignManifest(keys_[0], m), sig});
  EXPECT_NE(AddError(Encode(*Sign(std::move(e), keys_[1]))).find("not a publisher"),
            std::string::npos);
}

TEST_F(LedgerTest, AManifestMayNotMakeAFileADirectoryToo) {
  Manifest m = MakeManifest(ledger_->network_id(), 1);
  m.files = {{"front", "a", std::string(64, 'a'), 1}, {"front", "a/b", std::string(64, 'b'), 1}};
  auto parsed = ParseManifest(m.ToJson());
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("both a file and a directory"), std::string::npos);
  m.files = {{"front", "a.js", std::string(64, 'a'), 1}, {"front", "a/b", std::string(64, 'b'), 1}};
  EXPECT_TRUE(ParseManifest(m.ToJson()).ok());
  for (const char* bad : {"../x", "a/../b", "/abs", "a//b", "a\\b", "./a", "a/", ""}) {
    EXPECT_FALSE(ValidReleasePath("front", bad)) << bad;
  }
  EXPECT_FALSE(ValidReleasePath("plugin", "dir/lib.so"));
  EXPECT_FALSE(ValidReleasePath("plugin", "lib.txt"));
}

TEST_F(LedgerTest, ReleaseReportsComeFromMembersOncePerStatus) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  const Manifest m = MakeManifest(ledger_->network_id(), 1);
  const std::string release = ReleaseEvent(*ledger_, keys_[0], {&keys_[0]}, m);
  ASSERT_EQ(*ledger_->Add(release), Ledger::Added::kAdded);
  const std::string hash = HashOf(release);
  auto report = [&](size_t author, const std::string& of, const std::string& status) {
    return Event_(*ledger_, keys_[author], "release-report", Ledger::ReportBody(of, status, "why"));
  };
  EXPECT_NE(AddError(report(4, hash, "healthy")).find("not a member"), std::string::npos);
  EXPECT_NE(AddError(report(1, std::string(64, 'f'), "healthy")).find("not among"),
            std::string::npos);
  EXPECT_NE(AddError(report(1, hash, "fine")).find("healthy or failed"), std::string::npos);
  ASSERT_EQ(*ledger_->Add(report(1, hash, "healthy")), Ledger::Added::kAdded);
  EXPECT_NE(AddError(report(1, hash, "healthy")).find("made already"), std::string::npos);
  EXPECT_EQ(ledger_->state().reports.at(hash).at(Hex(keys_[1])).status, "healthy");
  // A failure after a healthy report stands.
  ASSERT_EQ(*ledger_->Add(report(1, hash, "failed")), Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().reports.at(hash).at(Hex(keys_[1])).status, "failed");
}

// Past kCommitteeSize members a certificate may carry a quorum of the join's committee
// instead of a quorum of all members: 171 of the 256 members the rule picks, not any 171,
// and not 170 of them plus others; a quorum of all members is still enough.
// A copy of a member list shares its rows until one of them changes; the other is untouched.
TEST(MemberList, CopiesShareRowsUntilOneChanges) {
  const auto a = crypto::SigningKey::Generate();
  const auto b = crypto::SigningKey::Generate();
  MemberList list({Member{NodeIdForHex(Hex(a)), Hex(a), "http://a", 1, ""}});
  MemberList copy = list;
  EXPECT_EQ(copy.shared(), list.shared());
  copy.Put(Member{NodeIdForHex(Hex(b)), Hex(b), "http://b", 2, ""});
  EXPECT_NE(copy.shared(), list.shared());
  EXPECT_EQ(list.size(), 1u);
  ASSERT_EQ(copy.size(), 2u);
  EXPECT_TRUE(std::is_sorted(copy.begin(), copy.end(),
                             [](const Member& x, const Member& y) { return x.id < y.id; }));
  EXPECT_EQ(copy.FindByKey(Hex(b))->url, "http://b");
  EXPECT_EQ(list.FindByKey(Hex(b)), nullptr);
  copy.Erase(Hex(a));
  EXPECT_EQ(copy.size(), 1u);
  EXPECT_EQ(list.FindByKey(Hex(a))->url, "http://a");
  EXPECT_EQ(list.FindByKey("not a key"), nullptr);
}

TEST(LedgerCommittee, ALargeNetworkAdmitsWithAQuorumOfTheJoinsCommittee) {
  std::vector<crypto::SigningKey> keys;
  for (int i = 0; i < 301; ++i) keys.push_back(crypto::SigningKey::Generate());
  GenesisParams p;
  for (int i = 1; i < 300; ++i)
    p.founders.emplace_back(Hex(keys[i]), "http://m" + std::to_string(i));
  const Ledger founded =
      std::move(Ledger::FromGenesis(Encode(*MakeGenesis(keys[0], "http://m0", 0, p)))).value();
  const JoinRequest req =
      MakeJoinRequest(keys[300], "http://joiner", "", founded.network_id(), "n", 1000);
  const MemberList& members = founded.state().members;
  const std::set<std::string> committee = CommitteeOf(req.Hash(), members);
  ASSERT_EQ(committee.size(), kCommitteeSize);
  EXPECT_EQ(CommitteeOf(req.Hash(), members), committee);  // the same rule everywhere
  std::vector<size_t> in, out;
  for (size_t i = 0; i < 300; ++i) (committee.count(Hex(keys[i])) ? in : out).push_back(i);
  const size_t quorum = QuorumOf(p, kCommitteeSize);
  ASSERT_EQ(quorum, 171u);
  auto admit = [&](const std::vector<size_t>& approvers) {
    std::vector<Approval> approvals;
    for (size_t a : approvers)
      approvals.push_back(MakeApproval(keys[a], founded.network_id(), req.Hash()));
    Event e;
    e.kind = "member-added";
    e.parents = founded.Heads();
    e.body = Ledger::MemberAddedBody(req, approvals);
    Ledger l = founded;
    auto r = l.Add(Encode(*Sign(std::move(e), keys[approvers.front()])));
    return r.ok() ? std::string() : r.status().message();
  };
  auto first = [](const std::vector<size_t>& v, size_t n) {
    return std::vector<size_t>(v.begin(), v.begin() + static_cast<ptrdiff_t>(n));
  };
  EXPECT_EQ(admit(first(in, quorum)), "");
  std::vector<size_t> short_mixed = first(in, quorum - 1);
  for (size_t i : first(out, 29)) short_mixed.push_back(i);  // 170 + 29 others: 199 < 200
  EXPECT_NE(admit(short_mixed).find("170 approvals of the join's committee, needs 171 (or 200"),
            std::string::npos)
      << admit(short_mixed);
  std::vector<size_t> anyone = first(out, out.size());  // 171 with 44 outside the committee
  for (size_t i : first(in, quorum - out.size())) anyone.push_back(i);
  EXPECT_NE(admit(anyone).find("127 approvals of the join's committee"), std::string::npos);
  std::vector<size_t> everyone = first(out, out.size());
  for (size_t i : first(in, 200 - out.size())) everyone.push_back(i);  // 200 of all members
  EXPECT_EQ(admit(everyone), "");
}

TEST_F(LedgerTest, ThePublisherReFormsANetworkWhoseMembersAreGone) {
  ASSERT_EQ(*ledger_->Add(Admit(1, 0, {0})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(Admit(2, 1, {0, 1})), Ledger::Added::kAdded);
  ASSERT_EQ(*ledger_->Add(Admit(3, 0, {0, 1})), Ledger::Added::kAdded);
  auto recovery = [&](const crypto::SigningKey& author, const crypto::SigningKey& signer,
                      std::vector<std::string> keep, int64_t epoch) {
    const auto sig = signer.SignWithDomain(
        "recovery", Ledger::RecoveryPayload(ledger_->network_id(), keep, epoch));
    Event e;
    e.kind = "recovery";
    e.parents = ledger_->Heads();
    e.body = Ledger::RecoveryBody(keep, epoch,
                                  {{Hex(signer), crypto::HexEncode(sig.data(), sig.size())}});
    return Encode(*Sign(std::move(e), author));
  };
  // Only publishers sign recoveries.
  EXPECT_NE(AddError(recovery(keys_[1], keys_[1], {Hex(keys_[1])}, 1)).find("not a publisher"),
            std::string::npos);
  ASSERT_EQ(*ledger_->Add(recovery(keys_[0], keys_[0], {Hex(keys_[0]), Hex(keys_[1])}, 1)),
            Ledger::Added::kAdded);
  EXPECT_EQ(ledger_->state().members.size(), 2u);
  EXPECT_FALSE(ledger_->IsMember(Hex(keys_[3])));
  // The epoch must rise; the quorum is now of the two kept members.
  EXPECT_NE(AddError(recovery(keys_[0], keys_[0], {Hex(keys_[0])}, 1)).find("not rising"),
            std::string::npos);
  EXPECT_EQ(*ledger_->Add(Admit(4, 0, {0, 1})), Ledger::Added::kAdded);
}

// Invitations (protocol/invitation.h): the ledger's rule on a network that admits by
// invitation, with events the test signs itself (no engine checks in front).
constexpr int64_t kNow = 2000;  // the time of LedgerTest's requests
constexpr int64_t kDay = 86'400'000;

class InviteLedgerTest : public LedgerTest {
 protected:
  void SetUp() override {
    LedgerTest::SetUp();
    GenesisParams p;
    p.code_hash = "c0de";
    p.admission = "invite";
    Found(p);
  }
  Invitation Invite(size_t by, const std::string& id, int64_t expires = kNow + kDay) {
    return MakeInvitation(keys_[by], ledger_->network_id(), id, expires, "");
  }
  // A member-added event for joiner, authored and approved by `author` alone (a quorum while
  // the network has one member), on `parents` (default: the heads).
  std::string Admit(size_t joiner, size_t author, json::Value invitation,
                    std::vector<std::string> parents = {}) {
    return LedgerTest::Admit(joiner, author, {author}, std::move(parents), "c0de",
                             std::move(invitation));
  }
};

TEST_F(InviteLedgerTest, AMemberAddedNeedsAnUnusedUnexpiredInvitationOfAMember) {
  EXPECT_NE(AddError(Admit(1, 0, nullptr)).find("carries none"), std::string::npos);
  EXPECT_NE(
      AddError(Admit(1, 0, Invite(0, std::string(32, '1'), kNow - 1).ToJson())).find("expired"),
      std::string::npos);
  EXPECT_NE(AddError(Admit(1, 0, Invite(3, std::string(32, '1')).ToJson())).find("not a member"),
            std::string::npos);
  Invitation forged = Invite(0, std::string(32, '1'));
  forged.note = "changed";
  EXPECT_NE(AddError(Admit(1, 0, forged.ToJson())).find("not signed"), std::string::npos);
  Invitation foreign =
      MakeInvitation(keys_[0], std::string(64, 'e'), std::string(32, '1'), kNow + kDay, "");
  EXPECT_NE(AddError(Admit(1, 0, foreign.ToJson())).find("another network"), std::string::npos);
  EXPECT_EQ(ledger_->state().members.size(), 1u);

  const Invitation inv = Invite(0, std::string(32, '2'));
  ASSERT_EQ(AddError(Admit(1, 0, inv.ToJson())), "");
  EXPECT_TRUE(ledger_->IsMember(Hex(keys_[1])));
  ASSERT_EQ(ledger_->state().invitations_used.count(inv.Hash()), 1u);
  EXPECT_EQ(ledger_->state().invitations_used.at(inv.Hash()), Hex(keys_[1]));
  // Used: never again, for anyone.
  EXPECT_NE(AddError(Admit(2, 0, inv.ToJson())).find("used already"), std::string::npos);
}

TEST_F(InviteLedgerTest, AnInvitationOfAMemberWhoLeftAdmitsNoOne) {
  ASSERT_EQ(AddError(Admit(1, 0, Invite(0, std::string(32, '1')).ToJson())), "");
  const Invitation by_1 = Invite(1, std::string(32, '2'));
  Event leave;
  leave.kind = "member-removed";
  leave.parents = ledger_->Heads();
  leave.time_ms = kNow;
  leave.body = Ledger::MemberRemovedBody(Hex(keys_[1]), "leave", {});
  ASSERT_EQ(AddError(Encode(*Sign(std::move(leave), keys_[1]))), "");
  ASSERT_FALSE(ledger_->IsMember(Hex(keys_[1])));
  EXPECT_NE(AddError(Admit(2, 0, by_1.ToJson())).find("not a member"), std::string::npos);
}

// Two sponsors admit two joiners with one invitation at once (neither event sees the other):
// both events are valid, and the state admits one of them, the same one whatever order the
// events arrive in.
TEST_F(InviteLedgerTest, OneInvitationAdmittedTwiceConcurrentlyAdmitsOneNode) {
  const Invitation inv = Invite(0, std::string(32, '3'));
  const std::vector<std::string> parents = ledger_->Heads();
  const std::string first = Admit(1, 0, inv.ToJson(), parents);
  const std::string second = Admit(2, 0, inv.ToJson(), parents);
  std::string hashes[2];
  for (int order = 0; order < 2; ++order) {
    ledger_.emplace(std::move(Ledger::FromGenesis(genesis_)).value());
    ASSERT_EQ(AddError(order == 0 ? first : second), "");
    ASSERT_EQ(AddError(order == 0 ? second : first), "");
    EXPECT_EQ(ledger_->state().members.size(), 2u);
    EXPECT_NE(ledger_->IsMember(Hex(keys_[1])), ledger_->IsMember(Hex(keys_[2])));
    EXPECT_EQ(ledger_->state().invitations_used.size(), 1u);
    hashes[order] = ledger_->StateHash();
  }
  EXPECT_EQ(hashes[0], hashes[1]);
}

TEST_F(InviteLedgerTest, AnOpenNetworkTakesNoInvitationsAndAGenesisWithoutTheRuleIsOpen) {
  GenesisParams p;  // admission "open"
  p.code_hash = "c0de";
  Found(p);
  EXPECT_EQ(ledger_->state().params.admission, "open");
  EXPECT_NE(AddError(Admit(1, 0, Invite(0, std::string(32, '1')).ToJson())).find("carries one"),
            std::string::npos);
  ASSERT_EQ(AddError(Admit(1, 0, nullptr)), "");
  EXPECT_TRUE(ledger_->IsMember(Hex(keys_[1])));
}

// One spelling per invitation: the same one with its signature in upper case is refused, so
// it cannot pass for a second invitation anywhere.
TEST_F(InviteLedgerTest, AnInvitationSpelledInUpperCaseIsRefused) {
  Invitation inv = Invite(0, std::string(32, '4'));
  for (char& c : inv.sig) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_NE(AddError(Admit(1, 0, inv.ToJson())).find("lower-case"), std::string::npos);
}

}  // namespace
}  // namespace peerstack::protocol
