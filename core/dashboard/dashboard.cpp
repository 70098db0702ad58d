#include "dashboard/dashboard.h"

#include <algorithm>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "json/json.h"

namespace peerstack::dashboard {
namespace {

// The cookie's name carries the admin port the browser talks to (from Host): two nodes on one
// machine keep a session each.
std::string CookieName(const http::Request& r) {
  const std::string* host = r.header("host");
  std::string port = "0";
  if (host) {
    const size_t colon = host->rfind(':');
    if (colon != std::string::npos && host->find(']', colon) == std::string::npos) {
      port = host->substr(colon + 1);
    }
  }
  for (char c : port) {
    if (c < '0' || c > '9') return "peerstack_session_0";
  }
  return "peerstack_session_" + port;
}

// Every value of cookie `name` in the Cookie headers (a page elsewhere on 127.0.0.1 may have
// set another one with a longer path, which the browser then sends first).
std::vector<std::string> CookiesOf(const http::Request& r, std::string_view name) {
  std::vector<std::string> out;
  for (const http::Header& h : r.headers) {
    if (h.name != "cookie") continue;
    std::string_view rest(h.value);
    while (!rest.empty() && out.size() < 8) {
      size_t end = rest.find(';');
      std::string_view part = rest.substr(0, end);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      if (part.size() > name.size() && part.substr(0, name.size()) == name &&
          part[name.size()] == '=') {
        out.emplace_back(part.substr(name.size() + 1));
      }
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }
  return out;
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

http::Response NoStore(http::Response r) {
  r.set("cache-control", "no-store");
  return r;
}

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
  const int64_t now = clock_->SteadyMs();
  Session* found = nullptr;
  for (const std::string& id : CookiesOf(r, CookieName(r))) {
    if (id.size() != 64) continue;
    for (Session& s : sessions_) {  // every one compared, in constant time
      if (crypto::ConstantTimeEqual(s.id, id) && s.expires_ms > now) found = &s;
    }
  }
  return found;
}

Dashboard::Access Dashboard::Check(const http::Request& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Session* s = Find(r);
  if (!s) return Access::kNone;
  const std::string* csrf = r.header("x-csrf-token");
  if (!csrf || csrf->size() != s->csrf.size() || !crypto::ConstantTimeEqual(*csrf, s->csrf))
    return Access::kBadToken;
  s->expires_ms = clock_->SteadyMs() + limits_.session_ttl_ms;
  return Access::kGranted;
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
  // The token travels in the fragment, which no server sees; the page moves it to
  // sessionStorage and out of the address bar. The cookie lives as long as the browser's
  // session; the node forgets the session after session_ttl_ms without a request.
  http::Response resp;
  resp.status = 303;
  resp.set("location", "/#csrf=" + sessions_.back().csrf);
  resp.set("set-cookie",
           CookieName(r) + "=" + sessions_.back().id + "; Path=/; HttpOnly; SameSite=Strict");
  resp.set("referrer-policy", "no-referrer");
  return NoStore(std::move(resp));
}

std::optional<http::Response> Dashboard::Handle(const http::Request& r) {
  if (r.path == "/login") {
    // GET only: a HEAD (a link preview, a prefetch) must not use the code up.
    if (r.method != "GET") return http::JsonError(405, "method_not_allowed", "GET /login?code=...");
    return Login(r);
  }
  if (r.path == "/dashboard/session") {  // the page asks whether its session still holds
    switch (Check(r)) {
      case Access::kNone:
        return NoStore(http::JsonError(401, "no_session",
                                       "log in with the link `peerstack dashboard` prints"));
      case Access::kBadToken:
        return NoStore(
            http::JsonError(403, "bad_csrf", "this page lost its session's token: log in again"));
      case Access::kGranted:
        break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    return NoStore(
        http::JsonResponse(200, json::Serialize(json::Object{{"sessions", sessions_.size()}})));
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
