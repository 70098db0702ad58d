// The dashboard's login (core/dashboard/dashboard.h): one-time codes, sessions, the CSRF rule,
// the limits, and the embedded page's headers. Time is a FakeClock.
#include "dashboard/dashboard.h"

#include <gtest/gtest.h>

namespace peerstack::dashboard {
namespace {

http::Request Get(const std::string& target, const std::string& cookie = "") {
  http::Request r;
  r.method = "GET";
  r.target = target;
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  if (!cookie.empty()) r.headers.push_back({"cookie", cookie});
  return r;
}

// Logs in with code; the session's cookie ("peerstack_session=...") or "" when refused.
std::string LogIn(Dashboard& d, const std::string& code) {
  auto r = d.Handle(Get("/login?code=" + code));
  EXPECT_TRUE(r.has_value());
  if (!r || r->status != 303) return "";
  const std::string* set = r->header("set-cookie");
  EXPECT_NE(set, nullptr);
  EXPECT_NE(set->find("HttpOnly"), std::string::npos);
  EXPECT_NE(set->find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(*r->header("location"), "/");
  return set->substr(0, set->find(';'));
}

TEST(Dashboard, ACodeLogsInOnceAndOnlyInTime) {
  FakeClock clock;
  Dashboard d(&clock);
  const std::string code = d.NewCode();
  EXPECT_EQ(code.size(), 64u);
  const std::string cookie = LogIn(d, code);
  ASSERT_FALSE(cookie.empty());
  EXPECT_TRUE(d.Authorizes(Get("/status", "theme=dark; " + cookie)));
  EXPECT_EQ(d.Handle(Get("/login?code=" + code))->status, 403);  // used
  EXPECT_EQ(d.Handle(Get("/login?code=" + std::string(64, '0')))->status, 403);
  EXPECT_EQ(d.Handle(Get("/login?code="))->status, 403);
  EXPECT_EQ(d.Handle(Get("/login"))->status, 403);
  const std::string late = d.NewCode();
  clock.Advance(5 * 60 * 1000 + 1);
  EXPECT_EQ(d.Handle(Get("/login?code=" + late))->status, 403);  // expired
  EXPECT_EQ(d.sessions(), 1u);
}

TEST(Dashboard, AChangeNeedsTheSessionsCsrfToken) {
  FakeClock clock;
  Dashboard d(&clock);
  const std::string cookie = LogIn(d, d.NewCode());
  auto session = d.Handle(Get("/dashboard/session", cookie));
  ASSERT_EQ(session->status, 200);
  const size_t at = session->body.find("\"csrf\":\"");
  ASSERT_NE(at, std::string::npos);
  const std::string csrf = session->body.substr(at + 8, 64);
  http::Request post = Get("/leave", cookie);
  post.method = "POST";
  EXPECT_FALSE(d.Authorizes(post));
  post.headers.push_back({"x-csrf-token", std::string(64, 'a')});
  EXPECT_FALSE(d.Authorizes(post));
  post.headers.back().value = csrf;
  EXPECT_TRUE(d.Authorizes(post));
  // No cookie, a wrong one, or another session's token: nothing.
  EXPECT_FALSE(d.Authorizes(Get("/status")));
  EXPECT_FALSE(d.Authorizes(Get("/status", "peerstack_session=" + std::string(64, 'f'))));
  EXPECT_EQ(d.Handle(Get("/dashboard/session"))->status, 401);
  const std::string other = LogIn(d, d.NewCode());
  http::Request cross = Get("/leave", other);
  cross.method = "POST";
  cross.headers.push_back({"x-csrf-token", csrf});
  EXPECT_FALSE(d.Authorizes(cross));
}

TEST(Dashboard, SessionsExpireWhenIdleAndAreBounded) {
  FakeClock clock;
  Limits limits;
  limits.max_sessions = 2;
  limits.max_codes = 2;
  Dashboard d(&clock, limits);
  const std::string first = LogIn(d, d.NewCode());
  clock.Advance(limits.session_ttl_ms - 1000);
  EXPECT_TRUE(d.Authorizes(Get("/status", first)));  // refreshed
  clock.Advance(limits.session_ttl_ms - 1000);
  EXPECT_TRUE(d.Authorizes(Get("/status", first)));
  clock.Advance(limits.session_ttl_ms + 1);
  EXPECT_FALSE(d.Authorizes(Get("/status", first)));  // idle too long
  const std::string a = LogIn(d, d.NewCode());
  const std::string b = LogIn(d, d.NewCode());
  const std::string c = LogIn(d, d.NewCode());
  EXPECT_LE(d.sessions(), 2u);
  EXPECT_FALSE(d.Authorizes(Get("/status", a)));  // pushed out by c
  EXPECT_TRUE(d.Authorizes(Get("/status", b)));
  EXPECT_TRUE(d.Authorizes(Get("/status", c)));
  const std::string old_code = d.NewCode();
  d.NewCode();
  d.NewCode();  // three codes, room for two: the oldest goes
  EXPECT_EQ(d.Handle(Get("/login?code=" + old_code))->status, 403);
}

TEST(Dashboard, ServesItsEmbeddedFilesWithAPolicyOfItsOwn) {
  FakeClock clock;
  Dashboard d(&clock);
  auto page = d.Handle(Get("/"));
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<script type=\"module\" src=\"/dashboard.js\">"), std::string::npos);
  EXPECT_NE(page->header("content-security-policy")->find("default-src 'self'"), std::string::npos);
  auto js = d.Handle(Get("/dashboard.js"));
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(*js->header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_NE(js->body.find("textContent"), std::string::npos);
  EXPECT_FALSE(d.Handle(Get("/status")).has_value());  // not the dashboard's
  EXPECT_FALSE(d.Handle(Get("/dashboard.js.map")).has_value());
  http::Request put = Get("/index.html");
  put.method = "PUT";
  EXPECT_EQ(d.Handle(put)->status, 405);
}

}  // namespace
}  // namespace peerstack::dashboard
