#include "protocol/ledger.h"

#include <algorithm>
#include <deque>

#include "protocol/invitation.h"

namespace peerstack::protocol {
namespace {

Status Bad(std::string message) { return Status::Error("bad_event", std::move(message)); }

constexpr size_t kMaxParents = 16;
constexpr size_t kMaxApprovals = 4096;

}  // namespace

Result<Ledger> Ledger::FromGenesis(const std::string& wire) {
  auto st = StateFromGenesis(wire);
  if (!st) return st.status();
  auto event = Decode(wire, kMaxGenesisBytes);
  if (!event) return event.status();
  Ledger l;
  l.state_ = std::move(st).value();
  l.genesis_publishers_ = l.state_.publishers;
  l.genesis_threshold_ = l.state_.params.publisher_threshold;
  const std::string hash = HashOf(wire);
  l.genesis_ = std::make_shared<const Node>(Node{wire, std::move(event).value(), 0});
  l.events_.emplace(hash, l.genesis_);
  l.heads_.insert(hash);
  l.RebuildState();
  return l;
}

const std::string* Ledger::Wire(const std::string& hash) const {
  auto it = events_.find(hash);
  return it == events_.end() ? nullptr : &it->second->wire;
}

json::Value Ledger::MemberAddedBody(const JoinRequest& request,
                                    const std::vector<Approval>& approvals) {
  json::Array list;
  for (const Approval& a : approvals) list.push_back(a.ToJson());
  return json::Object{{"approvals", std::move(list)}, {"request", request.ToJson()}};
}

json::Value Ledger::AddressBody(const std::string& url, int64_t seq, const std::string& via) {
  json::Value body = json::Object{{"seq", seq}, {"url", url}};
  if (!via.empty()) body.as_object().emplace("via", via);
  return body;
}

json::Value Ledger::ReleaseBody(const Manifest& m, const std::vector<PublisherSignature>& sigs) {
  json::Array list;
  for (const auto& s : sigs)
    list.push_back(json::Object{{"publisher", s.publisher}, {"sig", s.sig}});
  return json::Object{{"manifest", m.ToJson()}, {"signatures", std::move(list)}};
}

json::Value Ledger::PublishersBody(const std::vector<std::string>& keys, int64_t threshold,
                                   int64_t seq, const std::vector<PublisherSignature>& sigs) {
  json::Array list(keys.begin(), keys.end());
  return json::Object{{"publishers", std::move(list)},
                      {"seq", seq},
                      {"signatures", ToJson(sigs)},
                      {"threshold", threshold}};
}

json::Value Ledger::ReportBody(const std::string& release_event, const std::string& status,
                               const std::string& reason) {
  return json::Object{
      {"reason", reason.substr(0, 256)}, {"release", release_event}, {"status", status}};
}

std::string Ledger::RecoveryPayload(const std::string& network,
                                    const std::vector<std::string>& keep, int64_t epoch) {
  json::Array keys(keep.begin(), keep.end());
  return json::Serialize(
      json::Object{{"epoch", epoch}, {"keep", std::move(keys)}, {"network", network}});
}

json::Value Ledger::RecoveryBody(const std::vector<std::string>& keep, int64_t epoch,
                                 const std::vector<PublisherSignature>& sigs) {
  json::Array keys(keep.begin(), keep.end());
  json::Array list;
  for (const auto& s : sigs)
    list.push_back(json::Object{{"publisher", s.publisher}, {"sig", s.sig}});
  return json::Object{{"epoch", epoch}, {"keep", std::move(keys)}, {"signatures", std::move(list)}};
}

json::Value Ledger::MemberRemovedBody(const std::string& key, const std::string& reason,
                                      const std::vector<Approval>& approvals) {
  json::Array list;
  for (const Approval& a : approvals) list.push_back(a.ToJson());
  return json::Object{{"approvals", std::move(list)}, {"key", key}, {"reason", reason}};
}

int64_t Ledger::AddressSeq(const std::string& key_hex) const {
  // Every announcement counts, made while a member before (what a new one must rise above).
  auto it = current_.address_seq.find(key_hex);
  return it == current_.address_seq.end() ? 0 : it->second;
}

bool Ledger::IsMember(const std::string& key_hex) const {
  return current_.members.count(key_hex) != 0;
}

std::set<std::string> Ledger::Ancestors(const std::vector<std::string>& from) const {
  std::set<std::string> seen;
  std::deque<std::string> todo(from.begin(), from.end());
  while (!todo.empty()) {
    std::string h = std::move(todo.front());
    todo.pop_front();
    auto it = events_.find(h);
    if (it == events_.end() || !seen.insert(h).second) continue;
    for (const std::string& p : it->second->event.parents) todo.push_back(p);
  }
  return seen;
}

void Ledger::History::Observe(const MemberList& members, const std::vector<std::string>& publishers,
                              int64_t t) {
  auto update = [t](std::map<std::string, std::vector<Span>>& spans,
                    const std::set<std::string>& now) {
    for (auto& [key, list] : spans) {
      if (!list.empty() && list.back().second == INT64_MAX && !now.count(key))
        list.back().second = t;
    }
    for (const std::string& key : now) {
      auto& list = spans[key];
      if (list.empty() || list.back().second != INT64_MAX) list.emplace_back(t, INT64_MAX);
    }
  };
  std::set<std::string> keys;
  for (const Member& m : members) keys.insert(m.key);
  update(member, keys);
  update(publisher, std::set<std::string>(publishers.begin(), publishers.end()));
}

Ledger::History Ledger::MembershipHistory() const {
  std::set<std::string> all;
  for (const auto& [h, n] : events_) all.insert(h);
  History history;
  (void)Replay(all, &history);
  return history;
}

template <typename F>
void Ledger::ChangeMembers(Membership& m, const std::string& hash, F change) const {
  if (pool_) {
    if (EventPool::Rows after = pool_->Step(m.members.shared(), hash)) {
      m.members = MemberList(std::move(after));
      return;
    }
  }
  const EventPool::Rows before = m.members.shared();  // also keeps it from being edited in place
  change(m.members);
  if (pool_) pool_->RememberStep(before, hash, m.members.shared());
}

Ledger::Membership Ledger::Replay(const std::set<std::string>& hashes, History* history) const {
  std::vector<std::pair<int64_t, const std::string*>> order;
  order.reserve(hashes.size());
  for (const std::string& h : hashes) order.emplace_back(events_.at(h)->depth, &h);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  Membership m;
  if (base_) {
    m = base_->after;
    if (history) *history = base_->history;
  } else {
    m.accepted_code = state_.params.code_hash;
    m.release.code = state_.params.code_hash;
    m.previous.version = -1;
  }
  for (const auto& [depth, hash] : order) {
    if (base_ && base_->cut.count(*hash)) continue;  // folded into the base
    Apply(m, events_.at(*hash)->event, *hash, history);
  }
  return m;
}

void Ledger::Apply(Membership& m, const Event& e, const std::string& hash, History* history) const {
  if (e.kind == "recovery") {
    const int64_t epoch = *e.body.find_int("epoch");
    if (epoch <= m.recovery_epoch) return;
    m.recovery_epoch = epoch;
    std::set<std::string> keep;
    for (const json::Value& k : e.body.find("keep")->as_array()) keep.insert(k.as_string());
    for (const Member& gone : m.members) {
      if (!keep.count(gone.key)) m.address.erase(gone.key);
    }
    ChangeMembers(m, hash, [&](MemberList& list) { list.Keep(keep); });
  } else if (e.kind == "release") {
    m.releases.insert(hash);
    auto manifest = ParseManifest(*e.body.find("manifest"));
    if (std::tie(manifest->version, hash) > std::tie(m.release_version, m.release_hash)) {
      m.release_version = manifest->version;
      m.release_hash = hash;
      m.accepted_code = manifest->CodeHash();
      m.previous = m.release;
      m.release = {hash, manifest->version, m.accepted_code, e.time_ms};
    }
  } else if (e.kind == "publishers") {
    const int64_t seq = *e.body.find_int("seq");
    if (seq <= m.publishers_seq) return;
    m.publishers_seq = seq;
    m.publishers.clear();
    for (const json::Value& k : e.body.find("publishers")->as_array())
      m.publishers.push_back(k.as_string());
    m.publisher_threshold = *e.body.find_int("threshold");
  } else if (e.kind == "release-report") {
    const std::string release = *e.body.find_string("release");
    const std::string status = *e.body.find_string("status");
    m.reported.emplace(e.author, release, status);
    if (!m.members.count(e.author)) return;
    NetworkState::Report& r = m.reports[release][e.author];
    // A failure stands once reported; a later healthy report does not hide it.
    if (r.status == "failed") return;
    r = {status, *e.body.find_string("reason"), e.time_ms};
  } else if (e.kind == "genesis") {
    m.publishers = genesis_publishers_;
    m.publisher_threshold = genesis_threshold_;
    ChangeMembers(m, hash, [&](MemberList& list) {
      std::vector<Member> founders;
      for (const json::Value& g : e.body.find("members")->as_array()) {
        const std::string key = *g.find_string("key");
        founders.push_back(Member{NodeIdForHex(key), key, *g.find_string("url"), e.time_ms, ""});
      }
      list = MemberList(std::move(founders));
    });
    m.checkpoint_members = m.members;
  } else if (e.kind == "checkpoint") {
    // No effect on the fold: a checkpoint takes effect as the ledger's base (Rebase), where
    // it names its cut's members as the next one's signers.
  } else if (e.kind == "member-added") {
    const json::Value* req = e.body.find("request");
    const std::string key = *req->find_string("key");
    if (const json::Value* inv = req->find("invitation");
        inv && state_.params.admission == "invite") {
      auto parsed = ParseInvitation(*inv);  // Add checked it
      if (!parsed || m.invitations_used.count(parsed->Hash()) || m.members.count(key)) return;
      m.invitations_used.emplace(parsed->Hash(), key);
    }
    if (m.members.count(key)) return;  // of two concurrent admissions the first decides
    ChangeMembers(m, hash, [&](MemberList& list) {
      list.Put(Member{NodeIdForHex(key), key, *req->find_string("url"), e.time_ms, ""});
    });
  } else if (e.kind == "member-removed") {
    const std::string key = *e.body.find_string("key");
    m.address.erase(key);
    if (m.members.count(key)) ChangeMembers(m, hash, [&](MemberList& list) { list.Erase(key); });
  } else if (e.kind == "address") {
    const int64_t seq = *e.body.find_int("seq");
    int64_t& highest = m.address_seq[e.author];
    highest = std::max(highest, seq);
    const Member* member = m.members.FindByKey(e.author);
    if (!member) return;
    auto cur = m.address.find(e.author);
    if (cur != m.address.end() &&
        std::tie(cur->second.first, cur->second.second) >= std::tie(seq, hash)) {
      return;
    }
    m.address[e.author] = {seq, hash};
    Member moved = *member;
    moved.url = *e.body.find_string("url");
    const std::string* via = e.body.find_string("via");
    moved.via = via ? *via : std::string();
    ChangeMembers(m, hash, [&](MemberList& list) { list.Put(std::move(moved)); });
  }
  if (history && (e.kind == "genesis" || e.kind == "member-added" || e.kind == "member-removed" ||
                  e.kind == "recovery" || e.kind == "publishers")) {
    history->Observe(m.members, m.publishers, e.time_ms);
  }
}

bool Ledger::AreHeads(const std::vector<std::string>& hashes) const {
  return hashes.size() == heads_.size() &&
         std::set<std::string>(hashes.begin(), hashes.end()) == heads_;
}

const Ledger::Membership& Ledger::At(const std::vector<std::string>& parents,
                                     std::optional<Membership>* scratch) const {
  if (AreHeads(parents)) return current_;
  *scratch = Replay(Ancestors(parents));
  return **scratch;
}

void Ledger::RebuildState() {
  std::set<std::string> all;
  last_ = {-1, ""};
  for (const auto& [h, n] : events_) {
    all.insert(h);
    last_ = std::max(last_, std::make_pair(n->depth, h));
  }
  current_ = Replay(all);
  state_hash_.clear();
  state_.members = current_.members;
  state_.release_version = current_.release_version;
  state_.accepted_code = current_.accepted_code;
  state_.release = current_.release;
  state_.previous = current_.previous;
  state_.publishers = current_.publishers;
  state_.params.publisher_threshold = current_.publisher_threshold;
  state_.publishers_seq = current_.publishers_seq;
  state_.invitations_used = current_.invitations_used;
  state_.reports.clear();
  for (const std::string* h : {&current_.release.event, &current_.previous.event}) {
    auto it = current_.reports.find(*h);
    if (!h->empty() && it != current_.reports.end()) state_.reports[*h] = it->second;
  }
}

void Ledger::UpdateState(const Event& e) {
  if (e.kind == "checkpoint") return;  // the state is the same; Rebase prunes
  state_hash_.clear();
  if (e.kind == "member-added" || e.kind == "member-removed" || e.kind == "address") {
    state_.members = current_.members;  // shared: no copy
    if (state_.invitations_used.size() != current_.invitations_used.size())
      state_.invitations_used = current_.invitations_used;
  } else if (e.kind == "publishers") {
    state_.publishers = current_.publishers;
    state_.params.publisher_threshold = current_.publisher_threshold;
    state_.publishers_seq = current_.publishers_seq;
  } else if (e.kind == "release-report") {
    const std::string& release = *e.body.find_string("release");
    auto r = current_.reports.find(release);
    if (r == current_.reports.end()) return;
    if (release != current_.release.event && release != current_.previous.event) return;
    auto mine = r->second.find(e.author);
    if (mine != r->second.end()) state_.reports[release][e.author] = mine->second;
  } else {
    RebuildState();  // release, recovery: rare, and they change much at once
  }
}

const std::string& Ledger::StateHash() const {
  if (state_hash_.empty()) state_hash_ = state_.StateHash();
  return state_hash_;
}

std::string Ledger::RebuiltStateHash() const {
  Ledger fresh = *this;
  fresh.pool_ = nullptr;  // replayed by itself, not from the lists the fold made
  fresh.RebuildState();
  return fresh.StateHash();
}

Status Ledger::ValidateAddress(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const std::string* url = e.body.find_string("url");
  const int64_t* seq = e.body.find_int("seq");
  const json::Value* via = e.body.find("via");
  const size_t fields = via ? 3 : 2;
  if (!url || !seq || e.body.as_object().size() != fields) return Bad("address needs url and seq");
  if (via && (!via->is_string() || via->as_string().size() > 32)) return Bad("bad via");
  if (url->empty() || url->size() > 2048) return Bad("address URL empty or too long");
  if (!at.members.count(e.author)) return Bad("author was not a member at the event's parents");
  auto seen = at.address_seq.find(e.author);
  const int64_t highest = seen == at.address_seq.end() ? 0 : seen->second;
  if (*seq <= highest) {
    return Bad("address sequence " + std::to_string(*seq) + " is not above " +
               std::to_string(highest));
  }
  return Status::Ok();
}

Status Ledger::ValidateMemberAdded(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const json::Value* req_json = e.body.find("request");
  const json::Value* approvals_json = e.body.find("approvals");
  if (!req_json || !approvals_json || !approvals_json->is_array() ||
      e.body.as_object().size() != 2) {
    return Bad("member-added needs exactly a request and approvals");
  }
  auto request = ParseJoinRequest(*req_json);
  if (!request) return Bad("request: " + request.status().message());
  if (auto s = VerifyJoinRequest(*request, cache_); !s.ok()) {
    return Bad("request signature: " + s.message());
  }
  if (request->network != state_.network_id) return Bad("request is for another network");
  if (request->protocol != kProtocolVersion) return Bad("request has another protocol version");
  if (NodeIdForHex(request->key).empty()) return Bad("request key is not a public key");
  if (const auto codes = NetworkState::AcceptedCodesOf(at.release, at.previous);
      !codes.empty() && std::find(codes.begin(), codes.end(), request->code) == codes.end()) {
    return Bad("request code hash is not an accepted one (the release in force or the one before)");
  }
  const auto& members = at.members;
  if (!members.count(e.author)) return Bad("author was not a member at the event's parents");
  if (members.count(request->key)) return Bad("joiner was already a member");
  if (state_.params.admission != "invite" && !request->invitation.is_null()) {
    return Bad("this network admits without invitations and the request carries one");
  }
  if (state_.params.admission == "invite") {
    if (request->invitation.is_null())
      return Bad("this network admits by invitation and the request carries none");
    auto inv = ParseInvitation(request->invitation);
    if (!inv) return Bad("invitation: " + inv.status().message());
    if (auto s = CheckInvitation(
            *inv, state_.network_id, request->time_ms,
            [&](const std::string& k) { return members.count(k) > 0; },
            [&](const std::string& h) {
              auto it = at.invitations_used.find(h);
              return it == at.invitations_used.end() ? std::string() : it->second;
            },
            cache_);
        !s.ok()) {
      return Bad("invitation: " + s.message());
    }
  }
  const auto& list = approvals_json->as_array();
  if (list.size() > kMaxApprovals) return Bad("too many approvals");
  const std::string request_hash = request->Hash();
  std::set<std::string> approvers;
  for (const json::Value& a_json : list) {
    auto a = ParseApproval(a_json);
    if (!a) return Bad("approval: " + a.status().message());
    if (!members.count(a->approver)) return Bad("approval from a non-member");
    if (!approvers.insert(a->approver).second) return Bad("duplicate approver");
    if (auto s = VerifyApproval(*a, state_.network_id, request_hash, cache_); !s.ok()) {
      return Bad("approval signature: " + s.message());
    }
  }
  const size_t quorum = QuorumOf(state_.params, members.size());
  if (approvers.size() >= quorum) return Status::Ok();
  if (members.size() <= kCommitteeSize) {
    return Bad("certificate has " + std::to_string(approvers.size()) + " approvals, needs " +
               std::to_string(quorum));
  }
  // A larger network: a quorum of the join's committee will do.
  const std::set<std::string> committee = CommitteeOf(request_hash, members);
  size_t in_committee = 0;
  for (const std::string& a : approvers) in_committee += committee.count(a);
  const size_t committee_quorum = QuorumOf(state_.params, kCommitteeSize);
  if (in_committee >= committee_quorum) return Status::Ok();
  return Bad("certificate has " + std::to_string(in_committee) +
             " approvals of the join's committee, needs " + std::to_string(committee_quorum) +
             " (or " + std::to_string(quorum) + " of all members)");
}

Status Ledger::CheckPublisherSignatures(
    const Membership& at, const json::Value& list, const std::string& what,
    const std::function<Status(const std::string&, const std::string&)>& verify) const {
  const std::set<std::string> publishers(at.publishers.begin(), at.publishers.end());
  if (list.as_array().size() > 64) return Bad("too many signatures");
  std::set<std::string> signers;
  for (const json::Value& s : list.as_array()) {
    const std::string* pub = s.find_string("publisher");
    const std::string* sig = s.find_string("sig");
    if (!pub || !sig) return Bad("a signature has publisher and sig");
    if (!publishers.count(*pub)) return Bad("signature from a key that is not a publisher");
    if (!signers.insert(*pub).second) return Bad("duplicate publisher signature");
    if (auto st = verify(*pub, *sig); !st.ok()) return Bad("publisher signature: " + st.message());
  }
  if (static_cast<int64_t>(signers.size()) < at.publisher_threshold) {
    return Bad(what + " has " + std::to_string(signers.size()) + " publisher signatures, needs " +
               std::to_string(at.publisher_threshold));
  }
  return Status::Ok();
}

Status Ledger::ValidateRelease(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const json::Value* mj = e.body.find("manifest");
  const json::Value* sj = e.body.find("signatures");
  if (!mj || !sj || !sj->is_array() || e.body.as_object().size() != 2) {
    return Bad("release needs a manifest and signatures");
  }
  auto manifest = ParseManifest(*mj);
  if (!manifest) return Bad(manifest.status().message());
  if (!at.members.count(e.author)) return Bad("author was not a member at the event's parents");
  if (manifest->network != state_.network_id) {
    return Bad("the manifest is for network " + manifest->network.substr(0, 16) + ", not this one");
  }
  if (manifest->version <= at.release_version) {
    return Bad("manifest version " + std::to_string(manifest->version) + " is not above " +
               std::to_string(at.release_version) + " (no rollback)");
  }
  return CheckPublisherSignatures(at, *sj, "release",
                                  [&](const std::string& pub, const std::string& sig) {
                                    return VerifyManifestSignature({pub, sig}, *manifest, cache_);
                                  });
}

Status Ledger::ValidateRecovery(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const int64_t* epoch = e.body.find_int("epoch");
  const json::Value* keep = e.body.find("keep");
  const json::Value* sj = e.body.find("signatures");
  if (!epoch || !keep || !keep->is_array() || !sj || !sj->is_array() ||
      e.body.as_object().size() != 3) {
    return Bad("recovery needs epoch, keep and signatures");
  }
  if (*epoch <= at.recovery_epoch) return Bad("recovery epoch is not rising");
  std::vector<std::string> keys;
  size_t kept_members = 0;
  for (const json::Value& k : keep->as_array()) {
    if (!k.is_string()) return Bad("keep lists keys");
    keys.push_back(k.as_string());
    kept_members += at.members.count(k.as_string());
  }
  if (kept_members == 0) return Bad("a recovery must keep at least one current member");
  const std::set<std::string> publishers(at.publishers.begin(), at.publishers.end());
  const bool author_ok = at.members.count(e.author) || publishers.count(e.author);
  if (!author_ok) return Bad("author is neither a member nor a publisher");
  const std::string payload = RecoveryPayload(state_.network_id, keys, *epoch);
  return CheckPublisherSignatures(
      at, *sj, "recovery", [&](const std::string& pub, const std::string& sig) {
        return VerifyHexSignature(pub, "recovery", payload, sig, cache_);
      });
}

Status Ledger::ValidatePublishers(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const json::Value* keys_json = e.body.find("publishers");
  const int64_t* seq = e.body.find_int("seq");
  const int64_t* threshold = e.body.find_int("threshold");
  const json::Value* sj = e.body.find("signatures");
  if (!keys_json || !keys_json->is_array() || !seq || !threshold || !sj || !sj->is_array() ||
      e.body.as_object().size() != 4) {
    return Bad("publishers needs publishers, seq, signatures and threshold");
  }
  std::vector<std::string> keys;
  for (const json::Value& k : keys_json->as_array()) {
    if (!k.is_string() || NodeIdForHex(k.as_string()).empty())
      return Bad("a publisher is not a key");
    if (std::find(keys.begin(), keys.end(), k.as_string()) != keys.end())
      return Bad("a publisher is listed twice");
    keys.push_back(k.as_string());
  }
  if (keys.empty() || keys.size() > 64) return Bad("a publisher set has 1 to 64 keys");
  if (*threshold < 1 || *threshold > static_cast<int64_t>(keys.size()))
    return Bad("publisher threshold out of range");
  if (*seq <= at.publishers_seq) return Bad("publisher-set sequence is not rising");
  const std::set<std::string> current(at.publishers.begin(), at.publishers.end());
  if (!at.members.count(e.author) && !current.count(e.author)) {
    return Bad("author is neither a member nor a publisher");
  }
  const std::string payload = PublisherSetPayload(state_.network_id, keys, *threshold, *seq);
  return CheckPublisherSignatures(
      at, *sj, "publisher-set change", [&](const std::string& pub, const std::string& sig) {
        return VerifyHexSignature(pub, "publisher-set", payload, sig, cache_);
      });
}

Status Ledger::ValidateReport(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const std::string* release = e.body.find_string("release");
  const std::string* status = e.body.find_string("status");
  const std::string* reason = e.body.find_string("reason");
  if (!release || !status || !reason || e.body.as_object().size() != 3) {
    return Bad("release-report needs reason, release and status");
  }
  if (*status != "healthy" && *status != "failed") return Bad("status must be healthy or failed");
  if (reason->size() > 256) return Bad("reason longer than 256 bytes");
  if (!at.releases.count(*release)) {
    return Bad("the reported release is not among the event's ancestors");
  }
  if (!at.members.count(e.author)) return Bad("author was not a member at the event's parents");
  if (at.reported.count({e.author, *release, *status})) return Bad("this report was made already");
  return Status::Ok();
}

Status Ledger::ValidateMemberRemoved(const Event& e, const Membership& at) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const std::string* key = e.body.find_string("key");
  const std::string* reason = e.body.find_string("reason");
  const json::Value* approvals_json = e.body.find("approvals");
  if (!key || !reason || !approvals_json || !approvals_json->is_array() ||
      e.body.as_object().size() != 3) {
    return Bad("member-removed needs key, reason and approvals");
  }
  const auto& members = at.members;
  if (!members.count(*key)) return Bad("the removed key was not a member at the event's parents");
  if (!members.count(e.author)) return Bad("author was not a member at the event's parents");
  if (members.size() == 1) return Bad("the last member cannot be removed");
  const auto& list = approvals_json->as_array();
  if (*reason == "leave") {
    if (e.author != *key) return Bad("only a member itself can leave");
    if (!list.empty()) return Bad("a leave carries no approvals");
    return Status::Ok();
  }
  if (*reason != "evicted") return Bad("reason must be leave or evicted");
  if (e.author == *key) return Bad("a member does not evict itself; it leaves");
  if (list.size() > kMaxApprovals) return Bad("too many approvals");
  std::set<std::string> approvers;
  for (const json::Value& a_json : list) {
    auto a = ParseApproval(a_json);
    if (!a) return Bad("approval: " + a.status().message());
    if (a->approver == *key) return Bad("the evicted member cannot approve its eviction");
    if (!members.count(a->approver)) return Bad("approval from a non-member");
    if (!approvers.insert(a->approver).second) return Bad("duplicate approver");
    if (auto s = VerifyEvictionApproval(*a, state_.network_id, *key, cache_); !s.ok()) {
      return Bad("approval signature: " + s.message());
    }
  }
  const size_t quorum = QuorumOf(state_.params, members.size());
  if (approvers.size() < quorum) {
    return Bad("eviction has " + std::to_string(approvers.size()) + " approvals, needs " +
               std::to_string(quorum));
  }
  return Status::Ok();
}

