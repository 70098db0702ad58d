#include "http/parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace peerstack::http {
namespace {

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

// Visible ASCII and obs-text; no controls, no spaces (request-target).
bool IsTargetChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

// Field values: visible characters, spaces, tabs, obs-text; no other controls.
bool IsFieldValueChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t SaturatingAdd(size_t a, size_t b) {
  return a > std::numeric_limits<size_t>::max() - b ? std::numeric_limits<size_t>::max() : a + b;
}

// Checks one header or trailer field line (without its CRLF); nullptr when it is well formed,
// else what is wrong with it.
const char* CheckField(std::string_view field, std::string_view* name, std::string_view* value) {
  if (field.front() == ' ' || field.front() == '\t') return "obsolete line folding";
  const size_t colon = field.find(':');
  if (colon == std::string_view::npos) return "header line without a colon";
  *name = field.substr(0, colon);
  if (!IsToken(*name)) return "malformed header name";
  *value = TrimOws(field.substr(colon + 1));
  if (!std::all_of(value->begin(), value->end(), IsFieldValueChar)) {
    return "control character in header value";
  }
  return nullptr;
}

}  // namespace

RequestParser::State RequestParser::Fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return State::kError;
}

RequestParser::State RequestParser::Parse(std::string_view buf, size_t* consumed) {
  *consumed = 0;
  if (error_status_ != 0) return State::kError;
  if (phase_ == Phase::kHead) {
    // Leading empty lines before a request line are tolerated (RFC 9112 2.2), a few of them:
    // counted across calls, so a client cannot keep an idle connection alive with CRLFs.
    size_t skip = 0;
    while (skip + 1 < buf.size() && buf[skip] == '\r' && buf[skip + 1] == '\n') skip += 2;
    if (skip > 0) {
      blank_bytes_ += skip;
      if (blank_bytes_ > 8) return Fail(400, "too many empty lines before the request");
      buf.remove_prefix(skip);
      *consumed = skip;
      scanned_ = 0;
      if (buf.empty()) return State::kNeedMore;
    }
    // Only the first max_header_bytes can hold the head's end; searching no further makes the
    // verdict (400 for a bare LF, 431) the same however the bytes were split into reads.
    const size_t limit = std::min(buf.size(), limits_.max_header_bytes);
    size_t end = std::string_view::npos;
    for (size_t i = scanned_; i < limit; ++i) {
      if (buf[i] != '\n') continue;
      if (i == 0 || buf[i - 1] != '\r') return Fail(400, "bare LF in request head");
      if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
        end = i + 1;
        break;
      }
    }
    if (end == std::string_view::npos) {
      scanned_ = limit;
      if (buf.size() >= limits_.max_header_bytes) {
        return Fail(
            431, "request head larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
      }
      return State::kNeedMore;
    }
    if (auto st = ParseHead(buf.substr(0, end)); st == State::kError) return st;
    scanned_ = 0;
    if (chunked_) {
      // The head is parsed into request_: hand its bytes back now, then decode the body.
      phase_ = Phase::kChunkSize;
      buf.remove_prefix(end);
      *consumed += end;
    } else {
      phase_ = Phase::kFixedBody;
      head_len_ = end;
    }
  }
  if (phase_ == Phase::kFixedBody) {
    if (buf.size() < head_len_ + body_len_) return State::kNeedMore;
    request_.body.assign(buf.substr(head_len_, body_len_));
    *consumed += head_len_ + body_len_;
    Reset();
    return State::kRequest;
  }
  size_t taken = 0;
  const State st = ParseChunked(buf, &taken);
  *consumed += taken;
  return st;
}

void RequestParser::Reset() {
  phase_ = Phase::kHead;
  scanned_ = 0;
  blank_bytes_ = 0;
  head_len_ = 0;
  body_len_ = 0;
  chunked_ = false;
  chunk_left_ = 0;
  chunked_wire_bytes_ = 0;
  trailer_bytes_ = 0;
  trailer_fields_ = 0;
  expect_continue_ = false;
}

