#include "http/parser.h"

#include <algorithm>
#include <cstring>

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

}  // namespace

RequestParser::State RequestParser::Fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return State::kError;
}

RequestParser::State RequestParser::Parse(std::string_view buf, size_t* consumed) {
  *consumed = 0;
  if (error_status_ != 0) return State::kError;
  if (head_len_ == 0) {
    // Leading empty lines before a request line are tolerated (RFC 9112 2.2).
    size_t skip = 0;
    while (skip + 1 < buf.size() && buf[skip] == '\r' && buf[skip + 1] == '\n') skip += 2;
    if (skip > 0) {
      if (skip > 8) return Fail(400, "too many empty lines before the request");
      buf.remove_prefix(skip);
      *consumed = skip;
      scanned_ = 0;
      if (buf.empty()) return State::kNeedMore;
    }
    const size_t limit = std::min(buf.size(), limits_.max_header_bytes + 4);
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
      if (buf.size() > limits_.max_header_bytes) {
        return Fail(431, "request head larger than " + std::to_string(limits_.max_header_bytes) +
                             " bytes");
      }
      return State::kNeedMore;
    }
    if (end > limits_.max_header_bytes) {
      return Fail(431, "request head larger than " + std::to_string(limits_.max_header_bytes) +
                           " bytes");
    }
    if (auto st = ParseHead(buf.substr(0, end)); st == State::kError) return st;
    head_len_ = end;
  }
  if (buf.size() < head_len_ + body_len_) return State::kNeedMore;
  request_.body.assign(buf.substr(head_len_, body_len_));
  *consumed += head_len_ + body_len_;
  expect_continue_ = false;
  head_len_ = 0;
  scanned_ = 0;
  body_len_ = 0;
  return State::kRequest;
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
  while (pos < head.size()) {
    const size_t eol = head.find("\r\n", pos);
    if (eol == pos) break;  // the blank line
    const std::string_view field = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (field.front() == ' ' || field.front() == '\t') return Fail(400, "obsolete line folding");
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos) return Fail(400, "header line without a colon");
    const std::string_view name = field.substr(0, colon);
    if (!IsToken(name)) return Fail(400, "malformed header name");
    const std::string_view value = TrimOws(field.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), IsFieldValueChar)) {
      return Fail(400, "control character in header value");
    }
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
      return Fail(501, "Transfer-Encoding is not supported; send Content-Length");
    } else if (lname == "host") {
      if (have_host) return Fail(400, "duplicate Host");
      have_host = true;
    } else if (lname == "expect") {
      if (!EqualsIgnoreCase(value, "100-continue")) return Fail(417, "unsupported Expect");
      expect_continue_ = true;
    }
  }
  if (req.version_minor == 1 && !have_host) return Fail(400, "missing Host header");
  if (body_len_ > limits_.max_body_bytes) {
    return Fail(413, "request body larger than " + std::to_string(limits_.max_body_bytes) +
                         " bytes");
  }
  return State::kNeedMore;
}

}  // namespace peerstack::http