Result<Ledger::Added> Ledger::Add(const std::string& wire) {
  const std::string hash = HashOf(wire);
  if (events_.count(hash)) return Added::kDuplicate;
  // Held by a ledger of the pool: parsed, and valid wherever its parents are.
  // Not a checkpoint: whether one is the next depends on the checkpoint a ledger stands on.
  std::shared_ptr<const Node> node = pool_ ? pool_->Find(hash) : nullptr;
  if (node && node->event.kind == "checkpoint") node = nullptr;
  if (node) {
    for (const std::string& p : node->event.parents) {
      if (!events_.count(p)) return Added::kMissingParents;
    }
    if (auto s = CheckCover(node->event.parents); !s.ok()) return s;
  } else {
    auto decoded = Decode(wire);
    if (!decoded) return decoded.status();
    Event& e = *decoded;
    if (e.kind != "member-added" && e.kind != "address" && e.kind != "member-removed" &&
        e.kind != "release" && e.kind != "recovery" && e.kind != "publishers" &&
        e.kind != "release-report" && e.kind != "checkpoint") {
      return Bad("unknown or misplaced event kind '" + e.kind + "'");
    }
    if (e.parents.empty() || e.parents.size() > kMaxParents) return Bad("bad parent count");
    if (std::set<std::string>(e.parents.begin(), e.parents.end()).size() != e.parents.size()) {
      return Bad("duplicate parent");
    }
    int64_t depth = 0;
    for (const std::string& p : e.parents) {
      auto it = events_.find(p);
      if (it == events_.end()) return Added::kMissingParents;
      depth = std::max(depth, it->second->depth + 1);
    }
    if (auto s = CheckCover(e.parents); !s.ok()) return s;
    std::optional<Membership> scratch;
    const Membership& at = At(e.parents, &scratch);
    Status valid = e.kind == "address"          ? ValidateAddress(e, at)
                   : e.kind == "member-removed" ? ValidateMemberRemoved(e, at)
                   : e.kind == "release"        ? ValidateRelease(e, at)
                   : e.kind == "recovery"       ? ValidateRecovery(e, at)
                   : e.kind == "publishers"     ? ValidatePublishers(e, at)
                   : e.kind == "release-report" ? ValidateReport(e, at)
                   : e.kind == "checkpoint"     ? ValidateCheckpoint(e, at)
                                                : ValidateMemberAdded(e, at);
    if (!valid.ok()) return valid;
    node = std::make_shared<const Node>(Node{wire, std::move(e), depth});
    if (pool_) pool_->Insert(hash, node);
  }
  const Node& added = *events_.emplace(hash, node).first->second;
  for (const std::string& p : added.event.parents) heads_.erase(p);
  heads_.insert(hash);
  if (auto key = std::make_pair(added.depth, hash); key > last_) {
    // The next in replay order: fold it into the state as it is.
    Apply(current_, added.event, hash, nullptr);
    last_ = std::move(key);
    UpdateState(added.event);
  } else {
    RebuildState();
  }
  if (base_) {
    uint32_t mask = 0;
    for (const std::string& p : added.event.parents) mask |= cover_.at(p);
    cover_.emplace(hash, mask);
  }
  if (added.event.kind != "checkpoint") {
    ++above_checkpoint_;
  } else {
    Rebase(hash);  // valid: the next checkpoint
  }
  return Added::kAdded;
}