RequestParser::Line RequestParser::NextLine(std::string_view buf, size_t max_len,
                                            std::string_view* line) {
  // The line may not arrive whole: scanned_ remembers how far an earlier call searched, so
  // a line trickled in byte by byte is not searched again from its start each time.
  const size_t limit = std::min(buf.size(), max_len + 2);
  for (size_t i = scanned_; i < limit; ++i) {
    if (buf[i] != '\n') continue;
    if (i == 0 || buf[i - 1] != '\r') return Line::kBareLf;
    *line = buf.substr(0, i - 1);
    scanned_ = 0;
    return Line::kComplete;
  }
  scanned_ = limit;
  return buf.size() >= max_len + 2 ? Line::kTooLong : Line::kNeedMore;
}

// Decodes as much of a chunked body as buf holds. Everything decoded is consumed (the data is
// in request_.body), so what the caller buffers is at most one unfinished line or CRLF.
RequestParser::State RequestParser::ParseChunked(std::string_view buf, size_t* consumed) {
  // Generous for any real client (a size and maybe a short extension); bounds how much of an
  // unfinished line the caller holds and this parser rescans.
  constexpr size_t kMaxChunkLine = 1024;
  const size_t max_wire = SaturatingAdd(
      SaturatingAdd(limits_.max_body_bytes, limits_.max_body_bytes), limits_.max_header_bytes);
  size_t pos = 0;
  // Takes n bytes of framing or data from buf; false when the wire budget is spent.
  auto take = [&](size_t n) {
    pos += n;
    chunked_wire_bytes_ += n;
    return chunked_wire_bytes_ <= max_wire;
  };
  auto too_big = [this] {
    return Fail(413,
                "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
  };
  while (true) {
    const std::string_view rest = buf.substr(pos);
    switch (phase_) {
      case Phase::kChunkSize: {
        std::string_view line;
        switch (NextLine(rest, kMaxChunkLine, &line)) {
          case Line::kNeedMore:
            *consumed = pos;
            return State::kNeedMore;
          case Line::kBareLf:
            return Fail(400, "bare LF in chunked body");
          case Line::kTooLong:
            return Fail(400, "chunk size line longer than 1024 bytes");
          case Line::kComplete:
            break;
        }
        uint64_t size = 0;
        size_t digits = 0;
        for (; digits < line.size(); ++digits) {
          const int d = HexValue(line[digits]);
          if (d < 0) break;
          if (size >> 60 != 0) return Fail(400, "chunk size does not fit in 64 bits");
          size = size << 4 | static_cast<uint64_t>(d);
        }
        if (digits == 0) return Fail(400, "malformed chunk size");
        // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): ignored, but it must be
        // one (no junk after the size) and hold no control characters.
        std::string_view ext = line.substr(digits);
        const size_t semi = ext.find_first_not_of(" \t");
        if (!ext.empty() && (semi == std::string_view::npos || ext[semi] != ';')) {
          return Fail(400, "malformed chunk size");
        }
        if (!std::all_of(ext.begin(), ext.end(), IsFieldValueChar)) {
          return Fail(400, "control character in chunk extension");
        }
        if (size > limits_.max_body_bytes - request_.body.size()) return too_big();
        if (!take(line.size() + 2)) return too_big();
        chunk_left_ = size;
        phase_ = size == 0 ? Phase::kTrailer : Phase::kChunkData;
        break;
      }
      case Phase::kChunkData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, rest.size()));
        request_.body.append(rest.substr(0, n));
        chunk_left_ -= n;
        if (!take(n)) return too_big();
        if (chunk_left_ > 0) {
          *consumed = pos;
          return State::kNeedMore;
        }
        phase_ = Phase::kChunkDataEnd;
        break;
      }
      case Phase::kChunkDataEnd: {
        if (!rest.empty() && rest[0] != '\r') return Fail(400, "chunk data not followed by CRLF");
        if (rest.size() < 2) {
          *consumed = pos;
          return State::kNeedMore;
        }
        if (rest[1] != '\n') return Fail(400, "chunk data not followed by CRLF");
        if (!take(2)) return too_big();
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailer: {
        // Trailer fields count against the header limits; we read none of them.
        auto too_long = [this] {
          return Fail(431, "trailer section larger than " +
                               std::to_string(limits_.max_header_bytes) + " bytes");
        };
        const size_t budget =
            limits_.max_header_bytes - std::min(limits_.max_header_bytes, trailer_bytes_);
        std::string_view line;
        switch (NextLine(rest, budget, &line)) {
          case Line::kNeedMore:
            *consumed = pos;
            return State::kNeedMore;
          case Line::kBareLf:
            return Fail(400, "bare LF in chunked body");
          case Line::kTooLong:
            return too_long();
          case Line::kComplete:
            break;
        }
        trailer_bytes_ += line.size() + 2;
        if (trailer_bytes_ > limits_.max_header_bytes) return too_long();
        if (!take(line.size() + 2)) return too_big();
        if (line.empty()) {
          *consumed = pos;
          Reset();
          return State::kRequest;
        }
        std::string_view name, value;
        if (const char* why = CheckField(line, &name, &value)) {
          return Fail(400, std::string(why) + " in trailer");
        }
        if (++trailer_fields_ > limits_.max_headers) {
          return Fail(431, "more than " + std::to_string(limits_.max_headers) + " trailer fields");
        }
        break;
      }
      case Phase::kHead:
      case Phase::kFixedBody:
        return Fail(500, "chunked decoding in the wrong phase");  // unreachable
    }
  }
}

