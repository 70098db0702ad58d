// The mission's example app: a blog whose posts every node of the network holds and serves.
// Posts live in a replicated collection that only the network's publishers (the app's
// authors: by default the node that founded the network) may write; comments live in one
// that every member writes under its own keys, so two members commenting at once merge.
// Both are written through the admin listener (the node's owner), read by anyone.
//
//   GET    /api/blog/posts                    list, newest first, each with its comments (public)
//   GET    /api/blog/posts/:id                one post with its comments                (public)
//   POST   /api/blog/posts                    {"title", "body"} -> 201 with the post    (admin,
//   publishers) PUT    /api/blog/posts/:id                {"title", "body"} -> the post (admin,
//   publishers) DELETE /api/blog/posts/:id                -> 204 (admin, publishers) POST
//   /api/blog/posts/:id/comments       {"body"} -> 201 with the comment          (admin, any
//   member) DELETE /api/blog/comments/:node/:post/:n  -> 204 (this node's own comments only)
//   (admin)
//
// Posts written by blog 1.0 (in the node's own key/value store) are listed too and moved into
// the replicated collection at the first write through the admin listener.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "peerstack/plugin.hpp"

#ifndef PEERSTACK_PLUGIN_VERSION
#define PEERSTACK_PLUGIN_VERSION "1.1.0"
#endif

namespace {

using peerstack::sdk::HttpError;
using peerstack::sdk::Json;
using peerstack::sdk::Request;
using peerstack::sdk::Response;
using peerstack::sdk::Rule;

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxBody = 60 * 1024;  // a replicated value is at most 64 KiB
constexpr size_t kMaxComment = 4 * 1024;

class Blog : public peerstack::sdk::Plugin {
 public:
  Blog() : Plugin("blog", PEERSTACK_PLUGIN_VERSION) {
    Collection("posts", Rule::kPublishers);
    Collection("comments", Rule::kOwnKeys);
    Get("/posts", [this](const Request&, Response& res) { List(res); });
    Get("/posts/:id", [this](const Request& req, Response& res) {
      const int64_t id = ParseId(req.param("id"));
      Json post = Load(id);
      post.as_object()["comments"] = Json(CommentsOf(id));
      res.Json(200, post);
    });
    Private("POST", "/posts", [this](const Request& req, Response& res) { Create(req, res); });
    Private("PUT", "/posts/:id", [this](const Request& req, Response& res) { Update(req, res); });
    Private("DELETE", "/posts/:id", [this](const Request& req, Response& res) {
      Migrate();
      if (!Posts().Delete(Key(ParseId(req.param("id")))))
        throw HttpError(404, "not_found", "no such post");
      res.Status(204);
    });
    Private("POST", "/posts/:id/comments",
            [this](const Request& req, Response& res) { Comment(req, res); });
    Private("DELETE", "/comments/:node/:post/:n", [this](const Request& req, Response& res) {
      const std::string key = std::string(req.param("node")) + "/" +
                              std::string(req.param("post")) + "/" + std::string(req.param("n"));
      if (!Comments().Delete(key)) throw HttpError(404, "not_found", "no such comment");
      res.Status(204);
    });
  }

 private:
  peerstack::sdk::Replicated Posts() const { return host().Replicated("posts"); }
  peerstack::sdk::Replicated Comments() const { return host().Replicated("comments"); }

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

  // Posts of blog 1.0, kept in this node's own store: moved into the replicated collection
  // (a private route's write, made by this node's key; a node that is not a publisher keeps
  // them where they are and lists them).
  void Migrate() {
    if (migrated_) return;
    try {
      for (const auto& [key, value] : host().KvList("post:", 100000)) {
        if (!Posts().Get(key)) Posts().Put(key, value);
        host().KvDelete(key);
      }
    } catch (const HttpError& e) {
      if (e.status() != 403) throw;  // not a publisher: they stay here, listed
    }
    migrated_ = true;
  }