std::shared_ptr<const Ledger::Node> EventPool::Find(const std::string& hash) {
  auto it = events_.find(hash);
  return it == events_.end() ? nullptr : it->second.lock();
}

namespace {

// Forgets what no ledger holds any more, once per map's size of inserts: amortised O(1).
template <typename Map, typename Gone>
void SweepNowAndThen(Map& map, size_t& inserts, Gone gone) {
  if (++inserts < map.size()) return;
  inserts = 0;
  std::erase_if(map, gone);
}

}  // namespace

EventPool::Rows EventPool::Step(const Rows& before, const std::string& event_hash) {
  auto it = steps_.find({before.get(), event_hash});
  if (it == steps_.end()) return nullptr;
  // The address may belong to a list freed since and made anew: only the same live list.
  if (it->second.before.lock() != before) return nullptr;
  return it->second.after.lock();
}

void EventPool::RememberStep(const Rows& before, const std::string& event_hash, const Rows& after) {
  steps_[{before.get(), event_hash}] = {before, after};
  SweepNowAndThen(steps_, steps_since_sweep_, [](const auto& s) {
    return s.second.before.expired() || s.second.after.expired();
  });
}

void EventPool::Insert(const std::string& hash, const std::shared_ptr<const Ledger::Node>& node) {
  events_[hash] = node;
  SweepNowAndThen(events_, inserts_since_sweep_, [](const auto& e) { return e.second.expired(); });
}

