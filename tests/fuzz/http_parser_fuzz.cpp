// http::RequestParser on arbitrary bytes: it must never crash, never claim more bytes than it
// was given, never loop without progress, keep what it leaves buffered bounded, and frame the
// stream the same way however it is split into reads (whole, in two at a point the first
// byte picks, one byte at a time).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/parser.h"

namespace {

using peerstack::http::Limits;
using peerstack::http::Request;
using peerstack::http::RequestParser;
using State = RequestParser::State;

// Small limits, so that inputs of a few KiB reach the 413 and 431 paths.
Limits FuzzLimits() {
  Limits limits;
  limits.max_header_bytes = 1024;
  limits.max_headers = 16;
  limits.max_body_bytes = 2048;
  return limits;
}

// What came out of one feeding: every request (as one comparable string) and how it ended.
struct Outcome {
  std::vector<std::string> requests;
  State last = State::kNeedMore;
  int status = 0;
  bool operator==(const Outcome&) const = default;
};

std::string Fingerprint(const Request& r) {
  std::string out = r.method + ' ' + r.target + ' ' + r.path + '?' + r.query + ' ' +
                    std::to_string(r.version_minor) + '\n';
  for (const auto& h : r.headers) out += h.name + ':' + h.value + '\n';
  return out + '\n' + r.body;
}

// Feeds data in pieces ending at each of cuts (ascending) and at the end, the way the server
// does: it drops what Parse consumed and appends what arrives.
Outcome Feed(std::string_view data, const std::vector<size_t>& cuts) {
  const Limits limits = FuzzLimits();
  RequestParser parser(limits);
  Outcome out;
  std::string buf;
  size_t from = 0;
  auto feed_to = [&](size_t to) {
    buf.append(data.substr(from, to - from));
    from = to;
    while (true) {
      size_t consumed = 0;
      const State state = parser.Parse(buf, &consumed);
      FUZZ_CHECK(consumed <= buf.size());
      buf.erase(0, consumed);
      out.last = state;
      if (state == State::kError) {
        out.status = parser.error_status();
        FUZZ_CHECK(out.status >= 400 && out.status < 600);
        FUZZ_CHECK(!parser.error_message().empty());
        return false;
      }
      if (state == State::kNeedMore) {
        // Unfinished input held for the parser: a head, or a head and its declared body, or
        // one line of a chunked body; never more.
        FUZZ_CHECK(buf.size() <= limits.max_header_bytes + limits.max_body_bytes);
        return true;
      }
      FUZZ_CHECK(consumed > 0);  // a request is never made of nothing
      const Request& r = parser.request();
      FUZZ_CHECK(!r.method.empty() && !r.target.empty());
      FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
      FUZZ_CHECK(r.headers.size() <= limits.max_headers);
      FUZZ_CHECK(!parser.head_complete());
      out.requests.push_back(Fingerprint(r));
    }
  };
  for (const size_t cut : cuts) {
    if (!feed_to(cut)) return out;
  }
  feed_to(data.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Outcome whole = Feed(in, {});
  if (size == 0) return 0;
  // The input itself is the request stream (so seed files are plain HTTP); its first byte
  // also picks where to cut it in two.
  const size_t cut = size * data[0] / 255;
  FUZZ_CHECK(Feed(in, {cut}) == whole);
  std::vector<size_t> every;
  for (size_t i = 1; i < size; ++i) every.push_back(i);
  FUZZ_CHECK(Feed(in, every) == whole);
  return 0;
}
