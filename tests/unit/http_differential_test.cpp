// Differential test: our RequestParser against Boost.Beast's request_parser (an independent,
// widely used HTTP/1.1 parser that runs without I/O through put()). Both read the same
// requests: the fuzz seed corpus (tests/fuzz/corpus/http_parser/) and the tricky cases below.
// They must agree on accept / reject / incomplete and, where both accept, on method, target
// and body of every pipelined request. Where we differ on purpose, KnownDisagreements() says
// why; an entry that stops being a disagreement fails the test too, so the list stays true.
#include <gtest/gtest.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"

namespace peerstack::http {
namespace {

namespace beast = boost::beast;
using namespace std::string_literals;

enum class Verdict { kAccept, kReject, kIncomplete };

const char* Name(Verdict v) {
  switch (v) {
    case Verdict::kAccept:
      return "accept";
    case Verdict::kReject:
      return "reject";
    case Verdict::kIncomplete:
      return "incomplete";
  }
  return "?";
}

// Every request read from the input, in order, then how the input ended: kAccept when it
// was all whole requests.
struct Outcome {
  std::vector<std::string> requests;  // "METHOD target | body"
  Verdict verdict = Verdict::kIncomplete;

  std::string ToString() const {
    std::string out;
    for (const auto& r : requests) out += "[" + r + "] ";
    return out + Name(verdict);
  }
  bool operator==(const Outcome&) const = default;
};

// For gtest's failure messages.
void PrintTo(const Outcome& o, std::ostream* os) { *os << o.ToString(); }

Outcome Ours(std::string_view in) {
  RequestParser parser(Limits{});
  Outcome out;
  while (!in.empty()) {
    size_t consumed = 0;
    const auto state = parser.Parse(in, &consumed);
    in.remove_prefix(consumed);
    if (state == RequestParser::State::kError) {
      out.verdict = Verdict::kReject;
      return out;
    }
    if (state == RequestParser::State::kNeedMore) {
      out.verdict = Verdict::kIncomplete;
      return out;
    }
    const Request& r = parser.request();
    out.requests.push_back(r.method + " " + r.target + " | " + r.body);
  }
  out.verdict = Verdict::kAccept;
  return out;
}

Outcome Beast(std::string_view in) {
  Outcome out;
  while (!in.empty()) {
    beast::http::request_parser<beast::http::string_body> parser;
    const Limits limits;  // the same limits as ours
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    parser.eager(true);
    while (!parser.is_done()) {
      if (in.empty()) {  // Beast waits for the rest of a body without saying need_more
        out.verdict = Verdict::kIncomplete;
        return out;
      }
      beast::error_code ec;
      const size_t n = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
      in.remove_prefix(n);
      if (ec == beast::http::error::need_more) {
        if (n == 0 || in.empty()) {
          out.verdict = Verdict::kIncomplete;
          return out;
        }
        continue;
      }
      if (ec) {
        out.verdict = Verdict::kReject;
        return out;
      }
    }
    const auto& r = parser.get();
    out.requests.push_back(std::string(r.method_string()) + " " + std::string(r.target()) + " | " +
                           r.body());
  }
  out.verdict = Verdict::kAccept;
  return out;
}

struct Case {
  std::string name;
  std::string bytes;
};

const std::string kChunkedHead =
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

std::vector<Case> TrickyCases() {
  return {
      {"lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"asterisk target", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"absolute form", "GET http://h/a?b HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"two spaces in request line", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n"},
      {"HTTP/0.9 line", "GET /\r\n\r\n"},
      {"tab in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n"},
      {"obs-text in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n"},
      {"NUL in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"s},
      {"CR in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"},
      {"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n"},
      {"empty header name", "GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"},
      {"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"Content-Length leading zeros",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc"},
      {"Content-Length plus sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc"},
      {"Content-Length huge",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"},
      {"Content-Length over body limit",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n"},
      {"two equal Content-Lengths",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na"},
      {"incomplete body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"},
      {"incomplete head", "GET / HTTP/1.1\r\nHost: h\r\n"},
      {"head over the limit",
       "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"},
      {"chunked upper-case coding and hex",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
       "A\r\n0123456789\r\n0\r\n\r\n"},
      {"chunk extension quoted", kChunkedHead + "3;a=\"b c\"\r\nabc\r\n0\r\n\r\n"},
      {"chunk extension token", kChunkedHead + "3;a=b;c\r\nabc\r\n0;x=y\r\n\r\n"},
      {"chunk size leading zeros", kChunkedHead + "0003\r\nabc\r\n0000\r\n\r\n"},
      {"chunk size 0x", kChunkedHead + "0x3\r\nabc\r\n0\r\n\r\n"},
      {"chunk size negative", kChunkedHead + "-3\r\nabc\r\n0\r\n\r\n"},
      {"chunk size empty", kChunkedHead + "\r\nabc\r\n0\r\n\r\n"},
      {"chunk size overflow", kChunkedHead + "10000000000000003\r\nabc\r\n0\r\n\r\n"},
      {"chunk size trailing space", kChunkedHead + "3 \r\nabc\r\n0\r\n\r\n"},
      {"chunk extension after white space", kChunkedHead + "3 ;a=b\r\nabc\r\n0\r\n\r\n"},
      {"chunk size over body limit", kChunkedHead + "100001\r\n"},
      {"chunk data too long", kChunkedHead + "3\r\nabcd\r\n0\r\n\r\n"},
      {"chunk data bare LF", kChunkedHead + "3\r\nabc\n0\r\n\r\n"},
      {"chunk size bare LF", kChunkedHead + "3\nabc\r\n0\r\n\r\n"},
      {"chunk extension control char", kChunkedHead + "3;a\x01\r\nabc\r\n0\r\n\r\n"},
      {"chunked with trailers", kChunkedHead + "3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n"},
      {"chunked trailer without colon", kChunkedHead + "3\r\nabc\r\n0\r\nbad\r\n\r\n"},
      {"chunked incomplete", kChunkedHead + "3\r\nab"},
      {"chunked missing last chunk", kChunkedHead + "3\r\nabc\r\n"},
      {"chunked then pipelined",
       kChunkedHead + "3\r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"chunked then Content-Length",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 3\r\n\r\n0\r\n\r\n"},
      {"Content-Length then chunked",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"two chunked fields",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"chunked, gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"},
      {"chunked, chunked",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"},
      {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
      {"identity coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"},
      {"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"too many header fields",
       [] {
         std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
         for (int i = 0; i < 120; ++i) s += "X" + std::to_string(i) + ": 1\r\n";
         return s + "\r\n";
       }()},
  };
}

// Where we differ from Beast on purpose. ours/beast: the final verdicts expected.
struct Known {
  Verdict ours, beast;
  const char* why;
};
const std::map<std::string, Known>& KnownDisagreements() {
  static const auto* known = new std::map<std::string, Known>{
      {"corpus/blank_lines.http",
       {Verdict::kAccept, Verdict::kReject,
        "RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request line "
        "(clients send a stray CRLF after a POST body); Beast does not"}},
      {"corpus/obs_fold.http",
       {Verdict::kReject, Verdict::kAccept,
        "obs-fold: RFC 9112 5.2 lets a server reject it with 400; folded values are a known "
        "smuggling vector between parsers that unfold differently, so we refuse"}},
      {"corpus/missing_host.http",
       {Verdict::kReject, Verdict::kAccept,
        "RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host"}},
      {"duplicate Host",
       {Verdict::kReject, Verdict::kAccept, "RFC 9112 3.2: more than one Host field MUST get 400"}},
      {"corpus/length_list.http",
       {Verdict::kReject, Verdict::kAccept,
        "a Content-Length list (\"1, 1\") is a malformed value to us: RFC 9110 8.6 allows "
        "either, and one number is all a client ever needs to send"}},
      {"two equal Content-Lengths",
       {Verdict::kReject, Verdict::kAccept,
        "duplicate Content-Length fields are refused even when equal (docs/dependencies.md: "
        "Pistache accepted conflicting ones); RFC 9110 8.6 allows refusing"}},
      {"corpus/expect_magic.http",
       {Verdict::kReject, Verdict::kAccept,
        "an Expect other than 100-continue gets 417 (RFC 9110 10.1.1); Beast leaves "
        "expectations to the application"}},
      {"corpus/gzip_chunked.http",
       {Verdict::kReject, Verdict::kAccept,
        "\"gzip, chunked\": Beast removes the chunked framing and hands over the gzip bytes; "
        "we decode no other coding, so 501 (RFC 9112 6.1)"}},
      {"identity coding",
       {Verdict::kReject, Verdict::kAccept,
        "a Transfer-Encoding without chunked last: Beast reads no body; RFC 9112 6.3 says "
        "the length cannot be determined, so we refuse (501) instead of guessing"}},
      {"chunked, gzip",
       {Verdict::kReject, Verdict::kAccept,
        "chunked not the final coding: same as \"identity coding\" (Beast reads no body)"}},
      {"chunked, chunked",
       {Verdict::kReject, Verdict::kAccept,
        "chunked applied twice: Beast counts only a final chunked that is the sole one and "
        "reads no body; RFC 9112 7 forbids chunked twice, and we refuse any list (501)"}},
      {"chunked in HTTP/1.0",
       {Verdict::kReject, Verdict::kAccept,
        "RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing; "
        "HTTP/1.0 has no chunked coding"}},
      {"too many header fields",
       {Verdict::kReject, Verdict::kAccept,
        "we cap header fields at Limits::max_headers (100, 431); Beast caps only bytes"}},
  };
  return *known;
}

std::vector<Case> CorpusCases() {
  std::vector<Case> cases;
  const std::filesystem::path dir =
      std::filesystem::path(PEERSTACK_SOURCE_DIR) / "tests/fuzz/corpus/http_parser";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << f.rdbuf();
    cases.push_back({"corpus/" + entry.path().filename().string(), bytes.str()});
  }
  return cases;
}

void Compare(const Case& c, std::set<std::string>* seen_known) {
  const Outcome ours = Ours(c.bytes);
  const Outcome beast = Beast(c.bytes);
  const auto& known = KnownDisagreements();
  const auto it = known.find(c.name);
  if (it == known.end()) {
    EXPECT_EQ(ours, beast) << c.name << "\n  ours:  " << ours.ToString()
                           << "\n  beast: " << beast.ToString();
    return;
  }
  seen_known->insert(c.name);
  EXPECT_NE(ours, beast) << c.name << ": listed as a disagreement, but both say " << ours.ToString()
                         << "; remove it from KnownDisagreements";
  EXPECT_EQ(ours.verdict, it->second.ours) << c.name << ": ours " << ours.ToString();
  EXPECT_EQ(beast.verdict, it->second.beast) << c.name << ": beast " << beast.ToString();
}

TEST(HttpDifferential, AgreesWithBeastOnTheSeedCorpus) {
  const auto cases = CorpusCases();
  ASSERT_GE(cases.size(), 10u) << "seed corpus missing under " << PEERSTACK_SOURCE_DIR;
  std::set<std::string> seen;
  for (const Case& c : cases) Compare(c, &seen);
}

TEST(HttpDifferential, AgreesWithBeastOnTrickyCases) {
  std::set<std::string> seen;
  for (const Case& c : TrickyCases()) Compare(c, &seen);
}

TEST(HttpDifferential, EveryKnownDisagreementIsExercised) {
  std::set<std::string> names;
  for (const Case& c : CorpusCases()) names.insert(c.name);
  for (const Case& c : TrickyCases()) names.insert(c.name);
  for (const auto& [name, known] : KnownDisagreements()) {
    EXPECT_TRUE(names.count(name)) << "no input named \"" << name << "\" (" << known.why << ")";
  }
}

}  // namespace
}  // namespace peerstack::http