std::vector<std::string> Ledger::Missing(const std::vector<std::string>& their_heads, size_t limit,
                                         std::vector<std::string>* unknown) const {
  if (AreHeads(their_heads)) return {};  // the same heads: nothing to send (the usual sync)
  std::vector<std::string> known;
  for (const std::string& h : their_heads) {
    if (events_.count(h)) {
      known.push_back(h);
    } else if (unknown) {
      unknown->push_back(h);
    }
  }
  const std::set<std::string> theirs = Ancestors(known);
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [h, node] : events_) {
    if (!theirs.count(h)) order.emplace_back(node->depth, h);
  }
  std::sort(order.begin(), order.end());
  std::vector<std::string> out;
  for (const auto& [d, h] : order) {
    if (out.size() >= limit) break;
    out.push_back(events_.at(h)->wire);
  }
  return out;
}

std::vector<std::string> Ledger::AllInOrder() const { return Missing({}, SIZE_MAX, nullptr); }

std::vector<std::string> Ledger::StoredEvents() const {
  std::vector<std::string> all = AllInOrder();
  if (base_) all.insert(all.begin(), genesis_->wire);
  return all;
}

// ---- checkpoints ---------------------------------------------------------------------------

namespace {

json::Value RefToJson(const NetworkState::ReleaseRef& r) {
  return json::Object{
      {"code", r.code}, {"event", r.event}, {"time", r.time_ms}, {"version", r.version}};
}

// Strict readers for a checkpoint's state (its digest was checked first: a failure here is a
// state no honest quorum signed, or another version's).
struct Reader {
  bool ok = true;
  const json::Value* Field(const json::Value& o, std::string_view k, json::Value::Type t) {
    const json::Value* v = o.is_object() ? o.find(k) : nullptr;
    if (!v || v->type() != t) {
      ok = false;
      return nullptr;
    }
    return v;
  }
  std::string Str(const json::Value& o, std::string_view k) {
    const json::Value* v = Field(o, k, json::Value::Type::kString);
    return v ? v->as_string() : std::string();
  }
  int64_t Int(const json::Value& o, std::string_view k) {
    const json::Value* v = Field(o, k, json::Value::Type::kInt);
    return v ? v->as_int() : 0;
  }
  const json::Array& Arr(const json::Value& o, std::string_view k) {
    static const json::Array kEmpty;
    const json::Value* v = Field(o, k, json::Value::Type::kArray);
    return v ? v->as_array() : kEmpty;
  }
  const json::Object& Obj(const json::Value& o, std::string_view k) {
    static const json::Object kEmpty;
    const json::Value* v = Field(o, k, json::Value::Type::kObject);
    return v ? v->as_object() : kEmpty;
  }
  std::string AsStr(const json::Value& v) {
    if (!v.is_string()) {
      ok = false;
      return {};
    }
    return v.as_string();
  }
  int64_t AsInt(const json::Value& v) {
    if (!v.is_int()) {
      ok = false;
      return 0;
    }
    return v.as_int();
  }
  NetworkState::ReleaseRef Ref(const json::Value& o, std::string_view k) {
    static const json::Value kNull;
    const json::Value* v = Field(o, k, json::Value::Type::kObject);
    const json::Value& r = v ? *v : kNull;
    if (!v) return {};
    return {Str(r, "event"), Int(r, "version"), Str(r, "code"), Int(r, "time")};
  }
};

std::vector<std::string> KeysOf(const std::vector<Member>& members) {
  std::vector<std::string> keys;
  keys.reserve(members.size());
  for (const Member& m : members) keys.push_back(m.key);
  return keys;
}

MemberList MembersOfKeys(const std::vector<std::string>& keys) {
  std::vector<Member> rows;
  rows.reserve(keys.size());
  for (const std::string& k : keys) rows.push_back(Member{NodeIdForHex(k), k, "", 0, ""});
  return MemberList(std::move(rows));
}

}  // namespace

