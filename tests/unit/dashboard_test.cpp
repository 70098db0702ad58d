// The dashboard's login (core/dashboard/dashboard.h): one-time codes, sessions, the CSRF rule,
// the limits, and the embedded page's headers. Time is a FakeClock.
#include "dashboard/dashboard.h"

#include <gtest/gtest.h>

namespace peerstack::dashboard {
namespace {

http::Request Get(const std::string& target, const std::string& cookie = "",
                  const std::string& token = "", const std::string& host = "127.0.0.1:8081") {
  http::Request r;
  r.method = "GET";
  r.target = target;
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  r.headers.push_back({"host", host});
  if (!cookie.empty()) r.headers.push_back({"cookie", cookie});
  if (!token.empty()) r.headers.push_back({"x-csrf-token", token});
  return r;
}

struct Login {
  std::string cookie;  // "peerstack_session_8081=..."
  std::string token;   // from the redirect's fragment
};

// Logs in with code; empty when refused.
Login LogIn(Dashboard& d, const std::string& code, const std::string& host = "127.0.0.1:8081") {
  auto r = d.Handle(Get("/login?code=" + code, "", "", host));
  EXPECT_TRUE(r.has_value());
  if (!r || r->status != 303) return {};
  const std::string* set = r->header("set-cookie");
  EXPECT_NE(set, nullptr);
  EXPECT_NE(set->find("HttpOnly"), std::string::npos);
  EXPECT_NE(set->find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(set->find("Max-Age"), std::string::npos);  // the browser's session
  const std::string location = *r->header("location");
  EXPECT_EQ(location.rfind("/#csrf=", 0), 0u) << location;
  return {set->substr(0, set->find(';')), location.substr(7)};
}

TEST(Dashboard, ACodeLogsInOnceAndOnlyInTime) {
  FakeClock clock;
  Dashboard d(&clock);
  const std::string code = d.NewCode();
  EXPECT_EQ(code.size(), 64u);
  http::Request head = Get("/login?code=" + code);
  head.method = "HEAD";  // a link preview does not use the code up
  EXPECT_EQ(d.Handle(head)->status, 405);
  const Login in = LogIn(d, code);
  ASSERT_FALSE(in.cookie.empty());
  EXPECT_EQ(in.cookie.rfind("peerstack_session_8081=", 0), 0u) << in.cookie;
  EXPECT_EQ(in.token.size(), 64u);
  EXPECT_TRUE(d.Authorizes(Get("/status", "theme=dark; " + in.cookie, in.token)));
  EXPECT_EQ(d.Handle(Get("/login?code=" + code))->status, 403);  // used
  EXPECT_EQ(d.Handle(Get("/login?code=" + std::string(64, '0')))->status, 403);
  EXPECT_EQ(d.Handle(Get("/login?code="))->status, 403);
  EXPECT_EQ(d.Handle(Get("/login"))->status, 403);
  const std::string late = d.NewCode();
  clock.Advance(5 * 60 * 1000 + 1);
  EXPECT_EQ(d.Handle(Get("/login?code=" + late))->status, 403);  // expired
  EXPECT_EQ(d.sessions(), 1u);
}

TEST(Dashboard, TheCookieAloneOrTheTokenAloneOpensNothing) {
  FakeClock clock;
  Dashboard d(&clock);
  const Login in = LogIn(d, d.NewCode());
  EXPECT_EQ(d.Check(Get("/status", in.cookie)), Dashboard::Access::kBadToken);
  EXPECT_EQ(d.Check(Get("/status", in.cookie, std::string(64, 'a'))), Dashboard::Access::kBadToken);
  EXPECT_EQ(d.Check(Get("/status", "", in.token)), Dashboard::Access::kNone);
  EXPECT_EQ(d.Check(Get("/status", in.cookie, in.token)), Dashboard::Access::kGranted);
  http::Request post = Get("/leave", in.cookie, in.token);
  post.method = "POST";
  EXPECT_TRUE(d.Authorizes(post));
  EXPECT_EQ(d.Handle(Get("/dashboard/session", in.cookie))->status, 403);
  EXPECT_EQ(d.Handle(Get("/dashboard/session", in.cookie, in.token))->status, 200);
  EXPECT_EQ(d.Handle(Get("/dashboard/session"))->status, 401);
  EXPECT_EQ(d.Handle(Get("/dashboard/session"))->body.find(in.token), std::string::npos);
  // Another session's token, a cookie of another port, a decoy cookie set by another page of
  // 127.0.0.1 before the real one.
  const Login other = LogIn(d, d.NewCode());
  EXPECT_FALSE(d.Authorizes(Get("/status", in.cookie, other.token)));
  EXPECT_FALSE(d.Authorizes(Get("/status", in.cookie, in.token, "127.0.0.1:9999")));
  EXPECT_TRUE(d.Authorizes(Get(
      "/status", "peerstack_session_8081=" + std::string(64, 'f') + "; " + in.cookie, in.token)));
  EXPECT_FALSE(
      d.Authorizes(Get("/status", "peerstack_session_8081=" + std::string(64, 'f'), in.token)));
}

TEST(Dashboard, TwoNodesOnOneMachineKeepASessionEach) {
  FakeClock clock;
  Dashboard a(&clock), b(&clock);
  const Login at_a = LogIn(a, a.NewCode(), "127.0.0.1:8081");
  const Login at_b = LogIn(b, b.NewCode(), "127.0.0.1:9081");
  EXPECT_NE(at_a.cookie.substr(0, at_a.cookie.find('=')),
            at_b.cookie.substr(0, at_b.cookie.find('=')));
  const std::string both = at_a.cookie + "; " + at_b.cookie;  // what the browser sends to each
  EXPECT_TRUE(a.Authorizes(Get("/status", both, at_a.token, "127.0.0.1:8081")));
  EXPECT_TRUE(b.Authorizes(Get("/status", both, at_b.token, "127.0.0.1:9081")));
}

TEST(Dashboard, SessionsExpireWhenIdleAndAreBounded) {
  FakeClock clock;
  Limits limits;
  limits.max_sessions = 2;
  limits.max_codes = 2;
  Dashboard d(&clock, limits);
  const Login first = LogIn(d, d.NewCode());
  clock.Advance(limits.session_ttl_ms - 1000);
  EXPECT_TRUE(d.Authorizes(Get("/status", first.cookie, first.token)));  // refreshed
  clock.Advance(limits.session_ttl_ms - 1000);
  EXPECT_TRUE(d.Authorizes(Get("/status", first.cookie, first.token)));
  clock.Advance(limits.session_ttl_ms + 1);
  EXPECT_FALSE(d.Authorizes(Get("/status", first.cookie, first.token)));  // idle too long
  const Login a = LogIn(d, d.NewCode());
  const Login b = LogIn(d, d.NewCode());
  const Login c = LogIn(d, d.NewCode());
  EXPECT_LE(d.sessions(), 2u);
  EXPECT_FALSE(d.Authorizes(Get("/status", a.cookie, a.token)));  // pushed out by c
  EXPECT_TRUE(d.Authorizes(Get("/status", b.cookie, b.token)));
  EXPECT_TRUE(d.Authorizes(Get("/status", c.cookie, c.token)));
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
