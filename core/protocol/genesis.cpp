#include "protocol/genesis.h"

#include <algorithm>
#include <set>

#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::protocol {
namespace {

Status Bad(std::string message) { return Status::Error("bad_genesis", std::move(message)); }

}  // namespace

Result<Event> MakeGenesis(const crypto::SigningKey& key, const std::string& url, int64_t time_ms,
                          const GenesisParams& params) {
  Event e;
  e.kind = "genesis";
  e.time_ms = time_ms;
  const std::string pub = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  json::Array members{json::Object{{"key", pub}, {"url", url}}};
  for (const auto& [k, u] : params.founders)
    members.push_back(json::Object{{"key", k}, {"url", u}});
  json::Array publishers;
  if (params.publishers.empty()) publishers.push_back(pub);
  for (const std::string& p : params.publishers) publishers.push_back(p);
  e.body = json::Object{
      {"members", std::move(members)},
      {"params", json::Object{{"admission", params.admission},
                              {"approval_denominator", params.approval_denominator},
                              {"approval_numerator", params.approval_numerator},
                              {"code", params.code_hash},
                              {"protocol", kProtocolVersion},
                              {"publisher_threshold", params.publisher_threshold},
                              {"publishers", std::move(publishers)}}},
  };
  return Sign(std::move(e), key);
}

std::vector<std::string> NetworkState::AcceptedCodes() const {
  return AcceptedCodesOf(release, previous);
}

std::vector<std::string> NetworkState::AcceptedCodesOf(const ReleaseRef& release,
                                                       const ReleaseRef& previous) {
  std::vector<std::string> codes;
  if (release.code.empty() && release.version == 0) return codes;  // genesis names none
  codes.push_back(release.code);
  if (previous.version >= 0 && !previous.code.empty() && previous.code != release.code) {
    codes.push_back(previous.code);
  }
  return codes;
}

std::string NetworkState::StateHash() const {
  json::Array members_json;
  for (const Member& m : members) {
    members_json.push_back(json::Object{
        {"id", m.id}, {"joined", m.joined_ms}, {"key", m.key}, {"url", m.url}, {"via", m.via}});
  }
  json::Array publishers_json(publishers.begin(), publishers.end());
  json::Object used;
  for (const auto& [inv, key] : invitations_used) used.emplace(inv, key);
  const json::Value state = json::Object{
      {"invitations_used", std::move(used)},
      {"members", std::move(members_json)},
      {"network", network_id},
      {"params", json::Object{{"admission", params.admission},
                              {"approval_denominator", params.approval_denominator},
                              {"approval_numerator", params.approval_numerator},
                              {"code", params.code_hash},
                              {"publisher_threshold", params.publisher_threshold}}},
      {"publishers", std::move(publishers_json)},
      {"release",
       json::Object{
           {"code", accepted_code}, {"event", release.event}, {"version", release_version}}},
      {"publishers_seq", publishers_seq},
  };
  return crypto::Sha256Hex(json::Serialize(state));
}

Result<NetworkState> StateFromGenesis(const std::string& wire) {
  auto decoded = Decode(wire, kMaxGenesisBytes);
  if (!decoded) return decoded.status();
  const Event& e = *decoded;
  if (e.kind != "genesis") return Bad("not a genesis event");
  if (!e.parents.empty()) return Bad("genesis has no parents");
  if (auto s = VerifySignature(e); !s.ok()) return Bad("signature: " + s.message());
  const json::Value* members = e.body.find("members");
  const json::Value* params = e.body.find("params");
  if (!members || !members->is_array() || members->as_array().empty() || !params) {
    return Bad("genesis names its founding members");
  }
  const json::Value& m = members->as_array()[0];
  const std::string* key = m.find_string("key");
  const std::string* url = m.find_string("url");
  if (!key || !url || *key != e.author) return Bad("the first member must be the author");
  const int64_t* num = params->find_int("approval_numerator");
  const int64_t* den = params->find_int("approval_denominator");
  const int64_t* threshold = params->find_int("publisher_threshold");
  const int64_t* protocol = params->find_int("protocol");
  const std::string* code = params->find_string("code");
  const json::Value* publishers = params->find("publishers");
  if (!num || !den || !threshold || !protocol || !code || !publishers || !publishers->is_array()) {
    return Bad("genesis parameters missing");
  }
  if (*den <= 0 || *num <= 0 || *num > *den) return Bad("approval ratio must be in (0, 1]");
  if (*protocol != kProtocolVersion) return Bad("unsupported protocol version");
  const json::Value* admission = params->find("admission");
  if (admission && (!admission->is_string() ||
                    (admission->as_string() != "open" && admission->as_string() != "invite"))) {
    return Bad("admission must be \"open\" or \"invite\"");
  }
  NetworkState state;
  state.network_id = HashOf(wire);
  state.params = {
      *num, *den, *threshold, *code, {}, {}, admission ? admission->as_string() : "open"};
  state.accepted_code = *code;
  state.release.code = *code;
  state.previous.version = -1;
  state.created_ms = e.time_ms;
  for (const json::Value& p : publishers->as_array()) {
    if (!p.is_string() || NodeIdForHex(p.as_string()).empty()) return Bad("publisher is not a key");
    if (std::find(state.publishers.begin(), state.publishers.end(), p.as_string()) !=
        state.publishers.end()) {
      return Bad("a publisher is listed twice");
    }
    state.publishers.push_back(p.as_string());
  }
  if (*threshold < 1 || static_cast<size_t>(*threshold) > state.publishers.size()) {
    return Bad("publisher threshold out of range");
  }
  std::set<std::string> seen;
  std::vector<Member> founders;
  for (const json::Value& member : members->as_array()) {
    const std::string* k = member.find_string("key");
    const std::string* u = member.find_string("url");
    if (!k || !u || member.as_object().size() != 2) return Bad("a member has key and url");
    const std::string id = NodeIdForHex(*k);
    if (id.empty()) return Bad("a member key is not a public key");
    if (!seen.insert(*k).second) return Bad("a founding member is listed twice");
    founders.push_back(Member{id, *k, *u, e.time_ms, ""});
  }
  state.members = MemberList(std::move(founders));
  return state;
}

