#include "node/admin_routes.h"

#include <set>

#include "json/json.h"
#include "protocol/invitation.h"
#include "protocol/release.h"

namespace peerstack::node {
namespace {

http::Response ErrorOf(const Status& s) {
  return http::JsonError(HttpStatusOf(s), s.code(), s.message());
}

// The body as a JSON object; an empty body is an empty object.
Result<json::Value> BodyOf(const http::Request& r) {
  if (r.body.empty()) return json::Value(json::Object{});
  auto body = json::Parse(r.body, {1 << 20, 8});
  if (!body || !body->is_object()) return Status::Error("bad_json", "send a JSON object");
  return body;
}

}  // namespace

int HttpStatusOf(const Status& s) {
  static const std::set<std::string> kBadInput = {"bad_json",    "no_url",      "bad_url",
                                                  "no_id",       "bad_plugins", "bad_manifest",
                                                  "nobody_kept", "bad_request", "bad_invitation"};
  if (kBadInput.count(s.code())) return 400;
  if (s.code() == "not_found") return 404;
  if (s.code() == "cannot_store") return 507;
  if (s.code() == "missing") return 424;
  return 409;
}

void AddNetworkAdminRoutes(http::Router& router, NetworkService& network,
                           release::ReleaseManager& releases) {
  router.Add("POST", "/join", [&network](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    const std::string* url = body->find_string("url");
    auto joining = network.Join(url ? *url : "");
    if (!joining) return ErrorOf(joining.status());
    return http::JsonResponse(202, json::Serialize(json::Object{{"joining", *joining}}));
  });
  router.Add("GET", "/sync", [&network](const http::Request&) {
    auto report = network.Sync();
    if (!report) return ErrorOf(report.status());
    return http::JsonResponse(
        200, json::Serialize(json::Object{{"added", report->added},
                                          {"events", report->events},
                                          {"state_hash_before", report->state_hash_before},
                                          {"state_hash", report->state_hash}}));
  });
  router.Add("POST", "/leave", [&network](const http::Request&) {
    if (auto s = network.Leave(); !s.ok()) return ErrorOf(s);
    return http::JsonResponse(200, "{\"left\":true}");
  });
  router.Add("POST", "/evict", [&network](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    const std::string* id = body->find_string("id");
    if (!id) return ErrorOf(Status::Error("no_id", "send {\"id\": <node id>}"));
    if (auto s = network.Evict(*id); !s.ok()) return ErrorOf(s);
    return http::JsonResponse(202, json::Serialize(json::Object{{"evicting", *id}}));
  });
  // A release signed offline: the blobs are in the store already (`peerstack release publish`
  // put them there), then the event goes into the ledger and the rollout starts.
  router.Add("POST", "/releases", [&network, &releases](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    const json::Value* mj = body->find("manifest");
    const json::Value* sj = body->find("signatures");
    if (!mj || !sj)
      return ErrorOf(
          Status::Error("bad_manifest", "send {\"manifest\": ..., \"signatures\": [...]}"));
    auto manifest = protocol::ParseManifest(*mj);
    if (!manifest) return ErrorOf(manifest.status());
    auto sigs = protocol::ParseSignatures(*sj);
    if (!sigs) return ErrorOf(sigs.status());
    if (auto s = releases.CheckBlobs(*manifest); !s.ok()) return ErrorOf(s);
    if (auto s = network.PublishRelease(*manifest, *sigs); !s.ok()) return ErrorOf(s);
    releases.Poke();
    return http::JsonResponse(201, json::Serialize(json::Object{{"code", manifest->CodeHash()},
                                                                {"version", manifest->version}}));
  });
  router.Add("GET", "/releases", [&releases](const http::Request&) {
    return http::JsonResponse(200, json::Serialize(releases.RolloutJson()));
  });
  router.Add("GET", "/publishers", [&network](const http::Request&) {
    return http::JsonResponse(
        200, json::Serialize(json::Object{{"next_seq", network.next_publishers_seq()}}));
  });
  router.Add("POST", "/publishers", [&network](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    const json::Value* keys_json = body->find("publishers");
    const int64_t* threshold = body->find_int("threshold");
    const json::Value* sj = body->find("signatures");
    if (!keys_json || !keys_json->is_array() || !threshold || !sj) {
      return ErrorOf(Status::Error(
          "bad_manifest",
          "send {\"publishers\": [hex keys], \"threshold\": N, \"signatures\": [...]}"));
    }
    std::vector<std::string> keys;
    for (const json::Value& k : keys_json->as_array()) {
      if (!k.is_string()) return ErrorOf(Status::Error("bad_manifest", "publishers are hex keys"));
      keys.push_back(k.as_string());
    }
    auto sigs = protocol::ParseSignatures(*sj);
    if (!sigs) return ErrorOf(sigs.status());
    if (auto s = network.ChangePublishers(keys, *threshold, *sigs); !s.ok()) return ErrorOf(s);
    return http::JsonResponse(
        201, json::Serialize(json::Object{{"publishers", keys.size()}, {"threshold", *threshold}}));
  });
  // An invitation (docs/operations.md, "Invitations"): {"expires_in": seconds (default a
  // week, at most 90 days), "note": text}. Answers the token and the link a friend downloads.
  router.Add("POST", "/invitations", [&network](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    const int64_t* ttl_s = body->find_int("expires_in");
    const std::string* note = body->find_string("note");
    if ((body->find("expires_in") && !ttl_s) || (body->find("note") && !note)) {
      return ErrorOf(Status::Error(
          "bad_json", "send {\"expires_in\": seconds, \"note\": text}, both optional"));
    }
    constexpr int64_t kWeek = 7 * 24 * 3600, kMost = 90 * 24 * 3600;
    if (ttl_s && (*ttl_s < 1 || *ttl_s > kMost)) {
      return ErrorOf(Status::Error("bad_json", "expires_in: 1 s to 90 days, in seconds"));
    }
    auto inv = network.Invite((ttl_s ? *ttl_s : kWeek) * 1000, note ? *note : "");
    if (!inv) return ErrorOf(inv.status());
    const std::string token = protocol::InvitationToken(*inv);
    return http::JsonResponse(201, json::Serialize(json::Object{
                                       {"token", token},
                                       {"link", network.self_url() + "/download?invite=" + token},
                                       {"expires", inv->expires_ms},
                                       {"id", inv->Hash()},
                                       {"note", inv->note}}));
  });
  router.Add("POST", "/recover", [&network](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    std::optional<std::vector<std::string>> keep;
    if (const json::Value* ids = body->find("keep"); ids && ids->is_array()) {
      keep.emplace();
      for (const json::Value& id : ids->as_array()) {
        if (id.is_string()) keep->push_back(id.as_string());
      }
    }
    auto kept = network.Recover(keep);
    if (!kept) return ErrorOf(kept.status());
    return http::JsonResponse(200,
                              json::Serialize(json::Object{{"kept", static_cast<int64_t>(*kept)}}));
  });
}

}  // namespace peerstack::node