json::Value Ledger::StateJson(const Membership& m) {
  json::Array members;
  for (const Member& r : m.members) {
    members.push_back(
        json::Object{{"joined", r.joined_ms}, {"key", r.key}, {"url", r.url}, {"via", r.via}});
  }
  json::Array signers;
  for (const Member& r : m.checkpoint_members) signers.push_back(r.key);
  json::Object address;
  for (const auto& [k, v] : m.address) address.emplace(k, json::Array{v.first, v.second});
  json::Object address_seq;
  for (const auto& [k, v] : m.address_seq) address_seq.emplace(k, v);
  json::Object reports;
  for (const auto& [release, by] : m.reports) {
    json::Object o;
    for (const auto& [author, r] : by) {
      o.emplace(author,
                json::Object{{"reason", r.reason}, {"status", r.status}, {"time", r.time_ms}});
    }
    reports.emplace(release, std::move(o));
  }
  json::Array reported;
  for (const auto& [a, r, st] : m.reported) reported.push_back(json::Array{a, r, st});
  json::Object invitations;
  for (const auto& [h, k] : m.invitations_used) invitations.emplace(h, k);
  return json::Object{
      {"accepted_code", m.accepted_code},
      {"address", std::move(address)},
      {"address_seq", std::move(address_seq)},
      {"checkpoint_members", std::move(signers)},
      {"checkpoint_seq", m.checkpoint_seq},
      {"invitations_used", std::move(invitations)},
      {"members", std::move(members)},
      {"previous", RefToJson(m.previous)},
      {"publisher_threshold", m.publisher_threshold},
      {"publishers", json::Array(m.publishers.begin(), m.publishers.end())},
      {"publishers_seq", m.publishers_seq},
      {"recovery_epoch", m.recovery_epoch},
      {"release", RefToJson(m.release)},
      {"release_hash", m.release_hash},
      {"release_version", m.release_version},
      {"releases", json::Array(m.releases.begin(), m.releases.end())},
      {"reported", std::move(reported)},
      {"reports", std::move(reports)},
      {"version", 1},
  };
}

