// The mission's example app: a blog whose posts anyone can read and only the node's owner
// (through the admin listener) can write. Posts live in the plugin's key/value store, so
// they survive restarts and new versions of the plugin.
//
//   GET    /api/blog/posts          list, newest first     (public)
//   GET    /api/blog/posts/:id      one post               (public)
//   POST   /api/blog/posts          {"title", "body"} -> 201 with the post   (admin)
//   PUT    /api/blog/posts/:id      {"title", "body"} -> the post            (admin)
//   DELETE /api/blog/posts/:id      -> 204                                   (admin)
#include <chrono>
#include <cstdio>
#include <string>

#include "peerstack/plugin.hpp"

#ifndef PEERSTACK_PLUGIN_VERSION
#define PEERSTACK_PLUGIN_VERSION "1.0.0"
#endif

namespace {

using peerstack::sdk::HttpError;
using peerstack::sdk::Json;
using peerstack::sdk::Request;
using peerstack::sdk::Response;

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxBody = 100 * 1024;

class Blog : public peerstack::sdk::Plugin {
 public:
  Blog() : Plugin("blog", PEERSTACK_PLUGIN_VERSION) {
    Get("/posts", [this](const Request&, Response& res) { List(res); });
    Get("/posts/:id", [this](const Request& req, Response& res) {
      res.Json(200, Load(ParseId(req.param("id"))));
    });
    Private("POST", "/posts", [this](const Request& req, Response& res) { Create(req, res); });
    Private("PUT", "/posts/:id", [this](const Request& req, Response& res) { Update(req, res); });
    Private("DELETE", "/posts/:id", [this](const Request& req, Response& res) {
      if (!host().KvDelete(Key(ParseId(req.param("id"))))) {
        throw HttpError(404, "not_found", "no such post");
      }
      res.Status(204);
    });
  }

 private:
  // Ids are positive integers; keys sort in id order thanks to the zero padding.
  static int64_t ParseId(std::string_view text) {
    if (text.empty() || text.size() > 12) throw HttpError(404, "not_found", "no such post");
    int64_t id = 0;
    for (char c : text) {
      if (c < '0' || c > '9') throw HttpError(404, "not_found", "no such post");
      id = id * 10 + (c - '0');
    }
    if (id <= 0) throw HttpError(404, "not_found", "no such post");
    return id;
  }
  static std::string Key(int64_t id) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "post:%012lld", static_cast<long long>(id));
    return buf;
  }

  Json Load(int64_t id) const {
    auto stored = host().KvGet(Key(id));
    if (!stored) throw HttpError(404, "not_found", "no such post");
    auto post = Json::Parse(*stored);
    if (!post) throw std::runtime_error("stored post is corrupt");
    return *post;
  }

  // Validates {"title": string, "body": string} and returns the two fields.
  static std::pair<std::string, std::string> ReadPost(const Request& req) {
    const Json in = req.json();
    const std::string* title = in.get_string("title");
    const std::string* body = in.get_string("body");
    if (!title || title->empty() || title->size() > kMaxTitle) {
      throw HttpError(400, "invalid", "title must be a non-empty string of at most 200 bytes");
    }
    if (!body || body->size() > kMaxBody) {
      throw HttpError(400, "invalid", "body must be a string of at most 100 KiB");
    }
    return {*title, *body};
  }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void List(Response& res) const {
    Json::Array posts;
    for (const auto& [key, value] : host().KvList("post:")) {
      if (auto post = Json::Parse(value)) posts.push_back(*post);
    }
    Json::Array newest_first(posts.rbegin(), posts.rend());
    res.Json(200, Json(Json::Object{{"posts", Json(std::move(newest_first))}}));
  }

  void Create(const Request& req, Response& res) {
    auto [title, body] = ReadPost(req);
    // Handlers of a plugin not marked concurrent never overlap: this read-increment-write
    // of the counter is safe.
    const auto last = host().KvGet("next_id");
    const int64_t id = last ? std::stoll(*last) : 1;
    host().KvPut("next_id", std::to_string(id + 1));
    const int64_t now = NowMs();
    Json post(Json::Object{{"id", Json(id)},
                           {"title", Json(title)},
                           {"body", Json(body)},
                           {"created", Json(now)},
                           {"updated", Json(now)}});
    host().KvPut(Key(id), post.Dump());
    host().Log(PS_LOG_INFO, "created post " + std::to_string(id));
    res.Header("location", "/api/blog/posts/" + std::to_string(id)).Json(201, post);
  }

  void Update(const Request& req, Response& res) {
    const int64_t id = ParseId(req.param("id"));
    Json post = Load(id);
    auto [title, body] = ReadPost(req);
    post.as_object()["title"] = Json(title);
    post.as_object()["body"] = Json(body);
    post.as_object()["updated"] = Json(NowMs());
    host().KvPut(Key(id), post.Dump());
    res.Json(200, post);
  }
};

}  // namespace

PEERSTACK_PLUGIN(Blog)
