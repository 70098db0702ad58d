// The ledger's size after J sequential joins, without checkpoints and with one every K joins,
// and what a node starting up reads: the whole ledger replayed (every certificate verified)
// against the checkpoint's package verified from the genesis. The joins are built directly on
// the protocol library (no network): each member-added event carries the quorum the ledger
// asks for (two thirds of the members, past 256 members 171 of the join's committee), each
// checkpoint a quorum of the members the one before it named.
//   ledger_bench [--joins J] [--every K]      (default: J = 1000, K = 100)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "protocol/checkpoint.h"
#include "protocol/ledger.h"

using namespace peerstack;
using namespace peerstack::protocol;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Approvals from `need` of these members (in the order given) by their keys.
template <typename Make>
std::vector<Approval> Sign(const std::vector<std::string>& keys, size_t need,
                           const std::map<std::string, const crypto::SigningKey*>& by_key,
                           Make make) {
  std::vector<Approval> out;
  for (const std::string& k : keys) {
    if (out.size() >= need) break;
    out.push_back(make(*by_key.at(k)));
  }
  return out;
}

// Who must approve among `members` for a quorum: all of them up to kCommitteeSize, else the
// committee the seed picks; and how many.
std::pair<std::vector<std::string>, size_t> Quorum(const std::vector<Member>& members,
                                                   const std::string& seed,
                                                   const GenesisParams& params) {
  std::vector<std::string> keys;
  if (members.size() <= kCommitteeSize) {
    for (const Member& m : members) keys.push_back(m.key);
    return {keys, QuorumOf(params, members.size())};
  }
  const std::set<std::string> committee = CommitteeOf(seed, members);
  keys.assign(committee.begin(), committee.end());
  return {keys, QuorumOf(params, kCommitteeSize)};
}

struct Built {
  Ledger ledger;
  std::vector<std::string> events;  // every event added, checkpoints too, in order
  uint64_t bytes = 0;               // of those events
  double seconds = 0;
};

// J sequential joins into a network founded by keys[0], a checkpoint every K joins (0: none).
Built Build(const std::vector<crypto::SigningKey>& keys,
            const std::map<std::string, const crypto::SigningKey*>& by_key,
            const std::string& genesis, const GenesisParams& params, size_t joins, size_t every) {
  const auto t0 = Clock::now();
  Built b{std::move(Ledger::FromGenesis(genesis)).value(), {genesis}, genesis.size(), 0};
  Ledger& ledger = b.ledger;
  const std::string network = ledger.network_id();
  auto add = [&](const std::string& wire) {
    if (auto r = ledger.Add(wire); !r || *r != Ledger::Added::kAdded) {
      std::fprintf(stderr, "refused: %s\n", r ? "not added" : r.status().message().c_str());
      std::exit(1);
    }
    b.events.push_back(wire);
    b.bytes += wire.size();
  };
  for (size_t j = 1; j <= joins; ++j) {
    const JoinRequest req = MakeJoinRequest(keys[j], "http://n" + std::to_string(j), "c0de",
                                            network, "n" + std::to_string(j), 2000);
    auto [approvers, need] = Quorum(ledger.state().members, req.Hash(), params);
    Event e;
    e.kind = "member-added";
    e.parents = ledger.Heads();
    e.time_ms = 2000 + static_cast<int64_t>(j);
    e.body = Ledger::MemberAddedBody(
        req, Sign(approvers, need, by_key, [&](const crypto::SigningKey& k) {
          return MakeApproval(k, network, req.Hash());
        }));
    add(Encode(*protocol::Sign(std::move(e), keys[0])));
    if (every > 0 && j % every == 0) {
      auto p = ledger.ProposeCheckpoint();
      auto [signers, quorum] =
          Quorum(ledger.checkpoint_signers(), CheckpointCommitteeSeed(network, p->seq), params);
      Event k;
      k.kind = "checkpoint";
      k.parents = p->cut;
      k.time_ms = 3000;
      k.body = Ledger::CheckpointBody(
          *p, Sign(signers, quorum, by_key, [&](const crypto::SigningKey& key) {
            return MakeCheckpointApproval(key, network, *p);
          }));
      add(Encode(*protocol::Sign(std::move(k), keys[0])));
    }
  }
  b.seconds = Seconds(t0);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  size_t joins = 1000;
  std::vector<size_t> everies;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--joins")) joins = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--every")) everies.push_back(std::strtoul(argv[i + 1], nullptr, 10));
  }
  if (everies.empty()) everies = {joins, 100};
  std::vector<crypto::SigningKey> keys;
  std::map<std::string, const crypto::SigningKey*> by_key;
  keys.reserve(joins + 1);
  for (size_t i = 0; i <= joins; ++i) keys.push_back(crypto::SigningKey::Generate());
  for (const auto& k : keys) by_key[crypto::HexEncode(k.public_key().data(), 32)] = &k;
  GenesisParams params;
  params.code_hash = "c0de";
  const std::string genesis = Encode(*MakeGenesis(keys[0], "http://n0", 1000, params));

  // Without checkpoints: what a node holds and a joiner downloads, and a start (every event
  // replayed, every certificate verified).
  const Built plain = Build(keys, by_key, genesis, params, joins, 0);
  auto t0 = Clock::now();
  Ledger replayed = std::move(Ledger::FromGenesis(genesis)).value();
  for (size_t i = 1; i < plain.events.size(); ++i) (void)replayed.Add(plain.events[i]);
  const double replay_s = Seconds(t0);
  std::printf(
      "| joins | checkpoints | a node holds, a joiner downloads | of which the chain | start |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| %zu | none | %.2f MB (%zu events) | - | %.2f s (every event verified) |\n", joins,
              plain.bytes / 1e6, plain.events.size(), replay_s);
  for (size_t every : everies) {
    const Built with = Build(keys, by_key, genesis, params, joins, every);
    const json::Value package = with.ledger.CheckpointPackage();
    const std::string package_bytes = json::Serialize(package);
    std::set<std::string> in_package;  // the cut's events and the checkpoint travel in it
    for (const json::Value& w : package.find("cut")->as_array()) in_package.insert(w.as_string());
    uint64_t chain = 0, above = 0;
    for (const json::Value& link : package.find("chain")->as_array()) {
      chain += json::Serialize(link).size();
      in_package.insert(*link.find_string("event"));
    }
    for (const std::string& w : with.ledger.AllInOrder())
      above += in_package.count(w) ? 0 : w.size();
    t0 = Clock::now();
    auto from =
        Ledger::FromCheckpoint(genesis, *json::Parse(package_bytes, {.max_bytes = 64 << 20}));
    if (!from) {
      std::fprintf(stderr, "package refused: %s\n", from.status().message().c_str());
      return 1;
    }
    for (const std::string& w : with.ledger.AllInOrder()) (void)from->Add(w);
    const double package_s = Seconds(t0);
    if (from->StateHash() != replayed.StateHash()) {
      std::fprintf(stderr, "the package's state is not the replayed one\n");
      return 1;
    }
    std::printf(
        "| %zu | every %zu joins (%lld) | %.3f MB (package %.3f MB, events above %llu B) | "
        "%.3f MB | %.3f s (the chain verified) |\n",
        joins, every, static_cast<long long>(with.ledger.checkpoint_seq()),
        (package_bytes.size() + above) / 1e6, package_bytes.size() / 1e6,
        static_cast<unsigned long long>(above), chain / 1e6, package_s);
  }
  std::fprintf(stderr, "(built without checkpoints in %.1f s)\n", plain.seconds);
  return 0;
}