  Json Load(int64_t id) const {
    auto stored = Posts().Get(Key(id));
    if (!stored) stored = host().KvGet(Key(id));  // not migrated yet
    if (!stored) throw HttpError(404, "not_found", "no such post");
    auto post = Json::Parse(*stored);
    if (!post || !post->is_object()) throw std::runtime_error("stored post is corrupt");
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
      throw HttpError(400, "invalid", "body must be a string of at most 60 KiB");
    }
    return {*title, *body};
  }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Comments by post id, each list oldest first. Keys: "<node id>/<post id, 12 digits>/<n>".
  // One listing for all posts (a page lists them all at once).
  std::map<int64_t, Json::Array> AllComments() const {
    std::map<int64_t, Json::Array> out;
    for (const auto& [key, value] : Comments().List("", 100000)) {
      const size_t slash = key.find('/');
      if (slash == std::string::npos || key.size() < slash + 13) continue;
      int64_t post = 0;
      for (size_t i = slash + 1; i < slash + 13; ++i) {
        if (key[i] < '0' || key[i] > '9') post = -1;
        if (post >= 0) post = post * 10 + (key[i] - '0');
      }
      auto c = Json::Parse(value);
      if (post <= 0 || !c || !c->is_object()) continue;
      c->as_object()["key"] = Json(key);
      out[post].push_back(*c);
    }
    for (auto& [post, list] : out) {
      std::stable_sort(list.begin(), list.end(), [](const Json& a, const Json& b) {
        const Json* ta = a.get("created");
        const Json* tb = b.get("created");
        return (ta && ta->is_number() ? ta->as_number() : 0) <
               (tb && tb->is_number() ? tb->as_number() : 0);
      });
    }
    return out;
  }
  Json::Array CommentsOf(int64_t id) const {
    auto all = AllComments();
    auto it = all.find(id);
    return it == all.end() ? Json::Array{} : it->second;
  }

  void List(Response& res) const {
    std::map<std::string, std::string> all;
    for (const auto& [key, value] : host().KvList("post:", 100000)) all[key] = value;  // blog 1.0's
    for (const auto& [key, value] : Posts().List("post:", 100000)) all[key] = value;
    auto comments = AllComments();
    Json::Array posts;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      auto post = Json::Parse(it->second);
      if (!post || !post->is_object()) continue;
      const Json* id = post->get("id");
      if (id && id->is_number()) {
        auto c = comments.find(static_cast<int64_t>(id->as_number()));
        post->as_object()["comments"] = Json(c == comments.end() ? Json::Array{} : c->second);
      }
      posts.push_back(*post);
    }
    res.Json(200, Json(Json::Object{{"posts", Json(std::move(posts))}}));
  }

  void Create(const Request& req, Response& res) {
    Migrate();
    auto [title, body] = ReadPost(req);
    // Handlers of a plugin not marked concurrent never overlap. The next id is above every
    // post this node holds and every id it handed out (a deleted post's id is not reused).
    const auto last = host().KvGet("next_id");
    int64_t id = last ? std::stoll(*last) : 1;
    const auto keys = Posts().List("post:", 100000);
    if (!keys.empty()) id = std::max<int64_t>(id, std::stoll(keys.back().first.substr(5)) + 1);
    const int64_t now = NowMs();
    Json post(Json::Object{{"id", Json(id)},
                           {"title", Json(title)},
                           {"body", Json(body)},
                           {"created", Json(now)},
                           {"updated", Json(now)}});
    host().KvPut("next_id", std::to_string(id + 1));  // first: an id is never handed out twice
    Posts().Put(Key(id), post.Dump());
    host().Log(PS_LOG_INFO, "created post " + std::to_string(id));
    res.Header("location", "/api/blog/posts/" + std::to_string(id)).Json(201, post);
  }

  void Update(const Request& req, Response& res) {
    Migrate();
    const int64_t id = ParseId(req.param("id"));
    Json post = Load(id);
    auto [title, body] = ReadPost(req);
    post.as_object()["title"] = Json(title);
    post.as_object()["body"] = Json(body);
    post.as_object()["updated"] = Json(NowMs());
    Posts().Put(Key(id), post.Dump());
    res.Json(200, post);
  }

  void Comment(const Request& req, Response& res) {
    const int64_t id = ParseId(req.param("id"));
    (void)Load(id);
    const Json in = req.json();
    const std::string* body = in.get_string("body");
    if (!body || body->empty() || body->size() > kMaxComment) {
      throw HttpError(400, "invalid", "body must be a non-empty string of at most 4 KiB");
    }
    const std::string node = host().NodeId();
    const int64_t now = NowMs();
    char key[96];
    std::snprintf(key, sizeof key, "%s/%012lld/%lld", node.c_str(), static_cast<long long>(id),
                  static_cast<long long>(now * 1000 + (++comment_seq_ % 1000)));
    Json comment(Json::Object{
        {"post", Json(id)}, {"author", Json(node)}, {"body", Json(*body)}, {"created", Json(now)}});
    Comments().Put(key, comment.Dump());
    comment.as_object()["key"] = Json(std::string(key));
    res.Json(201, comment);
  }

  bool migrated_ = false;
  int64_t comment_seq_ = 0;
};

}  // namespace

PEERSTACK_PLUGIN(Blog)
