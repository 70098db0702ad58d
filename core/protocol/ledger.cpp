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
  l.events_.emplace(hash, std::make_shared<const Node>(Node{wire, std::move(event).value(), 0}));
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
  m.accepted_code = state_.params.code_hash;
  m.release.code = state_.params.code_hash;
  m.previous.version = -1;
  for (const auto& [depth, hash] : order) Apply(m, events_.at(*hash)->event, *hash, history);
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
  std::shared_ptr<const Node> node = pool_ ? pool_->Find(hash) : nullptr;
  if (node) {
    for (const std::string& p : node->event.parents) {
      if (!events_.count(p)) return Added::kMissingParents;
    }
  } else {
    auto decoded = Decode(wire);
    if (!decoded) return decoded.status();
    Event& e = *decoded;
    if (e.kind != "member-added" && e.kind != "address" && e.kind != "member-removed" &&
        e.kind != "release" && e.kind != "recovery" && e.kind != "publishers" &&
        e.kind != "release-report") {
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
    std::optional<Membership> scratch;
    const Membership& at = At(e.parents, &scratch);
    Status valid = e.kind == "address"          ? ValidateAddress(e, at)
                   : e.kind == "member-removed" ? ValidateMemberRemoved(e, at)
                   : e.kind == "release"        ? ValidateRelease(e, at)
                   : e.kind == "recovery"       ? ValidateRecovery(e, at)
                   : e.kind == "publishers"     ? ValidatePublishers(e, at)
                   : e.kind == "release-report" ? ValidateReport(e, at)
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

}  // namespace peerstack::protocol
