#include "dashboard/dashboard.h"

#include <algorithm>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "json/json.h"

namespace peerstack::dashboard {
namespace {

constexpr const char kCookie[] = "peerstack_session";

// The value of cookie `name` in the Cookie header, or "".
std::string CookieOf(const http::Request& r, std::string_view name) {
  const std::string* h = r.header("cookie");
  if (!h) return "";
  std::string_view rest(*h);
  while (!rest.empty()) {
    size_t end = rest.find(';');
    std::string_view part = rest.substr(0, end);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return "";
}

std::string QueryValue(const std::string& query, std::string_view key) {
  std::string_view rest(query);
  while (!rest.empty()) {
    size_t end = rest.find('&');
    std::string_view part = rest.substr(0, end);
    if (part.size() > key.size() && part.substr(0, key.size()) == key && part[key.size()] == '=')
      return std::string(part.substr(key.size() + 1));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return "";
}

http::Response Page(int status, const std::string& title, const std::string& text) {
  http::Response r;
  r.status = status;
  r.body =
      "<!doctype html><meta charset=utf-8><meta name=viewport "
      "content=\"width=device-width\"><title>" +
      title + "</title><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>" +
      title + "</h1><p>" + text + "</p></body>";
  r.set("content-type", "text/html; charset=utf-8");
  r.set("cache-control", "no-store");
  return r;
}

bool Safe(const std::string& method) { return method == "GET" || method == "HEAD"; }

}  // namespace

Dashboard::Dashboard(const Clock* clock, Limits limits) : clock_(clock), limits_(limits) {}

std::string Dashboard::NewCode() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_->SteadyMs();
  codes_.erase(std::remove_if(codes_.begin(), codes_.end(),
                              [&](const Code& c) { return c.expires_ms <= now; }),
               codes_.end());
  if (codes_.size() >= limits_.max_codes) codes_.erase(codes_.begin());
  codes_.push_back({crypto::RandomHex(32), now + limits_.code_ttl_ms});
  return codes_.back().value;
}

size_t Dashboard::sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

Dashboard::Session* Dashboard::Find(const http::Request& r) {
  const std::string id = CookieOf(r, kCookie);
  if (id.size() != 64) return nullptr;
  const int64_t now = clock_->SteadyMs();
  Session* found = nullptr;
  for (Session& s : sessions_) {  // every one compared, in constant time
    if (crypto::ConstantTimeEqual(s.id, id) && s.expires_ms > now) found = &s;
  }
  return found;
}

bool Dashboard::Authorizes(const http::Request& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Session* s = Find(r);
  if (!s) return false;
  if (!Safe(r.method)) {
    const std::string* csrf = r.header("x-csrf-token");
    if (!csrf || !crypto::ConstantTimeEqual(*csrf, s->csrf)) return false;
  }
  s->expires_ms = clock_->SteadyMs() + limits_.session_ttl_ms;
  return true;
}

http::Response Dashboard::Login(const http::Request& r) {
  const std::string code = QueryValue(r.query, "code");
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_->SteadyMs();
  auto it = codes_.end();
  for (auto c = codes_.begin(); c != codes_.end(); ++c) {
    if (code.size() == c->value.size() && crypto::ConstantTimeEqual(c->value, code) &&
        c->expires_ms > now)
      it = c;
  }
  if (it == codes_.end()) {
    return Page(403, "This login link does not work",
                "It was used already, is older than five minutes, or was mistyped. Run "
                "<code>peerstack dashboard</code> on the node's machine for a new one.");
  }
  codes_.erase(it);  // once
  sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                 [&](const Session& s) { return s.expires_ms <= now; }),
                  sessions_.end());
  if (sessions_.size() >= limits_.max_sessions) sessions_.erase(sessions_.begin());
  sessions_.push_back({crypto::RandomHex(32), crypto::RandomHex(32), now + limits_.session_ttl_ms});
  http::Response resp;
  resp.status = 303;
  resp.set("location", "/");
  resp.set("set-cookie", std::string(kCookie) + "=" + sessions_.back().id +
                             "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                             std::to_string(limits_.session_ttl_ms / 1000));
  resp.set("cache-control", "no-store");
  return resp;
}

std::optional<http::Response> Dashboard::Handle(const http::Request& r) {
  if (r.path == "/login") {
    if (!Safe(r.method)) return http::JsonError(405, "method_not_allowed", "GET /login?code=...");
    return Login(r);
  }
  if (r.path == "/dashboard/session") {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(r);
    if (!s) {
      return http::JsonError(401, "no_session",
                             "log in with the link `peerstack dashboard` prints");
    }
    http::Response resp = http::JsonResponse(
        200, json::Serialize(json::Object{{"csrf", s->csrf}, {"sessions", sessions_.size()}}));
    resp.set("cache-control", "no-store");
    return resp;
  }
  const std::string path = r.path == "/" ? "/index.html" : r.path;
  for (size_t i = 0; i < kAssetCount; ++i) {
    if (path != kAssets[i].path) continue;
    if (!Safe(r.method)) return http::JsonError(405, "method_not_allowed", "the page is read-only");
    http::Response resp;
    resp.body.assign(reinterpret_cast<const char*>(kAssets[i].data), kAssets[i].size);
    resp.set("content-type", kAssets[i].content_type);
    resp.set("cache-control", "no-cache");
    // The page runs only its own files: no inline script, nothing from elsewhere.
    resp.set("content-security-policy",
             "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'");
    resp.set("x-content-type-options", "nosniff");
    resp.set("referrer-policy", "no-referrer");
    return resp;
  }
  return std::nullopt;
}

}  // namespace peerstack::dashboard