RequestParser::State RequestParser::ParseHead(std::string_view head) {
  Request& req = request_;
  req = Request();
  // Request line: method SP target SP HTTP/1.x CRLF
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, "malformed method");
  if (target.empty() || !std::all_of(target.begin(), target.end(), IsTargetChar)) {
    return Fail(400, "malformed request target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Fail(400, "malformed HTTP version");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  }
  req.method.assign(method);
  req.target.assign(target);
  req.version_minor = version[7] - '0';

  std::string_view path = target;
  if (path.front() != '/' && path != "*") {
    // absolute-form (http://host/path): keep the path part.
    const size_t scheme = path.find("://");
    if (scheme == std::string_view::npos) return Fail(400, "malformed request target");
    const size_t slash = path.find('/', scheme + 3);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  const size_t q = path.find('?');
  req.path.assign(path.substr(0, q));
  if (q != std::string_view::npos) req.query.assign(path.substr(q + 1));
  if (const size_t hash = req.path.find('#'); hash != std::string::npos) req.path.resize(hash);

  // Header fields.
  size_t pos = line_end + 2;
  bool have_length = false;
  bool have_host = false;
  int transfer_encodings = 0;  // Transfer-Encoding fields: two make a list
  bool chunked = false;
  while (pos < head.size()) {
    const size_t eol = head.find("\r\n", pos);
    if (eol == pos) break;  // the blank line
    const std::string_view field = head.substr(pos, eol - pos);
    pos = eol + 2;
    std::string_view name, value;
    if (const char* why = CheckField(field, &name, &value)) return Fail(400, why);
    if (req.headers.size() >= limits_.max_headers) {
      return Fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields");
    }
    req.headers.push_back({Lower(name), std::string(value)});
    const std::string& lname = req.headers.back().name;
    if (lname == "content-length") {
      if (have_length) return Fail(400, "duplicate Content-Length");
      have_length = true;
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Fail(400, "invalid Content-Length");
      }
      size_t n = 0;
      for (char c : value) n = n * 10 + static_cast<size_t>(c - '0');
      body_len_ = n;
    } else if (lname == "transfer-encoding") {
      ++transfer_encodings;
      chunked = EqualsIgnoreCase(value, "chunked");
    } else if (lname == "host") {
      if (have_host) return Fail(400, "duplicate Host");
      have_host = true;
    } else if (lname == "expect") {
      if (!EqualsIgnoreCase(value, "100-continue")) return Fail(417, "unsupported Expect");
      expect_continue_ = true;
    }
  }
  if (req.version_minor == 1 && !have_host) return Fail(400, "missing Host header");
  if (transfer_encodings > 0) {
    // Two framings: whichever one a proxy in front of us picked, the other one smuggles a
    // request (RFC 9112 6.1 says to refuse and close).
    if (have_length) return Fail(400, "both Transfer-Encoding and Content-Length");
    // Chunked does not exist in HTTP/1.0: RFC 9112 6.1 says to treat the framing as faulty.
    if (req.version_minor == 0) return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    // Only the one coding we decode; a list ("gzip, chunked", or two fields) would leave us
    // a body we cannot read.
    if (transfer_encodings > 1 || !chunked) {
      return Fail(501, "only Transfer-Encoding: chunked is supported");
    }
    chunked_ = true;
  }
  if (body_len_ > limits_.max_body_bytes) {
    return Fail(413,
                "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
  }
  return State::kNeedMore;
}

}  // namespace peerstack::http