Result<Ledger::Membership> Ledger::MembershipFromJson(const json::Value& v) {
  Reader r;
  Membership m;
  if (r.Int(v, "version") != 1) return Bad("a checkpoint state of another version");
  m.accepted_code = r.Str(v, "accepted_code");
  for (const auto& [k, a] : r.Obj(v, "address")) {
    if (!a.is_array() || a.as_array().size() != 2) return Bad("checkpoint state: bad address");
    m.address[k] = {r.AsInt(a.as_array()[0]), r.AsStr(a.as_array()[1])};
  }
  for (const auto& [k, seq] : r.Obj(v, "address_seq")) m.address_seq[k] = r.AsInt(seq);
  std::vector<std::string> signers;
  for (const json::Value& k : r.Arr(v, "checkpoint_members")) signers.push_back(r.AsStr(k));
  m.checkpoint_members = MembersOfKeys(signers);
  m.checkpoint_seq = r.Int(v, "checkpoint_seq");
  for (const auto& [h, k] : r.Obj(v, "invitations_used")) m.invitations_used[h] = r.AsStr(k);
  std::vector<Member> rows;
  for (const json::Value& row : r.Arr(v, "members")) {
    Member mem;
    mem.key = r.Str(row, "key");
    mem.id = NodeIdForHex(mem.key);
    mem.url = r.Str(row, "url");
    mem.joined_ms = r.Int(row, "joined");
    mem.via = r.Str(row, "via");
    if (mem.id.empty()) return Bad("checkpoint state: a member key is not a key");
    rows.push_back(std::move(mem));
  }
  m.members = MemberList(std::move(rows));
  m.previous = r.Ref(v, "previous");
  m.publisher_threshold = r.Int(v, "publisher_threshold");
  for (const json::Value& k : r.Arr(v, "publishers")) m.publishers.push_back(r.AsStr(k));
  m.publishers_seq = r.Int(v, "publishers_seq");
  m.recovery_epoch = r.Int(v, "recovery_epoch");
  m.release = r.Ref(v, "release");
  m.release_hash = r.Str(v, "release_hash");
  m.release_version = r.Int(v, "release_version");
  for (const json::Value& h : r.Arr(v, "releases")) m.releases.insert(r.AsStr(h));
  for (const json::Value& t : r.Arr(v, "reported")) {
    if (!t.is_array() || t.as_array().size() != 3) return Bad("checkpoint state: bad report");
    const auto& a = t.as_array();
    m.reported.emplace(r.AsStr(a[0]), r.AsStr(a[1]), r.AsStr(a[2]));
  }
  for (const auto& [release, by] : r.Obj(v, "reports")) {
    if (!by.is_object()) return Bad("checkpoint state: bad reports");
    for (const auto& [author, rep] : by.as_object()) {
      m.reports[release][author] = {r.Str(rep, "status"), r.Str(rep, "reason"), r.Int(rep, "time")};
    }
  }
  if (!r.ok) return Bad("checkpoint state: a field is missing or of another type");
  // What was read is what was signed: the same JSON again (no field ignored or reordered).
  if (StateJson(m) != v) return Bad("checkpoint state is not in canonical form");
  return m;
}

Status Ledger::CheckCover(const std::vector<std::string>& parents) const {
  if (!base_) return Status::Ok();
  uint32_t mask = 0;
  for (const std::string& p : parents) {
    auto it = cover_.find(p);
    if (it != cover_.end()) mask |= it->second;
  }
  const uint32_t full = (uint32_t{1} << base_->cut.size()) - 1;
  if (mask == full) return Status::Ok();
  return Bad("the event does not descend from every event of checkpoint " +
             std::to_string(base_->seq) + "'s cut (it is older than the checkpoint)");
}

Result<CheckpointProposal> Ledger::ProposeCheckpoint() const {
  if (heads_.size() > 16) return Status::Error("too_many_heads", "more than 16 heads");
  CheckpointProposal p;
  p.seq = current_.checkpoint_seq + 1;
  p.cut.assign(heads_.begin(), heads_.end());  // a std::set: sorted
  for (const std::string& h : p.cut) p.depths.push_back(events_.at(h)->depth);
  std::set<std::string> all;
  for (const auto& [h, n] : events_) all.insert(h);
  const auto [m, history] = FoldWithHistory(all);
  p.state = StateDigest(CutJson(m, history));
  p.members = MembersDigest(current_.members);
  return p;
}

