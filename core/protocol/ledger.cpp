#include "protocol/ledger.h"

#include <algorithm>
#include <deque>

namespace peerstack::protocol {
namespace {

Status Bad(std::string message) { return Status::Error("bad_event", std::move(message)); }

constexpr size_t kMaxParents = 16;
constexpr size_t kMaxApprovals = 4096;

}  // namespace

Result<Ledger> Ledger::FromGenesis(const std::string& wire) {
  auto st = StateFromGenesis(wire);
  if (!st) return st.status();
  auto event = Decode(wire);
  if (!event) return event.status();
  Ledger l;
  l.state_ = std::move(st).value();
  const std::string hash = HashOf(wire);
  l.events_.emplace(hash, Node{wire, std::move(event).value(), 0});
  l.heads_.insert(hash);
  const Member& first = l.state_.members.front();
  l.genesis_key_ = first.key;
  l.admitted_.emplace(first.key, Admission{0, hash, first});
  return l;
}

const std::string* Ledger::Wire(const std::string& hash) const {
  auto it = events_.find(hash);
  return it == events_.end() ? nullptr : &it->second.wire;
}

json::Value Ledger::AddressBody(const std::string& url, int64_t seq) {
  return json::Object{{"seq", seq}, {"url", url}};
}

int64_t Ledger::AddressSeq(const std::string& key_hex) const {
  auto it = addresses_.find(key_hex);
  return it == addresses_.end() ? 0 : it->second.seq;
}

Status Ledger::ValidateAddress(const Event& e) const {
  if (auto s = VerifySignature(e, cache_); !s.ok()) return Bad("author signature: " + s.message());
  const std::string* url = e.body.find_string("url");
  const int64_t* seq = e.body.find_int("seq");
  if (!url || !seq || e.body.as_object().size() != 2) return Bad("address needs url and seq");
  if (url->empty() || url->size() > 2048) return Bad("address URL empty or too long");
  if (!MembersAt(e.parents).count(e.author)) return Bad("author was not a member at the event's parents");
  int64_t highest = 0;
  for (const std::string& h : Ancestors(e.parents)) {
    const Event& a = events_.at(h).event;
    if (a.kind == "address" && a.author == e.author) {
      highest = std::max(highest, *a.body.find_int("seq"));
    }
  }
  if (*seq <= highest) {
    return Bad("address sequence " + std::to_string(*seq) + " is not above " + std::to_string(highest));
  }
  return Status::Ok();
}

json::Value Ledger::MemberAddedBody(const JoinRequest& request,
                                    const std::vector<Approval>& approvals) {
  json::Array list;
  for (const Approval& a : approvals) list.push_back(a.ToJson());
  return json::Object{{"approvals", std::move(list)}, {"request", request.ToJson()}};
}

std::set<std::string> Ledger::Ancestors(const std::vector<std::string>& from) const {
  std::set<std::string> seen;
  std::deque<std::string> todo(from.begin(), from.end());
  while (!todo.empty()) {
    std::string h = std::move(todo.front());
    todo.pop_front();
    auto it = events_.find(h);
    if (it == events_.end() || !seen.insert(h).second) continue;
    for (const std::string& p : it->second.event.parents) todo.push_back(p);
  }
  return seen;
}

std::set<std::string> Ledger::MembersAt(const std::vector<std::string>& parents) const {
  std::set<std::string> keys{genesis_key_};
  for (const std::string& h : Ancestors(parents)) {
    const Event& e = events_.at(h).event;
    if (e.kind != "member-added") continue;
    if (const json::Value* req = e.body.find("request")) {
      if (const std::string* key = req->find_string("key")) keys.insert(*key);
    }
  }
  return keys;
}

Status Ledger::ValidateMemberAdded(const Event& e) const {
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
  if (!state_.params.code_hash.empty() && request->code != state_.params.code_hash) {
    return Bad("request code hash is not the accepted one");
  }
  const std::set<std::string> members = MembersAt(e.parents);
  if (!members.count(e.author)) return Bad("author was not a member at the event's parents");
  if (members.count(request->key)) return Bad("joiner was already a member");
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
  const auto n = static_cast<int64_t>(members.size());
  const int64_t quorum = std::max<int64_t>(
      1, (state_.params.approval_numerator * n + state_.params.approval_denominator - 1) /
             state_.params.approval_denominator);
  if (static_cast<int64_t>(approvers.size()) < quorum) {
    return Bad("certificate has " + std::to_string(approvers.size()) + " approvals, needs " +
               std::to_string(quorum));
  }
  return Status::Ok();
}

Result<Ledger::Added> Ledger::Add(const std::string& wire) {
  const std::string hash = HashOf(wire);
  if (events_.count(hash)) return Added::kDuplicate;
  auto decoded = Decode(wire);
  if (!decoded) return decoded.status();
  Event& e = *decoded;
  if (e.kind != "member-added" && e.kind != "address") {
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
    depth = std::max(depth, it->second.depth + 1);
  }
  if (auto s = e.kind == "address" ? ValidateAddress(e) : ValidateMemberAdded(e); !s.ok()) {
    return s;
  }
  auto [it, inserted] = events_.emplace(hash, Node{wire, std::move(e), depth});
  for (const std::string& p : it->second.event.parents) heads_.erase(p);
  heads_.insert(hash);
  Fold(hash, it->second);
  return Added::kAdded;
}

void Ledger::Fold(const std::string& hash, const Node& node) {
  if (node.event.kind == "address") {
    const int64_t seq = *node.event.body.find_int("seq");
    auto it = addresses_.find(node.event.author);
    if (it != addresses_.end() &&
        std::tie(it->second.seq, it->second.event_hash) >= std::tie(seq, hash)) {
      return;
    }
    addresses_[node.event.author] = Address{seq, hash, *node.event.body.find_string("url")};
    RebuildMembers();
    return;
  }
  const json::Value* req = node.event.body.find("request");
  auto request = ParseJoinRequest(*req);
  Member m{NodeIdForHex(request->key), request->key, request->url, node.event.time_ms};
  auto it = admitted_.find(request->key);
  if (it != admitted_.end()) {
    // Concurrent admissions of one key: the smallest (depth, hash) decides, on every node.
    const Admission& cur = it->second;
    if (std::tie(cur.depth, cur.event_hash) <= std::tie(node.depth, hash)) return;
    it->second = Admission{node.depth, hash, m};
  } else {
    admitted_.emplace(request->key, Admission{node.depth, hash, m});
  }
  RebuildMembers();
}

void Ledger::RebuildMembers() {
  state_.members.clear();
  for (const auto& [key, a] : admitted_) {
    Member m = a.member;
    if (auto addr = addresses_.find(key); addr != addresses_.end()) m.url = addr->second.url;
    state_.members.push_back(std::move(m));
  }
  std::sort(state_.members.begin(), state_.members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
}

std::vector<std::string> Ledger::Missing(const std::vector<std::string>& their_heads,
                                         size_t limit, std::vector<std::string>* unknown) const {
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
    if (!theirs.count(h)) order.emplace_back(node.depth, h);
  }
  std::sort(order.begin(), order.end());
  std::vector<std::string> out;
  for (const auto& [d, h] : order) {
    if (out.size() >= limit) break;
    out.push_back(events_.at(h).wire);
  }
  return out;
}

std::vector<std::string> Ledger::AllInOrder() const { return Missing({}, SIZE_MAX, nullptr); }

}  // namespace peerstack::protocol