const Member* NetworkState::FindMemberByKey(const std::string& key_hex) const {
  return members.FindByKey(key_hex);
}

const Member* NetworkState::FindMemberByUrl(std::string_view url) const {
  for (const Member& m : members) {
    if (m.url == url) return &m;
  }
  return nullptr;
}

namespace {

const std::shared_ptr<const std::vector<Member>>& NoMembers() {
  static const auto* none =
      new std::shared_ptr<const std::vector<Member>>(std::make_shared<std::vector<Member>>());
  return *none;
}

auto ById(std::vector<Member>& rows, const std::string& id) {
  return std::lower_bound(rows.begin(), rows.end(), id,
                          [](const Member& m, const std::string& v) { return m.id < v; });
}

}  // namespace

MemberList::MemberList() : rows_(NoMembers()) {}

MemberList::MemberList(std::vector<Member> rows) {
  std::sort(rows.begin(), rows.end(), [](const Member& a, const Member& b) { return a.id < b.id; });
  rows_ = std::make_shared<std::vector<Member>>(std::move(rows));
}

const Member* MemberList::FindByKey(std::string_view key_hex) const {
  const std::string id = NodeIdForHex(key_hex);
  if (id.empty()) return nullptr;
  auto it = std::lower_bound(rows_->begin(), rows_->end(), id,
                             [](const Member& m, const std::string& v) { return m.id < v; });
  return it != rows_->end() && it->id == id && it->key == key_hex ? &*it : nullptr;
}

std::vector<Member>& MemberList::Edit() {
  if (rows_.use_count() > 1 || rows_ == NoMembers()) {
    rows_ = std::make_shared<std::vector<Member>>(*rows_);
  }
  // Ours alone now, and made non-const (every vector here is): the const is only how it is
  // shared.
  return const_cast<std::vector<Member>&>(*rows_);
}

void MemberList::Put(Member m) {
  std::vector<Member>& rows = Edit();
  auto it = ById(rows, m.id);
  if (it != rows.end() && it->id == m.id) {
    *it = std::move(m);
  } else {
    rows.insert(it, std::move(m));
  }
}

void MemberList::Erase(std::string_view key_hex) {
  if (!FindByKey(key_hex)) return;
  std::vector<Member>& rows = Edit();
  rows.erase(ById(rows, NodeIdForHex(key_hex)));
}

void MemberList::Keep(const std::set<std::string>& keys) {
  std::vector<Member> kept;
  for (const Member& m : *rows_) {
    if (keys.count(m.key)) kept.push_back(m);
  }
  if (kept.size() != rows_->size()) rows_ = std::make_shared<std::vector<Member>>(std::move(kept));
}

size_t QuorumOf(const GenesisParams& params, size_t members) {
  const auto n = static_cast<int64_t>(members);
  const int64_t q = (params.approval_numerator * n + params.approval_denominator - 1) /
                    params.approval_denominator;
  return static_cast<size_t>(std::max<int64_t>(1, q));
}

}  // namespace peerstack::protocol
