// The operator's dashboard on the admin listener (docs/operations.md, "The dashboard"): the
// page's files, embedded into the binary at build time (files/), and its login.
//
// Login: `peerstack dashboard` asks the node (bearer token, POST /dashboard/codes) for a
// one-time code and prints http://127.0.0.1:ADMIN/login?code=CODE. GET /login exchanges the
// code (once, within 5 minutes) for a session: an HttpOnly, SameSite=Strict cookie named for
// the admin port, and the session's CSRF token, handed over once in the redirect's fragment
// (/#csrf=TOKEN), which the page keeps in sessionStorage (its origin, port included). Every
// request of the page carries both: the cookie alone is worth nothing (browsers send
// 127.0.0.1's cookies to every port of it, other local servers included), and the token alone
// neither. The bearer token keeps working for scripts. None of this is on the public listener
// (tunnelled requests arrive there, from loopback too).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "http/message.h"

namespace peerstack::dashboard {

struct Limits {
  int64_t code_ttl_ms = 5 * 60 * 1000;
  int64_t session_ttl_ms = 12 * 3600 * 1000;  // since the last request
  size_t max_codes = 8;                       // waiting; a new one pushes out the oldest
  size_t max_sessions = 16;                   // likewise
};

class Dashboard {
 public:
  explicit Dashboard(const Clock* clock, Limits limits = {});

  // A new one-time login code (64 hex characters).
  std::string NewCode();
  // The dashboard's own paths: its files (/, /dashboard/*.js, ...), GET /login and GET
  // /dashboard/session. nullopt for every other path.
  std::optional<http::Response> Handle(const http::Request& request);
  enum class Access {
    kNone,      // no live session named by the cookie: 401
    kBadToken,  // a session, but not its CSRF token in X-CSRF-Token: 403
    kGranted,   // both: the admin routes (and the session is refreshed)
  };
  Access Check(const http::Request& request);
  bool Authorizes(const http::Request& request) { return Check(request) == Access::kGranted; }
  size_t sessions() const;

 private:
  struct Code {
    std::string value;
    int64_t expires_ms;
  };
  struct Session {
    std::string id, csrf;
    int64_t expires_ms;
  };
  http::Response Login(const http::Request& request);
  // With mu_ held: the live session the cookie names, or nullptr.
  Session* Find(const http::Request& request);

  const Clock* clock_;
  Limits limits_;
  mutable std::mutex mu_;
  std::vector<Code> codes_;
  std::vector<Session> sessions_;
};

// The embedded files: path ("/index.html") -> bytes and content type. Made at build time.
struct Asset {
  const char* path;
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
extern const Asset kAssets[];
extern const size_t kAssetCount;

}  // namespace peerstack::dashboard