Status Ledger::CheckProposal(const CheckpointProposal& p) const {
  for (size_t i = 0; i < p.cut.size(); ++i) {
    auto it = events_.find(p.cut[i]);
    if (it == events_.end()) return Status::Error("missing", "a cut event is not held here");
    if (it->second->depth != p.depths[i]) return Bad("a cut event's depth is not the one stated");
  }
  if (auto s = CheckCover(p.cut); !s.ok()) return s;
  const auto [at, history] = FoldWithHistory(Ancestors(p.cut));
  if (p.seq != at.checkpoint_seq + 1) {
    return Bad("checkpoint " + std::to_string(p.seq) + " is not the next one (" +
               std::to_string(at.checkpoint_seq + 1) + ")");
  }
  if (p.members != MembersDigest(at.members))
    return Bad("the cut's members are not the ones stated");
  if (p.state != StateDigest(CutJson(at, history))) {
    return Bad("the cut's state is not the one stated");
  }
  return Status::Ok();
}

json::Value Ledger::CheckpointBody(const CheckpointProposal& p,
                                   const std::vector<Approval>& approvals) {
  json::Array list;
  for (const Approval& a : approvals) list.push_back(a.ToJson());
  return json::Object{{"approvals", std::move(list)}, {"proposal", p.ToJson()}};
}

namespace {

// A checkpoint event's proposal: signed by its author, body {approvals, proposal}, parents
// its cut.
Result<CheckpointProposal> ProposalOf(const Event& e, crypto::VerifyCache* cache) {
  if (auto s = VerifySignature(e, cache); !s.ok()) return Bad("author signature: " + s.message());
  const json::Value* pj = e.body.find("proposal");
  const json::Value* aj = e.body.find("approvals");
  if (!pj || !aj || e.body.as_object().size() != 2) {
    return Bad("checkpoint needs exactly approvals and a proposal");
  }
  auto p = ParseCheckpointProposal(*pj);
  if (!p) return p.status();
  if (e.parents != p->cut) return Bad("a checkpoint's parents are its cut");
  return p;
}

}  // namespace

Status Ledger::ValidateCheckpoint(const Event& e, const Membership& at) const {
  auto p = ProposalOf(e, cache_);
  if (!p) return p.status();
  if (!at.members.count(e.author)) return Bad("author was not a member at the event's parents");
  if (auto s = CheckProposal(*p); !s.ok()) return Bad(s.message());
  return CheckCheckpointApprovals(*e.body.find("approvals"), state_.network_id, *p,
                                  at.checkpoint_members, state_.params, cache_);
}

void Ledger::Rebase(const std::string& k_hash) {
  const Node& k = *events_.at(k_hash);
  const std::set<std::string> below = Ancestors(k.event.parents);
  auto base = std::make_shared<Base>();
  base->seq = *k.event.body.find("proposal")->find_int("seq");
  base->at_cut = Replay(below, &base->history);
  base->after = After(base->at_cut, base->seq);
  base->cut.insert(k.event.parents.begin(), k.event.parents.end());
  if (base_) base->chain = base_->chain;
  base->chain.emplace_back(k.wire, KeysOf(base->at_cut.checkpoint_members));
  base->cut_state = CutJson(base->at_cut, base->history);
  base->hash = k_hash;
  // Keep the cut and what descends from all of it through kept events; void the rest.
  std::vector<std::pair<int64_t, const std::string*>> order;
  for (const auto& [h, n] : events_) order.emplace_back(n->depth, &h);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  std::unordered_map<std::string, uint32_t> cover;
  size_t bit = 0;
  for (const std::string& c : base->cut) cover[c] = uint32_t{1} << bit++;
  const uint32_t full = (uint32_t{1} << base->cut.size()) - 1;
  std::unordered_map<std::string, std::shared_ptr<const Node>> kept;
  for (const auto& [depth, hash] : order) {
    const auto& node = events_.at(*hash);
    if (base->cut.count(*hash)) {
      kept.emplace(*hash, node);
      continue;
    }
    if (below.count(*hash)) continue;  // pruned: its effect is in the base
    uint32_t mask = 0;
    bool parents_kept = true;
    for (const std::string& p : node->event.parents) {
      auto it = cover.find(p);
      if (it == cover.end()) {
        parents_kept = false;
        break;
      }
      mask |= it->second;
    }
    if (parents_kept && mask == full) {
      cover.emplace(*hash, mask);
      kept.emplace(*hash, node);
    } else {
      voided_.push_back(node->wire);
    }
  }
  events_ = std::move(kept);
  cover_ = std::move(cover);
  above_checkpoint_ = 0;
  for (const auto& [h, n] : events_) {
    above_checkpoint_ += !base->cut.count(h) && n->event.kind != "checkpoint";
  }
  heads_.clear();
  std::set<std::string> parents;
  for (const auto& [h, n] : events_)
    parents.insert(n->event.parents.begin(), n->event.parents.end());
  for (const auto& [h, n] : events_) {
    if (!parents.count(h)) heads_.insert(h);
  }
  base_ = std::move(base);
  RebuildState();
}

Ledger::Membership Ledger::After(const Membership& at_cut, int64_t seq) {
  Membership m = at_cut;
  m.checkpoint_seq = seq;
  m.checkpoint_members = at_cut.members;  // who signs the next one
  return m;
}

json::Value Ledger::HistoryJson(const History& h) {
  auto spans = [](const std::map<std::string, std::vector<History::Span>>& by_key) {
    json::Object o;
    for (const auto& [key, list] : by_key) {
      json::Array a;
      for (const auto& [from, to] : list) a.push_back(json::Array{from, to});
      o.emplace(key, std::move(a));
    }
    return o;
  };
  return json::Object{{"member", spans(h.member)}, {"publisher", spans(h.publisher)}};
}

Result<Ledger::History> Ledger::HistoryFromJson(const json::Value& v) {
  History h;
  auto read = [&](std::string_view name, std::map<std::string, std::vector<History::Span>>& out) {
    const json::Value* o = v.find(name);
    if (!o || !o->is_object()) return false;
    for (const auto& [key, list] : o->as_object()) {
      if (!list.is_array()) return false;
      for (const json::Value& span : list.as_array()) {
        if (!span.is_array() || span.as_array().size() != 2 || !span.as_array()[0].is_int() ||
            !span.as_array()[1].is_int()) {
          return false;
        }
        out[key].emplace_back(span.as_array()[0].as_int(), span.as_array()[1].as_int());
      }
    }
    return true;
  };
  if (!v.is_object() || v.as_object().size() != 2 || !read("member", h.member) ||
      !read("publisher", h.publisher)) {
    return Bad("checkpoint state: bad membership history");
  }
  return h;
}

json::Value Ledger::CutJson(const Membership& m, const History& h) {
  return json::Object{{"history", HistoryJson(h)}, {"state", StateJson(m)}};
}

