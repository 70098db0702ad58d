#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

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
  EXPECT_EQ(
      ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
      400);
  EXPECT_EQ(
      ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
      400);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n"), 400);
}

TEST(RequestParser, RefusesInvalidContentLength) {
  for (const char* v : {"-1", "+5", "0x10", "1 2", "", "99999999999999999999999"}) {
    EXPECT_EQ(
        ErrorFor(std::string("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ") + v + "\r\n\r\n"),
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
  EXPECT_EQ(
      ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'a') + "\r\n\r\n", limits),
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
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\nHost: h\n\n"), 400);                      // bare LF
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), 400);  // obs-fold
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n"), 400);       // space
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n"), 400);    // control
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
  EXPECT_EQ(ErrorFor("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Length: 5\r\n\r\n"),
            400);
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\n\r\n"), 400);  // no Host
  EXPECT_EQ(ErrorFor("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(RequestParser, AcceptsHttp10WithoutHostAndAbsoluteForm) {
  RequestParser p(Limits{});
  ASSERT_EQ(ParseAll(p, "GET /x HTTP/1.0\r\n\r\n").state, State::kRequest);
  EXPECT_EQ(p.request().version_minor, 0);
  ASSERT_EQ(ParseAll(p, "GET http://h:1/a/b?q HTTP/1.1\r\nHost: h\r\n\r\n").state, State::kRequest);
  EXPECT_EQ(p.request().path, "/a/b");
  EXPECT_EQ(p.request().query, "q");
}

// Feeds data to p in pieces the way the server does (it drops what Parse consumed and appends
// what arrives) and returns every request completed, in order; *last gets the final state and
// *max_buffered the most the caller had to keep while a body was being read.
std::vector<Request> FeedInPieces(RequestParser& p, const std::string& data,
                                  const std::vector<size_t>& cuts, State* last,
                                  size_t* max_buffered = nullptr) {
  std::vector<Request> done;
  std::string buf;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(data.size());
  *last = State::kNeedMore;
  for (const size_t to : ends) {
    buf.append(data, from, to - from);
    from = to;
    while (!buf.empty()) {
      size_t consumed = 0;
      *last = p.Parse(buf, &consumed);
      EXPECT_LE(consumed, buf.size());
      buf.erase(0, consumed);
      if (*last == State::kRequest) {
        done.push_back(p.request());
        continue;
      }
      break;
    }
    if (max_buffered && p.head_complete()) *max_buffered = std::max(*max_buffered, buf.size());
    if (*last == State::kError) break;
  }
  return done;
}

const std::string kChunkedPost =
    "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n"
    "7;name=value;flag\r\n, world\r\n"
    "000\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";

TEST(RequestParser, DecodesAChunkedBodyAndDropsTrailers) {
  RequestParser p(Limits{});
  const Outcome o = ParseAll(p, kChunkedPost);
  ASSERT_EQ(o.state, State::kRequest) << p.error_message();
  EXPECT_EQ(o.consumed, kChunkedPost.size());
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(p.request().path, "/up");
  EXPECT_EQ(p.request().body, "hello, world");
  EXPECT_EQ(p.request().header("x-checksum"), nullptr);  // trailers are discarded
  // The coding name is case-insensitive; nothing else is accepted in its place.
  for (const char* te : {"Chunked", "CHUNKED", "  chunked\t"}) {
    RequestParser q(Limits{});
    ASSERT_EQ(ParseAll(q, std::string("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:") + te +
                              "\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                  .state,
              State::kRequest)
        << te;
    EXPECT_EQ(q.request().body, "abc");
  }
}

TEST(RequestParser, DecodesAChunkedBodySplitAtEveryByte) {
  for (size_t cut = 0; cut <= kChunkedPost.size(); ++cut) {
    RequestParser p(Limits{});
    State last;
    const auto got = FeedInPieces(p, kChunkedPost, {cut}, &last);
    ASSERT_EQ(got.size(), 1u) << "cut at " << cut << ": " << p.error_message();
    EXPECT_EQ(got[0].body, "hello, world") << cut;
    EXPECT_EQ(last, State::kRequest);
  }
  // One byte at a time: once the head is parsed, the caller holds at most one unfinished line.
  RequestParser p(Limits{});
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kChunkedPost.size(); ++i) cuts.push_back(i);
  State last;
  size_t max_buffered = 0;
  const auto got = FeedInPieces(p, kChunkedPost, cuts, &last, &max_buffered);
  ASSERT_EQ(got.size(), 1u) << p.error_message();
  EXPECT_EQ(got[0].body, "hello, world");
  EXPECT_LE(max_buffered, std::string("7;name=value;flag\r").size());
}

TEST(RequestParser, ConsumesChunkedFramingAsItArrives) {
  RequestParser p(Limits{});
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  Outcome o = ParseAll(p, head + "4\r\nabcd\r\n2");
  EXPECT_EQ(o.state, State::kNeedMore);
  EXPECT_TRUE(p.head_complete());          // the body timeout applies from here on
  EXPECT_EQ(o.consumed, head.size() + 9);  // all but the unfinished size line
  o = ParseAll(p, "2\r\nef");
  EXPECT_EQ(o.state, State::kNeedMore);
  EXPECT_EQ(o.consumed, 5u);  // data is taken even before its chunk is complete
  o = ParseAll(p, "\r\n0\r\n\r\n");
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(o.consumed, 7u);
  EXPECT_EQ(p.request().body, "abcdef");
  EXPECT_FALSE(p.head_complete());
}

TEST(RequestParser, FramesAPipelinedRequestAfterAChunkedOne) {
  const std::string next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string both = kChunkedPost + next;
  RequestParser p(Limits{});
  Outcome o = ParseAll(p, both);
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(o.consumed, kChunkedPost.size());
  o = ParseAll(p, both.substr(o.consumed));
  ASSERT_EQ(o.state, State::kRequest);
  EXPECT_EQ(o.consumed, next.size());
  EXPECT_EQ(p.request().path, "/next");
  EXPECT_EQ(p.request().body, "");
  // And at every split point.
  for (size_t cut = 0; cut <= both.size(); ++cut) {
    RequestParser q(Limits{});
    State last;
    const auto got = FeedInPieces(q, both, {cut}, &last);
    ASSERT_EQ(got.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(got[0].body, "hello, world");
    EXPECT_EQ(got[1].path, "/next");
  }
}

TEST(RequestParser, RefusesAChunkedBodyOverTheLimit) {
  Limits limits;
  limits.max_body_bytes = 10;
  limits.max_header_bytes = 256;
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(ErrorFor(head + "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", limits), 0);  // 10: fits
  EXPECT_EQ(ErrorFor(head + "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", limits), 413);
  // Decided from the size line, before any of the data arrives.
  EXPECT_EQ(ErrorFor(head + "b\r\n", limits), 413);
  EXPECT_EQ(ErrorFor(head + "ffffffffffffffff\r\n", limits), 413);
  // Tiny chunks with long extensions: the framing runs out before the body limit does
  // (2 * 10 + 256 bytes on the wire).
  std::string slow = head;
  for (int i = 0; i < 5; ++i) slow += "1;" + std::string(60, 'x') + "\r\na\r\n";
  EXPECT_EQ(ErrorFor(slow, limits), 413);
  // Trailers count against the header limit.
  EXPECT_EQ(ErrorFor(head + "0\r\nX: " + std::string(300, 't') + "\r\n\r\n", limits), 431);
  std::string many = head + "0\r\n";
  for (int i = 0; i < 101; ++i) many += "T: 1\r\n";
  EXPECT_EQ(ErrorFor(many + "\r\n"), 431);
}

TEST(RequestParser, RefusesMalformedChunkSizes) {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* bad :
       {"\r\n", "x\r\n", "-1\r\n", "+5\r\n", "0x5\r\n", " 5\r\n", "5 \r\n", "5,\r\n", "5\x01\r\n",
        "5;a\x7f\r\n", "5\n", "5\rhello\r\n", "10000000000000000\r\n"}) {
    EXPECT_EQ(ErrorFor(head + bad + "hello\r\n0\r\n\r\n"), 400) << bad;
  }
  // Leading zeros are fine, as are extensions after white space.
  EXPECT_EQ(ErrorFor(head + "000000000000000000005 ;x=\"y z\"\r\nhello\r\n0\r\n\r\n"), 0);
  EXPECT_EQ(ErrorFor(head + "5;" + std::string(1100, 'e') + "\r\nhello\r\n0\r\n\r\n"), 400);
  EXPECT_EQ(ErrorFor(head + "5\r\nhelloXY0\r\n\r\n"), 400);  // data not followed by CRLF
  EXPECT_EQ(ErrorFor(head + "5\r\nhello\r\r0\r\n\r\n"), 400);
  EXPECT_EQ(ErrorFor(head + "0\r\nbad trailer\r\n\r\n"), 400);
  EXPECT_EQ(ErrorFor(head + "0\r\nX: a\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(ErrorFor(head + "0\r\nX: a\n\r\n"), 400);  // bare LF in a trailer
}

TEST(RequestParser, RefusesOtherTransferEncodings) {
  auto with = [](const std::string& fields) {
    return ErrorFor("POST / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n0\r\n\r\n");
  };
  // Two framings: request smuggling, whatever the order.
  EXPECT_EQ(with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400);
  EXPECT_EQ(with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400);
  EXPECT_EQ(with("Content-Length: 0\r\nTransfer-Encoding: gzip\r\n"), 400);
  // Codings we do not decode, and lists.
  EXPECT_EQ(with("Transfer-Encoding: gzip, chunked\r\n"), 501);
  EXPECT_EQ(with("Transfer-Encoding: chunked, gzip\r\n"), 501);
  EXPECT_EQ(with("Transfer-Encoding: chunked, chunked\r\n"), 501);
  EXPECT_EQ(with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 501);
  EXPECT_EQ(with("Transfer-Encoding: identity\r\n"), 501);
  EXPECT_EQ(with("Transfer-Encoding: chunked;q=1\r\n"), 501);
  EXPECT_EQ(with("Transfer-Encoding:\r\n"), 501);
  // HTTP/1.0 has no chunked coding.
  EXPECT_EQ(ErrorFor("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
}

TEST(RequestParser, FlagsExpectContinueForAChunkedBody) {
  RequestParser p(Limits{});
  const Outcome o = ParseAll(p,
                             "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(o.state, State::kNeedMore);
  EXPECT_TRUE(p.expects_continue());
  ASSERT_EQ(ParseAll(p, "0\r\n\r\n").state, State::kRequest);
  EXPECT_FALSE(p.expects_continue());
}

TEST(RequestParser, CountsLeadingBlankLinesAcrossCalls) {
  // Fed one at a time (an idle client keeping the connection alive), the limit still holds.
  RequestParser p(Limits{});
  State last;
  FeedInPieces(p, "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", {2, 4, 6, 8, 10}, &last);
  EXPECT_EQ(last, State::kError);
  EXPECT_EQ(p.error_status(), 400);
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

// Range requests on a whole body (RangedBody): what /download answers a resumed download.
TEST(RangedBody, AnswersTheOneRangeAskedForAndTheWholeBodyOtherwise) {
  const std::string body = "0123456789";
  auto ask = [&](std::vector<Header> headers) {
    Request r;
    r.headers = std::move(headers);
    return RangedBody(r, body, "\"r1\"", "application/octet-stream");
  };
  Response whole = ask({});
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body, body);
  EXPECT_EQ(*whole.header("accept-ranges"), "bytes");
  EXPECT_EQ(*whole.header("etag"), "\"r1\"");
  struct Case {
    std::string range;
    int status;
    std::string body, content_range;
  };
  for (const Case& c : std::vector<Case>{
           {"bytes=4-", 206, "456789", "bytes 4-9/10"},
           {"bytes=2-4", 206, "234", "bytes 2-4/10"},
           {"bytes=8-100", 206, "89", "bytes 8-9/10"},
           {"bytes=-3", 206, "789", "bytes 7-9/10"},
           {"bytes=-30", 206, body, "bytes 0-9/10"},
           {"bytes=10-", 416, "", "bytes */10"},
           {"bytes=99-200", 416, "", "bytes */10"},
           {"bytes=1-2,5-6", 200, body, ""},  // several ranges: the whole body
           {"bytes=5-2", 200, body, ""},      // not a range
           {"bytes=x-", 200, body, ""},
           {"bytes=-0", 200, body, ""},
           {"bytes=99999999999999999999-", 200, body, ""},
           {"items=1-2", 200, body, ""},
       }) {
    SCOPED_TRACE(c.range);
    Response r = ask({{"range", c.range}});
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.body, c.body);
    const std::string* cr = r.header("content-range");
    EXPECT_EQ(cr ? *cr : "", c.content_range);
  }
  // If-Range: the range only while the file is the one the client has part of.
  EXPECT_EQ(ask({{"range", "bytes=4-"}, {"if-range", "\"r1\""}}).status, 206);
  Response changed = ask({{"range", "bytes=4-"}, {"if-range", "\"r0\""}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, body);
}

}  // namespace
}  // namespace peerstack::http
