#include "protocol/engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "crypto/encoding.h"
#include "protocol/checkpoint.h"

namespace peerstack::protocol {
namespace {

constexpr size_t kMaxOrphans = 4096;
constexpr size_t kMaxPending = 1024;
constexpr size_t kMaxEarlyJoins = 16;

std::string Str(const json::Value& body, const char* key) {
  const std::string* s = body.find_string(key);
  return s ? *s : std::string();
}

}  // namespace

Engine::Engine(EngineConfig config, crypto::SigningKey key, Ledger ledger, Random* random)
    : config_(std::move(config)),
      key_(std::move(key)),
      random_(random),
      ledger_(std::move(ledger)) {
  key_hex_ = crypto::HexEncode(key_.public_key().data(), key_.public_key().size());
  stored_checkpoint_ = ledger_->checkpoint_hash();  // what it was loaded from is stored
  ledger_->set_verify_cache(config_.verify_cache);
  ledger_->set_event_pool(config_.event_pool);
}

Engine::Engine(EngineConfig config, crypto::SigningKey key, std::string seed_url, Random* random)
    : config_(std::move(config)),
      key_(std::move(key)),
      random_(random),
      seed_url_(std::move(seed_url)),
      joining_(true) {
  key_hex_ = crypto::HexEncode(key_.public_key().data(), key_.public_key().size());
}

bool Engine::is_member() const { return ledger_ && ledger_->IsMember(key_hex_); }

size_t Engine::pending_approvals() const {
  size_t n = 0;
  for (const auto& [hash, p] : pending_) {
    if (!p.done && p.sponsor == config_.url) n += p.approvals.size();
  }
  return n;
}

size_t Engine::pending_joins() const {
  size_t n = 0;
  for (const auto& [hash, p] : pending_) {
    if (!p.done && !(ledger_ && ledger_->IsMember(p.request.key))) ++n;
  }
  return n;
}

std::string Engine::RandomHex(size_t bytes) {
  std::string out;
  while (out.size() < bytes * 2) {
    const uint64_t r = random_->Next();
    out += crypto::HexEncode(reinterpret_cast<const uint8_t*>(&r), sizeof r);
  }
  out.resize(bytes * 2);
  return out;
}

void Engine::Send(Output* out, const std::string& to, std::string type, json::Value body) const {
  if (to.empty() || to == config_.url) return;
  out->messages.push_back(Envelope{config_.url, to, std::move(type), std::move(body)});
}

std::vector<std::string> Engine::OtherMemberUrls() const {
  std::vector<std::string> urls;
  if (!ledger_) return urls;
  for (const Member& m : ledger_->state().members) {
    if (m.key != key_hex_ && !m.url.empty()) urls.push_back(m.url);
  }
  return urls;
}

std::vector<std::string> Engine::RandomMemberUrls(size_t k, const std::string& except) {
  std::vector<std::string> picked;
  if (!ledger_ || k == 0) return picked;
  const std::vector<Member>& members = ledger_->state().members;
  auto eligible = [&](const Member& m) {
    return m.key != key_hex_ && !m.url.empty() && m.url != except;
  };
  if (members.size() <= 4 * k + 4) {
    // Few members: draw from the list of the eligible ones.
    std::vector<const std::string*> urls;
    for (const Member& m : members) {
      if (eligible(m)) urls.push_back(&m.url);
    }
    while (picked.size() < k && !urls.empty()) {
      const size_t i = random_->Next() % urls.size();
      picked.push_back(*urls[i]);
      urls[i] = urls.back();
      urls.pop_back();
    }
    return picked;
  }
  // Many: draw indices, skipping ourselves, `except` and repeats (at most 3 in 4 members
  // are ever excluded here, so the expected draws stay below 4 per pick; the cap only
  // bounds the worst case).
  std::set<size_t> used;
  for (size_t draws = 0; picked.size() < k && draws < 64 * k; ++draws) {
    const size_t i = random_->Next() % members.size();
    if (!eligible(members[i]) || !used.insert(i).second) continue;
    picked.push_back(members[i].url);
  }
  return picked;
}

void Engine::Receive(const Envelope& in, int64_t now, Output* out) {
  Heard(in.from, now);
  const std::string& t = in.type;
  if (t == "ping")
    OnPing(in, out);
  else if (t == "pingreq")
    OnPingReq(in, out);
  else if (t == "ack")
    OnAck(in, now, out);
  else if (t == "join")
    OnJoin(in, now, out);
  else if (t == "challenge")
    OnChallenge(in, out);
  else if (t == "answer")
    OnAnswer(in, now, out);
  else if (t == "approval")
    OnApproval(in, now, out);
  else if (t == "event")
    OnEvent(in, out);
  else if (t == "sync")
    OnSync(in, now, out);
  else if (t == "events")
    OnEvents(in, now, out);
  else if (t == "refused")
    OnRefused(in, out);
  else if (t == "evict")
    OnEvict(in, out);
  else if (t == "evictapproval")
    OnEvictApproval(in, now, out);
  else if (t == "ckptpropose")
    OnCheckpointPropose(in, now, out);
  else if (t == "ckptapproval")
    OnCheckpointApproval(in, now, out);
  // "accepted" needs no action: the member-added event itself makes us a member.
  if (!early_joins_.empty() && is_member()) {
    std::vector<Envelope> early = std::move(early_joins_);
    early_joins_.clear();
    for (const Envelope& e : early) OnJoin(e, now, out);
  }
  Settle(now, out);
}

// ---- member side of a join -------------------------------------------------------------

void Engine::OnJoin(const Envelope& in, int64_t now, Output* out) {
  if (!is_member()) {
    // A sponsor asks a member it just admitted about its other joins (AskNewMembers) right
    // after sending it the event that admits it; the two may arrive in either order.
    if (joining_ && ledger_ && in.body.find_string("sponsor") &&
        early_joins_.size() < kMaxEarlyJoins) {
      early_joins_.push_back(in);
    }
    return;
  }
  const json::Value* req_json = in.body.find("request");
  if (!req_json) return;
  auto request = ParseJoinRequest(*req_json);
  if (!request || !VerifyJoinRequest(*request, config_.verify_cache).ok()) {
    return;  // forged: no answer at all
  }
  const std::string hash = request->Hash();
  const std::string sponsor =
      in.body.find_string("sponsor") ? Str(in.body, "sponsor") : config_.url;
  auto refuse = [&](const std::string& reason) {
    Send(out, request->url, "refused", json::Object{{"reason", reason}, {"request", hash}});
  };
  if (auto it = pending_.find(hash); it != pending_.end()) {
    // The same request again (a retry or a replay): resend what we already did.
    Pending& p = it->second;
    if (p.answered && p.sponsor != config_.url) {
      Send(out, p.sponsor, "approval",
           json::Object{{"approval", MakeApproval(key_, ledger_->network_id(), hash).ToJson()},
                        {"request", hash}});
    } else if (!p.answered) {
      Send(out, request->url, "challenge", json::Object{{"nonce", p.nonce}, {"request", hash}});
    }
    return;
  }
  const NetworkState& st = ledger_->state();
  if (request->network != st.network_id) return refuse("this node is in another network");
  if (request->protocol != kProtocolVersion) {
    return refuse("protocol version " + std::to_string(request->protocol) + " is not " +
                  std::to_string(kProtocolVersion));
  }
  if (const std::vector<std::string> codes = st.AcceptedCodes();
      !codes.empty() && std::find(codes.begin(), codes.end(), request->code) == codes.end()) {
    // The joiner fetches and installs the release named here, then asks again
    // (core/release/): the words "run release N" are what it looks for.
    return refuse("code hash " + request->code.substr(0, 16) +
                  " does not match the network's accepted code " + st.accepted_code +
                  (st.release_version > 0
                       ? " (run release " + std::to_string(st.release_version) + ")"
                       : std::string(" (genesis)")));
  }
  if (const int64_t skew = request->time_ms - now; std::llabs(skew) > config_.freshness_ms) {
    // A replayed request, or a clock that is off: say by how much, so a person can tell.
    return refuse("the request's time is " + std::to_string(std::llabs(skew) / 60000) + " min " +
                  (skew > 0 ? "ahead of" : "behind") + " this member's clock (at most " +
                  std::to_string(config_.freshness_ms / 60000) +
                  " min allowed): a replay, or a clock that is off; check the clocks");
  }
  if (ledger_->IsMember(request->key)) return refuse("already a member");
  if (seen_requests_.count(hash)) return;  // completed earlier
  if (st.params.admission == "invite") {
    if (request->invitation.is_null()) {
      return refuse(
          "this network admits members by invitation: ask a member for one (`peerstack invite`) "
          "and join with its link or --invite");
    }
    auto inv = ParseInvitation(request->invitation);
    if (!inv) return refuse(inv.status().message());
    const auto used_by = [&](const std::string& h) {
      auto it = st.invitations_used.find(h);
      return it == st.invitations_used.end() ? std::string() : it->second;
    };
    if (auto s = CheckInvitation(
            *inv, st.network_id, now, [&](const std::string& k) { return ledger_->IsMember(k); },
            used_by, config_.verify_cache);
        !s.ok()) {
      return refuse(s.message());
    }
    // Another joiner's join in progress here with the same invitation (the same joiner's
    // retries, with new nonces, are the same admission).
    for (const auto& [h, p] : pending_) {
      if (p.done || p.request.key == request->key || p.request.invitation.is_null()) continue;
      if (auto other = ParseInvitation(p.request.invitation);
          other && other->Hash() == inv->Hash()) {
        return refuse(
            "the invitation is in use by another node's join in progress: an invitation admits one "
            "node");
      }
    }
  }
  if (pending_.size() >= kMaxPending) return refuse("too many joins in progress; retry later");
  Pending p;
  p.request = *request;
  p.sponsor = sponsor;
  p.nonce = RandomHex(16);
  p.created_ms = now;
  Pending& mine = pending_.emplace(hash, std::move(p)).first->second;
  if (sponsor == config_.url) {
    // Ask every other member (or the join's committee) for its approval.
    for (const std::string& url : ApproverUrls(hash, mine)) {
      mine.asked.insert(url);
      Send(out, url, "join",
           json::Object{{"request", request->ToJson()}, {"sponsor", config_.url}});
    }
  }
  Send(out, request->url, "challenge", json::Object{{"nonce", mine.nonce}, {"request", hash}});
}

// The quorum of a join counts the members as of the sponsor's heads when it completes, which
// include members admitted after the request went out: they were never asked. Without
// asking them, a join whose quorum needs every member that answers (the others silent or
// gone) stalls whenever another join completes first, until the joiner retries with a fresh
// request (2 s, then to a random member, maybe a silent one).
const std::set<std::string>* Engine::CommitteeFor(const std::string& hash, Pending& p) {
  const std::vector<Member>& members = ledger_->state().members;
  if (members.size() <= kCommitteeSize) return nullptr;
  if (p.committee_at != ledger_->size()) {  // as of our heads now (Add changes the size)
    p.committee = CommitteeOf(hash, members);
    p.committee_at = ledger_->size();
  }
  return &p.committee;
}

std::vector<std::string> Engine::ApproverUrls(const std::string& hash, Pending& p) {
  const std::set<std::string>* committee = CommitteeFor(hash, p);
  if (!committee) return OtherMemberUrls();
  std::vector<std::string> urls;
  for (const Member& m : ledger_->state().members) {
    if (m.key != key_hex_ && !m.url.empty() && committee->count(m.key)) urls.push_back(m.url);
  }
  return urls;
}

void Engine::AskNewMembers(Output* out) {
  for (auto& [hash, p] : pending_) {
    if (p.done || p.sponsor != config_.url || ledger_->IsMember(p.request.key)) continue;
    for (const std::string& url : ApproverUrls(hash, p)) {
      if (url == p.request.url || !p.asked.insert(url).second) continue;
      Send(out, url, "join",
           json::Object{{"request", p.request.ToJson()}, {"sponsor", config_.url}});
    }
  }
}

void Engine::OnAnswer(const Envelope& in, int64_t now, Output* out) {
  const std::string hash = Str(in.body, "request");
  auto it = pending_.find(hash);
  if (it == pending_.end() || it->second.answered || it->second.done) return;
  Pending& p = it->second;
  if (Str(in.body, "nonce") != p.nonce) return;
  if (!VerifyChallenge(p.request.key, p.nonce, hash, Str(in.body, "sig")).ok()) return;
  // The answer must come from the URL the request names (the one we challenged).
  if (in.from != p.request.url) return;
  p.answered = true;
  Approval mine = MakeApproval(key_, ledger_->network_id(), hash);
  if (p.sponsor == config_.url) {
    p.approvals.emplace(mine.approver, mine);
    MaybeComplete(hash, now, out);
  } else {
    Send(out, p.sponsor, "approval", json::Object{{"approval", mine.ToJson()}, {"request", hash}});
  }
}

void Engine::OnApproval(const Envelope& in, int64_t now, Output* out) {
  const std::string hash = Str(in.body, "request");
  auto it = pending_.find(hash);
  if (it == pending_.end() || it->second.sponsor != config_.url || it->second.done) return;
  const json::Value* a_json = in.body.find("approval");
  if (!a_json) return;
  auto a = ParseApproval(*a_json);
  if (!a || !ledger_->IsMember(a->approver)) return;
  if (!VerifyApproval(*a, ledger_->network_id(), hash, config_.verify_cache).ok()) {
    return;  // forged: ignored
  }
  it->second.approvals.emplace(a->approver, *a);
  MaybeComplete(hash, now, out);
}

void Engine::MaybeComplete(const std::string& hash, int64_t now, Output* out) {
  Pending& p = pending_.at(hash);
  if (p.done || !ledger_) return;
  // Approvals count only from current members (the certificate is checked against the
  // event's parents: our heads), and in a large network only from the join's committee.
  const std::set<std::string>* committee = CommitteeFor(hash, p);
  std::vector<Approval> valid;
  for (const auto& [key, a] : p.approvals) {
    if (ledger_->IsMember(key) && (!committee || committee->count(key))) valid.push_back(a);
  }
  const size_t needed =
      committee ? QuorumOf(ledger_->state().params, kCommitteeSize) : ledger_->state().Quorum();
  if (valid.size() < needed) return;
  auto wire = EmitOwn("member-added", Ledger::MemberAddedBody(p.request, valid), now, out);
  if (!wire) return;
  p.done = true;
  seen_requests_.insert(hash);
  Gossip(*wire, "", out);
  Send(out, p.request.url, "event", json::Object{{"event", *wire}});
  Send(out, p.request.url, "accepted", json::Object{{"request", hash}});
  AskNewMembers(out);  // after the event: the new member needs it to take part
}

// ---- joiner side ----------------------------------------------------------------------

void Engine::OnChallenge(const Envelope& in, Output* out) {
  if (!my_request_) return;
  const std::string hash = Str(in.body, "request");
  if (hash != my_request_->Hash()) return;
  const std::string nonce = Str(in.body, "nonce");
  if (nonce.empty() || nonce.size() > 128) return;
  Send(
      out, in.from, "answer",
      json::Object{{"nonce", nonce}, {"request", hash}, {"sig", SignChallenge(key_, nonce, hash)}});
}

void Engine::OnRefused(const Envelope& in, Output* out) {
  if (!my_request_ || Str(in.body, "request") != my_request_->Hash()) return;
  out->refusals.push_back(Str(in.body, "reason"));
}

void Engine::SendJoinRequest(int64_t now, Output* out) {
  if (!ledger_) {
    // First learn the network: pull the ledger from the seed.
    Send(out, seed_url_, "sync", json::Object{{"heads", json::Array{}}});
    return;
  }
  // The invitation goes only to a network that admits by one (an open network's ledger
  // refuses a request that carries one).
  my_request_ = MakeJoinRequest(
      key_, config_.url, config_.code_hash, ledger_->network_id(), RandomHex(16), now,
      ledger_->state().params.admission == "invite" ? config_.invitation : json::Value(nullptr));
  // A retry goes to a random member (the previous sponsor may be gone).
  std::string target = seed_url_;
  if (join_backoff_ms_ > config_.join_retry_ms) {
    if (auto urls = RandomMemberUrls(1); !urls.empty()) target = urls.front();
  }
  Send(out, target, "join", json::Object{{"request", my_request_->ToJson()}});
}

// ---- spreading events -----------------------------------------------------------------

void Engine::Gossip(const std::string& wire, const std::string& except, Output* out) {
  size_t fanout = config_.fanout;
  if (fanout == 0) {
    const double n = static_cast<double>(ledger_->state().members.size());
    fanout = static_cast<size_t>(std::ceil(std::log(std::max(2.0, n)))) + 1;
  }
  for (const std::string& url : RandomMemberUrls(fanout, except)) {
    Send(out, url, "event", json::Object{{"event", wire}});
  }
}

void Engine::Accept(const std::string& wire, const std::string& from, Output* out) {
  if (!ledger_) return;
  auto added = ledger_->Add(wire);
  if (!added) return;  // invalid: dropped
  if (*added == Ledger::Added::kMissingParents) {
    if (orphans_.size() < kMaxOrphans) orphans_.emplace(HashOf(wire), wire);
    Send(out, from, "sync", SyncBody());
    return;
  }
  if (*added != Ledger::Added::kAdded) return;
  out->new_events.push_back(wire);
  Gossip(wire, from, out);
  // Orphans whose parents may now be here.
  bool progress = true;
  while (progress && !orphans_.empty()) {
    progress = false;
    for (auto it = orphans_.begin(); it != orphans_.end();) {
      auto r = ledger_->Add(it->second);
      if (r && *r == Ledger::Added::kMissingParents) {
        ++it;
        continue;
      }
      if (r && *r == Ledger::Added::kAdded) {
        out->new_events.push_back(it->second);
        Gossip(it->second, "", out);
        progress = true;
      }
      it = orphans_.erase(it);
    }
  }
  AskNewMembers(out);
}

void Engine::OnEvent(const Envelope& in, Output* out) {
  const std::string* wire = in.body.find_string("event");
  if (!wire || !ledger_) return;
  Accept(*wire, in.from, out);
}

void Engine::OnSync(const Envelope& in, int64_t now, Output* out) {
  if (!ledger_) return;
  // Answers go to the URL the message names. For members that URL is bound to their key (the
  // transport checks it); anyone else could name a victim's URL, so non-members get at most
  // one answer per URL every 2 s and 20 a second in all: no reflection amplifier.
  if (!ledger_->state().FindMemberByUrl(in.from)) {
    if (!stranger_syncs_.Admit(in.from, now)) return;
  }
  NoteHeads(in.from, in.body.find("heads"), now);
  std::vector<std::string> heads;
  if (const json::Value* h = in.body.find("heads"); h && h->is_array()) {
    for (const json::Value& v : h->as_array()) {
      if (v.is_string()) heads.push_back(v.as_string());
    }
  }
  std::vector<std::string> unknown;
  json::Array events;
  // Behind our checkpoint (a joiner, a node down across it): the package, then the events
  // above the cut. Or on another checkpoint of our sequence, with a larger hash: ours is the
  // one that stays.
  const int64_t* their_checkpoint = in.body.find_int("checkpoint");
  const int64_t theirs = their_checkpoint ? *their_checkpoint : 0;
  const std::string* their_base = in.body.find_string("base");
  const bool package = ledger_->checkpoint_seq() > theirs ||
                       (theirs > 0 && theirs == ledger_->checkpoint_seq() && their_base &&
                        ledger_->checkpoint_hash() < *their_base);
  if (heads.empty()) {
    if (ledger_->checkpoint_seq() > 0) events.push_back(ledger_->genesis_wire());
    for (const std::string& w : ledger_->AllInOrder()) {
      if (events.size() >= config_.sync_batch) break;
      events.push_back(w);
    }
  } else {
    for (const std::string& w : ledger_->Missing(heads, config_.sync_batch, &unknown)) {
      events.push_back(w);
    }
  }
  json::Array mine;
  for (const std::string& h : ledger_->Heads()) mine.push_back(h);
  if (!events.empty() || !unknown.empty()) {
    json::Object body{{"events", std::move(events)}, {"heads", mine}};
    if (package) body.emplace("checkpoint", ledger_->CheckpointPackage());
    Send(out, in.from, "events", std::move(body));
  }
  // They have events we lack: ask for them (our heads tell them what we have).
  if (!unknown.empty() && is_member()) {
    Send(out, in.from, "sync", SyncBody());
  }
}

void Engine::OnEvents(const Envelope& in, int64_t now, Output* out) {
  const json::Value* events = in.body.find("events");
  if (!events || !events->is_array()) return;
  NoteHeads(in.from, in.body.find("heads"), now);
  const auto& list = events->as_array();
  const json::Value* package = in.body.find("checkpoint");
  if (package && !package->is_object()) package = nullptr;
  if (!ledger_) {
    // A joiner learning the network: the first event must be a genesis, and a checkpoint
    // package (when the network has one) is verified from it.
    if (list.empty() || !list.front().is_string()) return;
    auto l = package ? Ledger::FromCheckpoint(list.front().as_string(), *package)
                     : Ledger::FromGenesis(list.front().as_string());
    if (!l) return;
    ledger_ = std::move(l).value();
    ledger_->set_verify_cache(config_.verify_cache);
    ledger_->set_event_pool(config_.event_pool);
    out->new_events.push_back(list.front().as_string());
    for (size_t i = 1; i < list.size(); ++i) {
      if (list[i].is_string()) Accept(list[i].as_string(), in.from, out);
    }
    if (joining_ && !is_member()) {
      join_backoff_ms_ = config_.join_retry_ms;
      next_join_ms_ = now;  // ask right away
      SendJoinRequest(now, out);
      next_join_ms_ = now + join_backoff_ms_;
    }
    return;
  }
  if (package) Adopt(*package, in.from, now, out);
  for (const json::Value& w : list) {
    if (w.is_string()) Accept(w.as_string(), in.from, out);
  }
}

void Engine::AnnounceAddress(const std::string& url, int64_t now, Output* out,
                             const std::string& via) {
  config_.url = url;
  config_.via = via;
  if (!is_member()) return;
  const Member* me = ledger_->state().FindMemberByKey(key_hex_);
  if (me && me->url == url && me->via == via) return;
  auto wire = EmitOwn("address", Ledger::AddressBody(url, ledger_->AddressSeq(key_hex_) + 1, via),
                      now, out);
  if (!wire) return;
  // Everyone needs the new URL to reach us: send it to every member, not a gossip sample.
  Broadcast(*wire, out);
}

void Engine::Broadcast(const std::string& wire, Output* out) {
  for (const std::string& u : OtherMemberUrls())
    Send(out, u, "event", json::Object{{"event", wire}});
}

Status Engine::Leave(int64_t now, Output* out) {
  if (!is_member()) return Status::Error("not_member", "this node is not a member");
  if (ledger_->state().members.size() == 1) {
    return Status::Error("last_member", "the last member of a network cannot leave it");
  }
  const std::vector<std::string> urls = OtherMemberUrls();  // before we are gone from it
  joining_ = false;                                         // and we do not ask to come back
  auto wire = EmitOwn("member-removed", Ledger::MemberRemovedBody(key_hex_, "leave", {}), now, out);
  if (!wire) return wire.status();
  for (const std::string& u : urls) Send(out, u, "event", json::Object{{"event", *wire}});
  return Status::Ok();
}

Status Engine::StartEviction(const std::string& key, int64_t now, Output* out) {
  if (!is_member()) return Status::Error("not_member", "this node is not a member");
  if (key == key_hex_) return Status::Error("self", "a node leaves; it does not evict itself");
  if (!ledger_->IsMember(key)) return Status::Error("not_found", "no such member");
  auto& approvals = evictions_[key];
  const Approval mine = MakeEvictionApproval(key_, ledger_->network_id(), key);
  approvals.emplace(mine.approver, mine);
  const Member* target = ledger_->state().FindMemberByKey(key);
  for (const std::string& u : OtherMemberUrls()) {
    if (target && u == target->url) continue;
    Send(out, u, "evict", json::Object{{"key", key}});
  }
  OnEvictApproval(Envelope{config_.url, config_.url, "evictapproval",
                           json::Object{{"approval", mine.ToJson()}, {"key", key}}},
                  now, out);
  return Status::Ok();
}

void Engine::OnEvict(const Envelope& in, Output* out) {
  if (!is_member()) return;
  const std::string key = Str(in.body, "key");
  if (!ledger_->IsMember(key) || key == key_hex_) return;
  const Member* target = ledger_->state().FindMemberByKey(key);
  // Approve only what this node sees too: the member is not online in our view.
  if (!target || IsOnline(target->url, 0)) return;
  Send(out, in.from, "evictapproval",
       json::Object{{"approval", MakeEvictionApproval(key_, ledger_->network_id(), key).ToJson()},
                    {"key", key}});
}

void Engine::OnEvictApproval(const Envelope& in, int64_t now, Output* out) {
  const std::string key = Str(in.body, "key");
  auto it = evictions_.find(key);
  if (it == evictions_.end() || !ledger_ || !ledger_->IsMember(key)) return;
  const json::Value* a_json = in.body.find("approval");
  if (!a_json) return;
  auto a = ParseApproval(*a_json);
  if (!a || a->approver == key || !ledger_->IsMember(a->approver)) return;
  if (!VerifyEvictionApproval(*a, ledger_->network_id(), key, config_.verify_cache).ok()) return;
  it->second.emplace(a->approver, *a);
  std::vector<Approval> valid;
  for (const auto& [k, approval] : it->second) {
    if (ledger_->IsMember(k)) valid.push_back(approval);
  }
  if (valid.size() < ledger_->state().Quorum()) return;
  auto wire = EmitOwn("member-removed", Ledger::MemberRemovedBody(key, "evicted", valid), now, out);
  if (!wire) return;
  evictions_.erase(it);
  Broadcast(*wire, out);
}

Result<std::string> Engine::EmitOwn(std::string kind, json::Value body, int64_t now, Output* out,
                                    const std::vector<std::string>* parents) {
  Event e;
  e.kind = std::move(kind);
  e.parents = parents ? *parents : ledger_->Heads();
  e.time_ms = now;
  e.body = std::move(body);
  auto signed_event = Sign(std::move(e), key_);
  if (!signed_event) return signed_event.status();
  std::string wire = Encode(*signed_event);
  auto added = ledger_->Add(wire);
  if (!added) return added.status();
  if (*added != Ledger::Added::kAdded) return Status::Error("not_added", "event not added");
  out->new_events.push_back(wire);
  return wire;
}

Status Engine::PublishRelease(const Manifest& manifest, const std::vector<PublisherSignature>& sigs,
                              int64_t now, Output* out) {
  if (!is_member()) return Status::Error("not_member", "this node is not a member");
  auto wire = EmitOwn("release", Ledger::ReleaseBody(manifest, sigs), now, out);
  if (!wire) return wire.status();
  Broadcast(*wire, out);
  return Status::Ok();
}

int64_t Engine::next_publishers_seq() const {
  return ledger_ ? ledger_->state().publishers_seq + 1 : 1;
}

Status Engine::ChangePublishers(const std::vector<std::string>& keys, int64_t threshold,
                                const std::vector<PublisherSignature>& sigs, int64_t now,
                                Output* out) {
  if (!is_member()) return Status::Error("not_member", "this node is not a member");
  auto wire = EmitOwn(
      "publishers", Ledger::PublishersBody(keys, threshold, next_publishers_seq(), sigs), now, out);
  if (!wire) return wire.status();
  Broadcast(*wire, out);
  return Status::Ok();
}

Status Engine::ReportRelease(const std::string& release_event, const std::string& status,
                             const std::string& reason, int64_t now, Output* out) {
  if (!is_member()) return Status::Error("not_member", "this node is not a member");
  auto it = ledger_->state().reports.find(release_event);
  if (it != ledger_->state().reports.end()) {
    auto mine = it->second.find(key_hex_);
    if (mine != it->second.end() &&
        (mine->second.status == status || mine->second.status == "failed")) {
      return Status::Ok();
    }
  }
  auto wire =
      EmitOwn("release-report", Ledger::ReportBody(release_event, status, reason), now, out);
  if (!wire) {
    // Made already (a report for an older release, not kept in the state): nothing to do.
    if (wire.status().message().find("made already") != std::string::npos) return Status::Ok();
    return wire.status();
  }
  Broadcast(*wire, out);
  return Status::Ok();
}

Status Engine::Recover(const std::vector<std::string>& keep, int64_t now, Output* out) {
  if (!ledger_) return Status::Error("no_network", "this node has no network");
  const NetworkState& st = ledger_->state();
  if (std::find(st.publishers.begin(), st.publishers.end(), key_hex_) == st.publishers.end()) {
    return Status::Error("not_publisher", "this node's key is not one of the network's publishers");
  }
  if (st.params.publisher_threshold > 1) {
    return Status::Error("threshold",
                         "recovery with several publisher signatures is not supported yet");
  }
  int64_t epoch = 1;
  for (const std::string& w : ledger_->AllInOrder()) {
    auto e = Decode(w);
    if (e && e->kind == "recovery") epoch = std::max(epoch, *e->body.find_int("epoch") + 1);
  }
  const std::string sig_hex = [&] {
    const auto sig = key_.SignWithDomain(
        "recovery", Ledger::RecoveryPayload(ledger_->network_id(), keep, epoch));
    return crypto::HexEncode(sig.data(), sig.size());
  }();
  const std::vector<std::string> urls = OtherMemberUrls();  // including the ones removed now
  auto wire =
      EmitOwn("recovery", Ledger::RecoveryBody(keep, epoch, {{key_hex_, sig_hex}}), now, out);
  if (!wire) return wire.status();
  for (const std::string& u : urls) Send(out, u, "event", json::Object{{"event", *wire}});
  return Status::Ok();
}

void Engine::SyncWithAll(Output* out) {
  if (!ledger_) {
    if (!seed_url_.empty()) Send(out, seed_url_, "sync", json::Object{{"heads", json::Array{}}});
    return;
  }
  const json::Value body = SyncBody();
  for (const std::string& url : OtherMemberUrls()) Send(out, url, "sync", body);
}

// ---- liveness (SWIM) --------------------------------------------------------------------

void Engine::NoteHeads(const std::string& url, const json::Value* heads, int64_t now) {
  auto it = liveness_.find(url);  // members only (Heard made the entry)
  if (it == liveness_.end() || !heads || !heads->is_array() || heads->as_array().size() > 64)
    return;
  std::vector<std::string> named;
  for (const json::Value& h : heads->as_array()) {
    if (h.is_string()) named.push_back(h.as_string());
  }
  std::sort(named.begin(), named.end());
  it->second.heads = std::move(named);
  it->second.heads_ms = now;
}

std::optional<bool> Engine::Agrees(const std::string& url, int64_t now_ms) const {
  auto it = liveness_.find(url);
  if (!ledger_ || it == liveness_.end() || it->second.heads_ms == 0 ||
      now_ms - it->second.heads_ms > 60000)
    return std::nullopt;
  return it->second.heads == ledger_->Heads();
}

void Engine::Heard(const std::string& url, int64_t now) {
  if (!ledger_) return;
  for (const Member& m : ledger_->state().members) {
    if (m.url == url && m.key != key_hex_) {
      PeerLiveness& l = liveness_[url];
      l.last_heard_ms = now;
      l.suspect = false;
      return;
    }
  }
}

bool Engine::IsOnline(const std::string& url, int64_t) const {
  auto it = liveness_.find(url);
  return it != liveness_.end() && !it->second.suspect;
}

namespace {
uint64_t SeqOf(const json::Value& body) {
  const int64_t* s = body.find_int("seq");
  return s && *s > 0 ? static_cast<uint64_t>(*s) : 0;
}
}  // namespace

void Engine::OnPing(const Envelope& in, Output* out) {
  const uint64_t seq = SeqOf(in.body);
  if (seq != 0) Send(out, in.from, "ack", json::Object{{"seq", static_cast<int64_t>(seq)}});
}

void Engine::OnPingReq(const Envelope& in, Output* out) {
  if (!is_member()) return;
  const std::string target = Str(in.body, "target");
  const uint64_t seq = SeqOf(in.body);
  if (target.empty() || seq == 0 || relays_.size() > 256) return;
  const uint64_t mine = next_seq_++;
  relays_[mine] = {in.from, seq};
  Send(out, target, "ping", json::Object{{"seq", static_cast<int64_t>(mine)}});
}

void Engine::OnAck(const Envelope& in, int64_t now, Output* out) {
  const uint64_t seq = SeqOf(in.body);
  if (auto r = relays_.find(seq); r != relays_.end()) {
    // We probed on someone's behalf: tell them the target answered.
    Send(out, r->second.first, "ack",
         json::Object{{"seq", static_cast<int64_t>(r->second.second)}, {"target", in.from}});
    relays_.erase(r);
    return;
  }
  if (probe_ && probe_->seq == seq && !probe_->answered) {
    probe_->answered = true;
    // An indirect ack names the target; a direct one comes from it (Heard did the rest).
    const std::string target = Str(in.body, "target");
    if (!target.empty() && target == probe_->target) Heard(target, now);
  }
}

void Engine::Probe(int64_t now, Output* out) {
  if (!is_member()) return;
  if (probe_ && !probe_->answered) {
    if (!probe_->indirect && now - probe_->sent_ms >= config_.probe_timeout_ms) {
      // No direct answer: ask a few others to probe the target for us.
      probe_->indirect = true;
      for (const std::string& helper : RandomMemberUrls(config_.probe_helpers, probe_->target)) {
        Send(out, helper, "pingreq",
             json::Object{{"seq", static_cast<int64_t>(probe_->seq)}, {"target", probe_->target}});
      }
    }
    if (now < next_probe_ms_) return;
    liveness_[probe_->target].suspect = true;  // a whole interval without any answer
  }
  if (now < next_probe_ms_) return;
  relays_.clear();  // helpers' pending probes are one interval old: forget them
  probe_.reset();
  next_probe_ms_ = now + config_.probe_interval_ms;
  // Round-robin over the members in a random order (SWIM): every member is probed within one
  // pass. The order is start + i x stride (mod n) with a random stride prime to n, so a pass
  // costs no memory at any n. n stays as the pass began: members admitted meanwhile wait for
  // the next pass, and a member list that shifted (a leave and a join) may skip or repeat a
  // few in this one.
  const std::vector<Member>& members = ledger_->state().members;
  if (members.size() < 2) return;
  const Member* target = nullptr;
  for (int tries = 0; tries < 3 && !target; ++tries) {
    if (pass_.i >= pass_.n) {
      pass_ = {members.size(), random_->Next() % members.size(), 1, 0};
      if (pass_.n > 2) {
        do {
          pass_.stride = 1 + random_->Next() % (pass_.n - 1);
        } while (std::gcd(pass_.stride, pass_.n) != 1);
      }
    }
    for (; pass_.i < pass_.n && !target; ++pass_.i) {
      const size_t at = (pass_.start + pass_.i * pass_.stride) % pass_.n;
      if (at >= members.size()) continue;  // members left during the pass
      const Member& m = members[at];
      if (m.key != key_hex_ && !m.url.empty()) target = &m;
    }
  }
  if (!target) return;
  Probing p;
  p.target = target->url;
  p.seq = next_seq_++;
  p.sent_ms = now;
  Send(out, p.target, "ping", json::Object{{"seq", static_cast<int64_t>(p.seq)}});
  probe_ = p;
}

// ---- time -----------------------------------------------------------------------------

void Engine::Tick(int64_t now, Output* out) {
  Probe(now, out);
  TickCheckpoint(now, out);
  // Admitted with the URL of our join request: say how we are reached if that differs
  // (the path may have changed while we waited, or it is not direct).
  // (At most every 10 s: a mismatch that persists, say another process with our key, must
  // not turn into a broadcast per tick.)
  if (is_member() && now - last_self_announce_ms_ >= 10000) {
    const Member* me = ledger_->state().FindMemberByKey(key_hex_);
    if (me && (me->url != config_.url || me->via != config_.via)) {
      last_self_announce_ms_ = now;
      AnnounceAddress(config_.url, now, out, config_.via);
    }
  }
  if (joining_ && !is_member()) {
    if (now >= next_join_ms_) {
      SendJoinRequest(now, out);
      join_backoff_ms_ = join_backoff_ms_ == 0
                             ? config_.join_retry_ms
                             : std::min(join_backoff_ms_ * 2, config_.join_retry_max_ms);
      next_join_ms_ = now + join_backoff_ms_;
    }
  }
  if (ledger_ && now >= next_sync_ms_) {
    // Anti-entropy: compare with one random member.
    if (auto urls = RandomMemberUrls(1); !urls.empty()) Send(out, urls.front(), "sync", SyncBody());
    next_sync_ms_ = now + config_.sync_interval_ms;
  }
  // Forget joins that can no longer complete.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.created_ms > 2 * config_.freshness_ms) {
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  Settle(now, out);
}

Result<Invitation> Engine::Invite(int64_t expires_ms, std::string note) {
  if (!is_member()) return Status::Error("not_member", "only a member can invite");
  if (ledger_->state().params.admission != "invite") {
    return Status::Error(
        "open_network",
        "this network admits any node with the accepted code: no invitation is needed");
  }
  if (note.size() > kMaxInvitationNote) {
    return Status::Error(
        "bad_request", "the note is longer than " + std::to_string(kMaxInvitationNote) + " bytes");
  }
  return MakeInvitation(key_, ledger_->network_id(), RandomHex(16), expires_ms, std::move(note));
}

// ---- checkpoints ---------------------------------------------------------------------------

json::Value Engine::SyncBody() const {
  json::Array heads;
  if (ledger_) {
    for (const std::string& h : ledger_->Heads()) heads.push_back(h);
  }
  json::Value body = json::Object{{"checkpoint", ledger_ ? ledger_->checkpoint_seq() : 0},
                                  {"heads", std::move(heads)}};
  if (ledger_ && ledger_->checkpoint_seq() > 0) {
    body.as_object().emplace("base", ledger_->checkpoint_hash());
  }
  return body;
}

std::set<std::string> Engine::CheckpointCommittee(int64_t seq) const {
  const MemberList& signers = ledger_->checkpoint_signers();
  if (signers.size() <= kCommitteeSize) return {};
  return CommitteeOf(CheckpointCommitteeSeed(ledger_->network_id(), seq), signers);
}

void Engine::TickCheckpoint(int64_t now, Output* out) {
  const size_t above = ledger_ ? ledger_->events_since_checkpoint() : 0;
  if (above != quiet_since_.first) quiet_since_ = {above, now};
  const bool full = above >= config_.checkpoint_every;
  const bool quiet = config_.checkpoint_quiet_ms > 0 && above >= config_.checkpoint_quiet_events &&
                     now - quiet_since_.second >= config_.checkpoint_quiet_ms;
  if (!is_member() || config_.checkpoint_every == 0 || (!full && !quiet)) {
    checkpoint_due_ms_ = -1;
    return;
  }
  const int64_t seq = ledger_->checkpoint_seq() + 1;
  if (checkpoint_due_ms_ < 0) checkpoint_due_ms_ = now;
  // The proposers are the signers still members (they approve as they propose).
  if (!ledger_->checkpoint_signers().count(key_hex_)) return;
  if (proposer_rank_.first != seq) {
    std::vector<Member> proposers;
    for (const Member& m : ledger_->checkpoint_signers()) {
      if (ledger_->IsMember(m.key)) proposers.push_back(m);
    }
    proposer_rank_ = {seq, ProposerRank(ledger_->network_id(), seq, proposers, key_hex_)};
  }
  if (now - checkpoint_due_ms_ <
      static_cast<int64_t>(proposer_rank_.second) * config_.checkpoint_fallback_ms) {
    return;
  }
  if (!proposing_ || proposing_->seq != seq) {
    // What we signed for this sequence, if anything (we never sign two); else our heads.
    CheckpointProposal p;
    if (auto lock = checkpoint_locks_.find(seq); lock != checkpoint_locks_.end()) {
      p = lock->second.proposal;
    } else {
      auto made = ledger_->ProposeCheckpoint();
      if (!made) return;
      p = std::move(made).value();
    }
    proposing_ = Proposing{seq, p.Hash(), {}, -1000000};
    proposing_->candidates[proposing_->current].proposal = p;
  }
  MaybeEmitCheckpoint(now, out);  // our own approval may complete it (a lock expired)
  if (!proposing_) return;
  if (now - proposing_->sent_ms < config_.checkpoint_fallback_ms) return;  // asked: wait
  proposing_->sent_ms = now;
  const Candidate& c = proposing_->candidates.at(proposing_->current);
  const json::Value body = json::Object{{"proposal", c.proposal.ToJson()}};
  const std::set<std::string> committee = CheckpointCommittee(seq);
  for (const Member& signer : ledger_->checkpoint_signers()) {
    if (signer.key == key_hex_ || c.approvals.count(signer.key)) continue;
    if (!committee.empty() && !committee.count(signer.key)) continue;
    const Member* now = ledger_->state().FindMemberByKey(signer.key);  // signers gone: skipped
    if (now && !now->url.empty()) Send(out, now->url, "ckptpropose", body);
  }
}

namespace {
// A lock on a proposal that made no checkpoint in this long is released (its votes split).
constexpr int64_t kLockIntervals = 4;
}  // namespace

const Engine::Lock& Engine::LockOn(const CheckpointProposal& p, int64_t now) {
  auto it = checkpoint_locks_.find(p.seq);
  if (it != checkpoint_locks_.end() && !(it->second.proposal == p) &&
      now - it->second.at_ms >= kLockIntervals * config_.checkpoint_fallback_ms) {
    checkpoint_locks_.erase(it);
    it = checkpoint_locks_.end();
  }
  if (it == checkpoint_locks_.end()) {
    it = checkpoint_locks_
             .emplace(p.seq, Lock{p, MakeCheckpointApproval(key_, ledger_->network_id(), p), now})
             .first;
  }
  return it->second;
}

void Engine::OnCheckpointPropose(const Envelope& in, int64_t now, Output* out) {
  if (!is_member()) return;
  // From a signer (its URL is bound to its key: protocol/envelope.h), to a signer.
  const Member* from = ledger_->state().FindMemberByUrl(in.from);
  if (!from || !ledger_->checkpoint_signers().count(from->key)) return;
  if (!ledger_->checkpoint_signers().count(key_hex_)) return;
  const json::Value* pj = in.body.find("proposal");
  if (!pj) return;
  auto p = ParseCheckpointProposal(*pj);
  if (!p || p->seq != ledger_->checkpoint_seq() + 1) return;
  auto held = checkpoint_locks_.find(p->seq);
  const bool checked = held != checkpoint_locks_.end() && held->second.proposal == *p;
  if (!checked) {  // a repeat of what we signed needs no second fold
    if (Status s = ledger_->CheckProposal(*p); !s.ok()) {
      if (s.code() == "missing") Send(out, in.from, "sync", SyncBody());  // then ask again
      return;
    }
  }
  // Our approval of what we signed: another proposal when we signed that one first (the
  // proposer may take it up).
  const Lock& lock = LockOn(*p, now);
  Send(out, in.from, "ckptapproval",
       json::Object{{"approval", lock.approval.ToJson()}, {"proposal", lock.proposal.ToJson()}});
}

void Engine::OnCheckpointApproval(const Envelope& in, int64_t now, Output* out) {
  if (!proposing_ || !is_member() || !ledger_->state().FindMemberByUrl(in.from)) return;
  const json::Value* pj = in.body.find("proposal");
  const json::Value* aj = in.body.find("approval");
  if (!pj || !aj) return;
  auto p = ParseCheckpointProposal(*pj);
  auto a = ParseApproval(*aj);
  if (!p || !a || p->seq != proposing_->seq) return;
  if (!ledger_->checkpoint_signers().count(a->approver)) return;
  if (!VerifyCheckpointApproval(*a, ledger_->network_id(), *p, config_.verify_cache).ok()) return;
  const std::string hash = p->Hash();
  if (proposing_->candidates.size() >= 8 && !proposing_->candidates.count(hash)) return;
  Candidate& c = proposing_->candidates[hash];
  c.proposal = *p;
  c.approvals[a->approver] = *a;
  // Ask for the proposal most members signed: a slower proposer's may be ahead of ours.
  if (hash != proposing_->current &&
      c.approvals.size() > proposing_->candidates.at(proposing_->current).approvals.size() &&
      ledger_->CheckProposal(*p).ok()) {
    proposing_->current = hash;
    proposing_->sent_ms = -1000000;
  }
  MaybeEmitCheckpoint(now, out);
}

void Engine::MaybeEmitCheckpoint(int64_t now, Output* out) {
  Candidate& c = proposing_->candidates.at(proposing_->current);
  const size_t signers = ledger_->checkpoint_signers().size();
  const size_t need = QuorumOf(ledger_->state().params, std::min(signers, kCommitteeSize));
  // Counted as the ledger counts: past kCommitteeSize signers, the committee's approvals.
  const std::set<std::string> committee = CheckpointCommittee(proposing_->seq);
  auto counts = [&](const std::string& key) { return committee.empty() || committee.count(key); };
  size_t have = 0;
  for (const auto& [key, a] : c.approvals) have += counts(key) ? 1 : 0;
  // The proposer signs last, when its approval completes a quorum, and only what it has not
  // refused by signing another proposal: two proposers asking at once do not both lock on
  // their own.
  const bool mine = ledger_->checkpoint_signers().count(key_hex_) > 0 &&
                    !c.approvals.count(key_hex_) && counts(key_hex_);
  if (have + (mine ? 1 : 0) < need) return;
  if (mine) {
    const Lock& lock = LockOn(c.proposal, now);
    if (!(lock.proposal == c.proposal)) return;
    c.approvals[key_hex_] = lock.approval;
    if (++have < need) return;
  }
  std::vector<Approval> list;
  for (const auto& [key, a] : c.approvals) list.push_back(a);
  const CheckpointProposal p = c.proposal;
  auto wire = EmitOwn("checkpoint", Ledger::CheckpointBody(p, list), now, out, &p.cut);
  if (!wire) return;  // not yet a quorum as the ledger counts it (a committee): keep asking
  proposing_.reset();
  Gossip(*wire, "", out);
}

void Engine::Adopt(const json::Value& package, const std::string& from, int64_t now, Output* out) {
  // From a member (a stranger's package would cost us its whole chain's signatures), and one
  // that extends or replaces our checkpoint as Prefers says.
  if (!ledger_->state().FindMemberByUrl(from) || !ledger_->Prefers(package)) return;
  auto l = Ledger::FromCheckpoint(ledger_->genesis_wire(), package, config_.verify_cache);
  if (!l) return;
  l->set_verify_cache(config_.verify_cache);
  l->set_event_pool(config_.event_pool);
  // What we hold above its cut stays. Our own events it cannot take may be below its cut
  // (their effect is in its state) or concurrent with it: of those, the kinds a repeat of
  // which the ledger refuses (a sequence, version or report already in force) are signed
  // anew on top of it; joins and removals are not (their requester asks again).
  std::vector<std::string> ours;
  for (const std::string& w : ledger_->AllInOrder()) {
    auto r = l->Add(w);
    if (r && *r != Ledger::Added::kMissingParents) continue;
    auto e = Decode(w);
    if (e && (e->kind == "address" || e->kind == "release-report" || e->kind == "release" ||
              e->kind == "publishers")) {
      ours.push_back(w);
    }
  }
  ledger_ = std::move(l).value();
  SignAnew(ours, now, out);
}

void Engine::SignAnew(const std::vector<std::string>& wires, int64_t now, Output* out) {
  for (const std::string& w : wires) {
    auto e = Decode(w);
    if (!e || e->author != key_hex_ || e->kind == "checkpoint") continue;
    if (auto wire = EmitOwn(e->kind, e->body, now, out)) Gossip(*wire, "", out);
  }
}

json::Value Engine::CheckpointStatus() const {
  if (!ledger_) return nullptr;
  json::Object o{{"seq", ledger_->checkpoint_seq()},
                 {"hash", ledger_->checkpoint_hash()},
                 {"events_above", ledger_->events_since_checkpoint()},
                 {"every", config_.checkpoint_every},
                 {"quiet_ms", config_.checkpoint_quiet_ms},
                 {"quiet_events", config_.checkpoint_quiet_events}};
  if (proposing_) {
    json::Array candidates;
    for (const auto& [hash, c] : proposing_->candidates) {
      candidates.push_back(json::Object{{"proposal", hash},
                                        {"approvals", c.approvals.size()},
                                        {"asking", hash == proposing_->current}});
    }
    o.emplace("proposing",
              json::Object{{"seq", proposing_->seq}, {"candidates", std::move(candidates)}});
  }
  json::Array signed_seqs;
  for (const auto& [seq, lock] : checkpoint_locks_) {
    signed_seqs.push_back(json::Object{{"seq", seq}, {"proposal", lock.proposal.Hash()}});
  }
  o.emplace("signed", std::move(signed_seqs));
  return o;
}

void Engine::Settle(int64_t now, Output* out) {
  if (!ledger_) return;
  if (ledger_->checkpoint_hash() != stored_checkpoint_) {
    stored_checkpoint_ = ledger_->checkpoint_hash();
    out->rebased = true;
    const int64_t seq = ledger_->checkpoint_seq();
    if (proposing_ && proposing_->seq <= seq) proposing_.reset();
    checkpoint_locks_.erase(checkpoint_locks_.begin(), checkpoint_locks_.upper_bound(seq));
    checkpoint_due_ms_ = -1;
    orphans_.clear();  // what waited for parents below the cut waits for ever
  }
  // Our events that a checkpoint voided (concurrent with it): signed anew above it.
  SignAnew(ledger_->TakeVoided(), now, out);
}

}  // namespace peerstack::protocol
