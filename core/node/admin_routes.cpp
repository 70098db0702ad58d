#include "node/admin_routes.h"

#include <set>

#include "json/json.h"

namespace peerstack::node {
namespace {

http::Response ErrorOf(const Status& s) { return http::JsonError(HttpStatusOf(s), s.code(), s.message()); }

// The body as a JSON object; an empty body is an empty object.
Result<json::Value> BodyOf(const http::Request& r) {
  if (r.body.empty()) return json::Value(json::Object{});
  auto body = json::Parse(r.body, {1 << 20, 8});
  if (!body || !body->is_object()) return Status::Error("bad_json", "send a JSON object");
  return body;
}

}  // namespace

int HttpStatusOf(const Status& s) {
  static const std::set<std::string> kBadInput = {"bad_json", "no_url",     "bad_url",     "no_id",
                                                  "bad_plugins", "bad_manifest", "nobody_kept"};
  if (kBadInput.count(s.code())) return 400;
  if (s.code() == "not_found") return 404;
  if (s.code() == "cannot_store") return 507;
  return 409;
}

void AddNetworkAdminRoutes(http::Router& router, NetworkService& network, const plugins::PluginHost& plugins) {
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
    return http::JsonResponse(200, json::Serialize(json::Object{{"added", report->added},
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
  router.Add("POST", "/releases", [&network, &plugins](const http::Request& r) {
    auto body = BodyOf(r);
    if (!body) return ErrorOf(body.status());
    std::vector<NetworkService::ReleasePlugin> list;
    if (const json::Value* given = body->find("plugins")) {
      if (!given->is_array()) return ErrorOf(Status::Error("bad_plugins", "plugins is a list"));
      for (const json::Value& p : given->as_array()) {
        const std::string* name = p.find_string("name");
        const std::string* version = p.find_string("version");
        const std::string* sha = p.find_string("sha256");
        if (!name || !version || !sha) {
          return ErrorOf(Status::Error("bad_plugins", "each plugin is {\"name\", \"version\", \"sha256\"}"));
        }
        list.push_back({*name, *version, *sha});
      }
    } else {
      for (const plugins::LoadedPlugin& p : plugins.Plugins().loaded) list.push_back({p.name, p.version, p.sha256});
    }
    const int64_t* days = body->find_int("expires_in_days");
    auto manifest = network.PublishRelease(std::move(list), days ? *days : 90);
    if (!manifest) return ErrorOf(manifest.status());
    return http::JsonResponse(
        201, json::Serialize(json::Object{{"code", manifest->CodeHash()}, {"manifest", manifest->ToJson()}}));
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
    return http::JsonResponse(200, json::Serialize(json::Object{{"kept", static_cast<int64_t>(*kept)}}));
  });
}

}  // namespace peerstack::node
