#include <gtest/gtest.h>

#include "http/parser.h"

namespace peerstack::http {
namespace {

using State = RequestParser::State;

struct Outcome {
  State state;
  size_t consumed;
};

Outcome ParseAll(RequestParser& p, const std::string& data) {
  size_t consumed = 0;
  const State s = p.Parse(data, &consumed);
  return {s, consumed};
}

int ErrorFor(const std::string& data, Limits limits = {}) {
  RequestParser p(limits);
  const Outcome o = ParseAll(p, data);
  return o.state == State::kError ? p.error_status() : 0;
}

TEST(RequestParser, ParsesASimpleGet) {
  RequestParser p(Limits{});
  const std::string req = "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing:  v  \r\n\r\n";
  const Outcome o = ParseAll(p, req);
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(o.consumed, req.size());
  EXPECT_EQ(p.request().method, "GET");
  EXPECT_EQ(p.request().path, "/a/b");
  EXPECT_EQ(p.request().query, "x=1");
  EXPECT_EQ(*p.request().header("x-thing"), "v");
  EXPECT_EQ(p.request().version_minor, 1);
}

TEST(RequestParser, FramesPipelinedRequestsWithBodies) {
  RequestParser p(Limits{});
  const std::string a = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  const std::string b = "GET /y HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string both = a + b;
  Outcome o = ParseAll(p, both);
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(o.consumed, a.size());
  EXPECT_EQ(p.request().body, "hello");
  o = ParseAll(p, both.substr(a.size()));
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(p.request().path, "/y");
}

TEST(RequestParser, HandlesByteByByteInput) {
  RequestParser p(Limits{});
  const std::string req = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  std::string buf;
  for (size_t i = 0; i < req.size(); ++i) {
    buf.push_back(req[i]);
    size_t consumed = 0;
    const State s = p.Parse(buf, &consumed);
    buf.erase(0, consumed);
    if (i + 1 < req.size()) {
      ASSERT_EQ(s, State::kNeedMore) << i;
    } else {
      ASSERT_EQ(s, State::kRequest);
      EXPECT_EQ(p.request().body, "abc");
    }
  }
}

TEST(RequestParser, ReportsHeadCompleteWhileBodyIsPending) {
  RequestParser p(Limits{});
  const Outcome o = ParseAll(p, "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab");
  EXPECT_EQ(o.state, State::kNeedMore);
  EXPECT_TRUE(p.head_complete());
}

TEST(RequestParser, RefusesDuplicateOrConflictingContentLength) {
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
            400);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n"), 400);
}

TEST(RequestParser, RefusesInvalidContentLength) {
  for (const char* v : {"-1", "+5", "0x10", "1 2", "", "99999999999999999999999"}) {
    EXPECT_EQ(ErrorFor(std::string("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ") + v +
                       "\r\n\r\n"),
              400)
        << v;
  }
}

TEST(RequestParser, RefusesBodyOverTheLimitFromHeadersAlone) {
  Limits limits;
  limits.max_body_bytes = 100;
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", limits), 413);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999\r\n\r\n", limits),
            413);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", limits), 0);
}

TEST(RequestParser, RefusesOversizeHeadersAndTooManyFields) {
  Limits limits;
  limits.max_header_bytes = 256;
  limits.max_headers = 5;
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'a') + "\r\n\r\n",
                     limits),
            431);
  // Without an end in sight the limit also applies.
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nX: " + std::string(300, 'a'), limits), 431);
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 6; ++i) many += "X" + std::to_string(i) + ": 1\r\n";
  EXPECT_EQ(ErrorFor(many + "\r\n", limits), 431);
}

TEST(RequestParser, RefusesMalformedRequestLines) {
  for (const char* bad : {"GET\r\n\r\n", "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1 x\r\n\r\n", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
                          "GET / HTTX/1.1\r\nHost: h\r\n\r\n", "GET / HTTP/1.10\r\n\r\n",
                          "GET nopath HTTP/1.1\r\nHost: h\r\n\r\n", "\x16\x03\x01\x02\r\n\r\n"}) {
    EXPECT_EQ(ErrorFor(bad), 400) << bad;
  }
  EXPECT_EQ(ErrorFor("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
}

TEST(RequestParser, RefusesSmugglingShapes) {
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\nHost: h\n\n"), 400);                         // bare LF
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), 400);     // obs-fold
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n"), 400);          // space
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n"), 400);       // control
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\n\r\n"), 400);                              // no Host
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(RequestParser, AcceptsHttp10WithoutHostAndAbsoluteForm) {
  RequestParser p(Limits{});
  ASSERT_EQ(ParseAll(p, "GET /x HTTP/1.0\r\n\r\n").state, State::kRequest);
  EXPECT_EQ(p.request().version_minor, 0);
  ASSERT_EQ(ParseAll(p, "GET http://h:1/a/b?q HTTP/1.1\r\nHost: h\r\n\r\n").state,
            State::kRequest);
  EXPECT_EQ(p.request().path, "/a/b");
  EXPECT_EQ(p.request().query, "q");
}

TEST(RequestParser, SkipsLeadingBlankLines) {
  RequestParser p(Limits{});
  const std::string req = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const Outcome o = ParseAll(p, req);
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(o.consumed, req.size());
}

TEST(RequestParser, FlagsExpectContinue) {
  RequestParser p(Limits{});
  const Outcome o = ParseAll(
      p, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(o.state, State::kNeedMore);
  EXPECT_TRUE(p.expects_continue());
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n"), 417);
}

TEST(RequestParser, StaysFailedAfterAnError) {
  RequestParser p(Limits{});
  EXPECT_EQ(ParseAll(p, "BAD\r\n\r\n").state, State::kError);
  EXPECT_EQ(ParseAll(p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").state, State::kError);
}

TEST(ResponseWriter, WritesLengthAndConnectionHeaders) {
  std::string out;
  Response r = JsonResponse(200, "{}");
  AppendResponse(out, r, false, true, false);
  EXPECT_NE(out.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_NE(out.find("Content-Length: 2\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Connection"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 6), "\r\n\r\n{}");
  out.clear();
  AppendResponse(out, r, true, false, false);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");  // HEAD: no body
}

TEST(ResponseWriter, JsonErrorHasTheContractShape) {
  const Response r = JsonError(404, "not_found", "no \"such\" route");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no \"such\" route"}})");
  EXPECT_EQ(*r.header("content-type"), "application/json");
}

}  // namespace
}  // namespace peerstack::http