std::pair<Ledger::Membership, Ledger::History> Ledger::FoldWithHistory(
    const std::set<std::string>& hashes) const {
  History history;
  Membership m = Replay(hashes, &history);
  return {std::move(m), std::move(history)};
}

const std::string& Ledger::checkpoint_hash() const {
  static const std::string kNone;
  return base_ ? base_->hash : kNone;
}

bool Ledger::Prefers(const json::Value& package) const {
  const json::Value* chain = package.find("chain");
  if (!chain || !chain->is_array() || chain->as_array().empty()) return false;
  const auto& links = chain->as_array();
  const size_t ours = base_ ? base_->chain.size() : 0;
  if (links.size() < ours) return false;
  auto wire = [&](size_t i) { return links[i].find_string("event"); };
  for (size_t i = 0; i + 1 < ours; ++i) {  // our chain but its last link: the same events
    const std::string* w = wire(i);
    if (!w || *w != base_->chain[i].first) return false;
  }
  if (ours == 0) return true;
  const std::string* last = wire(ours - 1);
  if (!last) return false;
  if (*last == base_->chain.back().first) return links.size() > ours;
  return HashOf(*last) < base_->hash;  // another checkpoint of our sequence, the smaller hash
}

json::Value Ledger::CheckpointPackage() const {
  if (!base_) return nullptr;
  json::Array chain;
  for (const auto& [wire, signers] : base_->chain) {
    chain.push_back(
        json::Object{{"event", wire}, {"signers", json::Array(signers.begin(), signers.end())}});
  }
  json::Array cut;
  for (const std::string& h : base_->cut) cut.push_back(events_.at(h)->wire);
  return json::Object{
      {"chain", std::move(chain)}, {"cut", std::move(cut)}, {"state", base_->cut_state}};
}

Result<Ledger> Ledger::FromCheckpoint(const std::string& genesis_wire, const json::Value& package,
                                      crypto::VerifyCache* cache) {
  auto l = FromGenesis(genesis_wire);
  if (!l) return l.status();
  const json::Value* chain = package.find("chain");
  const json::Value* cut = package.find("cut");
  const json::Value* state = package.find("state");
  if (!chain || !chain->is_array() || chain->as_array().empty() || !cut || !cut->is_array() ||
      !state || package.as_object().size() != 3) {
    return Bad("a checkpoint package has chain, cut and state");
  }
  // Link by link: checkpoint s signed by a quorum of the members checkpoint s - 1 named.
  auto base = std::make_shared<Base>();
  std::string named = MembersDigest(l->current_.members);  // the founders
  std::optional<CheckpointProposal> last;
  Event last_event;
  for (const json::Value& link : chain->as_array()) {
    const std::string* wire = link.find_string("event");
    const json::Value* signers = link.find("signers");
    if (!wire || !signers || !signers->is_array()) return Bad("a chain link has event and signers");
    auto e = Decode(*wire);
    if (!e) return e.status();
    if (e->kind != "checkpoint") return Bad("a chain link is not a checkpoint");
    auto p = ProposalOf(*e, cache);
    if (!p) return p.status();
    if (p->seq != (last ? last->seq : 0) + 1) return Bad("the chain skips a checkpoint");
    std::vector<std::string> keys;
    for (const json::Value& k : signers->as_array()) {
      if (!k.is_string()) return Bad("signers are keys");
      keys.push_back(k.as_string());
    }
    const MemberList signer_list = MembersOfKeys(keys);
    if (MembersDigest(signer_list) != named) {
      return Bad("checkpoint " + std::to_string(p->seq) +
                 "'s signers are not the members the checkpoint before it named");
    }
    if (auto s = CheckCheckpointApprovals(*e->body.find("approvals"), l->network_id(), *p,
                                          signer_list, l->state_.params, cache);
        !s.ok()) {
      return Bad("checkpoint " + std::to_string(p->seq) + ": " + s.message());
    }
    named = p->members;
    base->chain.emplace_back(*wire, std::move(keys));
    last = std::move(p).value();
    last_event = std::move(e).value();
  }
  // The state at the last cut: the one its quorum signed.
  if (StateDigest(*state) != last->state) return Bad("the checkpoint state is not the signed one");
  const json::Value* state_json = state->find("state");
  const json::Value* history_json = state->find("history");
  if (!state_json || !history_json || state->as_object().size() != 2) {
    return Bad("a checkpoint state has history and state");
  }
  auto at = MembershipFromJson(*state_json);
  if (!at) return at.status();
  auto history = HistoryFromJson(*history_json);
  if (!history) return history.status();
  if (MembersDigest(at->members) != last->members) return Bad("the state's members are not named");
  if (!at->members.count(last_event.author)) return Bad("the checkpoint's author is no member");
  if (at->checkpoint_seq != last->seq - 1 ||
      MembersDigest(at->checkpoint_members) !=
          MembersDigest(MembersOfKeys(base->chain.back().second))) {
    return Bad("the checkpoint state's signers are not its chain's");
  }
  base->seq = last->seq;
  base->at_cut = std::move(at).value();
  base->history = std::move(history).value();
  base->after = After(base->at_cut, base->seq);
  base->cut.insert(last->cut.begin(), last->cut.end());
  base->cut_state = *state;
  base->hash = HashOf(base->chain.back().first);
  // The cut's events, by their hashes; their depths are the signed ones.
  l->events_.clear();
  l->cover_.clear();
  if (cut->as_array().size() != last->cut.size()) {
    return Bad("the package holds " + std::to_string(cut->as_array().size()) +
               " cut events, the checkpoint names " + std::to_string(last->cut.size()));
  }
  int64_t depth = 0;
  for (const json::Value& w : cut->as_array()) {
    if (!w.is_string()) return Bad("a cut event is wire bytes");
    const std::string h = HashOf(w.as_string());
    auto pos = std::find(last->cut.begin(), last->cut.end(), h);
    if (pos == last->cut.end() || l->events_.count(h)) return Bad("an event not of the cut");
    auto e = Decode(w.as_string());
    if (!e) return e.status();
    const int64_t d = last->depths[pos - last->cut.begin()];
    depth = std::max(depth, d + 1);
    l->cover_[h] = uint32_t{1} << (pos - last->cut.begin());
    l->events_.emplace(h,
                       std::make_shared<const Node>(Node{w.as_string(), std::move(e).value(), d}));
  }
  // The cut is sorted, as is a std::set: bit i is the i-th cut event both here and in Rebase.
  const std::string k_wire = base->chain.back().first;
  const std::string k_hash = HashOf(k_wire);
  l->cover_[k_hash] = (uint32_t{1} << last->cut.size()) - 1;
  l->events_.emplace(k_hash,
                     std::make_shared<const Node>(Node{k_wire, std::move(last_event), depth}));
  l->heads_ = {k_hash};
  l->base_ = std::move(base);
  l->RebuildState();
  return l;
}

}  // namespace peerstack::protocol
