#include "http/message.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <optional>

#include "json/json.h"

namespace peerstack::http {
namespace {

const std::string* FindHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

// The Date header changes once a second; format it once per second per thread.
const std::string& DateHeaderValue() {
  thread_local std::time_t cached_second = 0;
  thread_local std::string cached;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    const size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_second = now;
  }
  return cached;
}

void AppendNumber(std::string& out, size_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

}  // namespace

const std::string* Request::header(std::string_view lower_name) const {
  return FindHeader(headers, lower_name);
}

std::shared_ptr<Responder> Request::Defer() const { return deferrer ? deferrer->Defer() : nullptr; }

const std::string* Response::header(std::string_view lower_name) const {
  return FindHeader(headers, lower_name);
}

Response JsonError(int status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":";
  json::AppendQuoted(body, code);
  body += ",\"message\":";
  json::AppendQuoted(body, message);
  body += "}}";
  return JsonResponse(status, std::move(body));
}

Response TooMany(std::string_view message) {
  Response r = JsonError(429, "busy", message);
  r.set("retry-after", "1");
  return r;
}

namespace {

// The one range of a body of size bytes that a Range header value asks for: {first, last}
// (last inclusive), {size, size} when unsatisfiable, nullopt when the header is not one
// range in bytes we can read.
std::optional<std::pair<uint64_t, uint64_t>> OneRange(std::string_view v, uint64_t size) {
  constexpr std::string_view kUnit = "bytes=";
  if (v.substr(0, kUnit.size()) != kUnit) return std::nullopt;
  v.remove_prefix(kUnit.size());
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  const size_t dash = v.find('-');
  if (dash == std::string_view::npos || v.find(',') != std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view d, uint64_t* out) {
    if (d.empty() || d.size() > 19) return false;
    auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), *out);
    return ec == std::errc() && p == d.data() + d.size();
  };
  uint64_t first = 0, last = 0;
  const std::string_view a = v.substr(0, dash), b = v.substr(dash + 1);
  if (a.empty()) {  // the last b bytes
    if (!number(b, &last) || last == 0) return std::nullopt;
    if (size == 0) return std::pair<uint64_t, uint64_t>{size, size};
    return std::pair<uint64_t, uint64_t>{size - std::min(last, size), size - 1};
  }
  if (!number(a, &first)) return std::nullopt;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!number(b, &last) || last < first) {
    return std::nullopt;
  }
  if (first >= size) return std::pair<uint64_t, uint64_t>{size, size};
  return std::pair<uint64_t, uint64_t>{first, std::min(last, size - 1)};
}

}  // namespace

Response RangedBody(const Request& request, std::string_view body, const std::string& etag,
                    const std::string& content_type) {
  Response r;
  r.set("content-type", content_type);
  r.set("etag", etag);
  r.set("accept-ranges", "bytes");
  const std::string* range = request.header("range");
  const std::string* if_range = request.header("if-range");
  auto want =
      range && (!if_range || *if_range == etag) ? OneRange(*range, body.size()) : std::nullopt;
  if (!want) {
    r.body = std::string(body);
    return r;
  }
  const uint64_t size = body.size();
  if (want->first >= size) {
    r.status = 416;
    r.set("content-range", "bytes */" + std::to_string(size));
    return r;
  }
  r.status = 206;
  r.set("content-range", "bytes " + std::to_string(want->first) + "-" +
                             std::to_string(want->second) + "/" + std::to_string(size));
  r.body = std::string(body.substr(want->first, want->second - want->first + 1));
  return r;
}

Response JsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.set("content-type", "application/json");
  return r;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void AppendResponse(std::string& out, const Response& response, bool head_only, bool keep_alive,
                    bool http10_keep_alive) {
  out += "HTTP/1.1 ";
  AppendNumber(out, static_cast<size_t>(response.status));
  out.push_back(' ');
  out += ReasonPhrase(response.status);
  out += "\r\nServer: peerstack\r\nDate: ";
  out += DateHeaderValue();
  out += "\r\n";
  for (const Header& h : response.headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  // 1xx, 204 and 304 carry no body and no Content-Length of their own.
  const bool bodiless = response.status < 200 || response.status == 204 || response.status == 304;
  if (!bodiless) {
    out += "Content-Length: ";
    AppendNumber(out, response.body.size());
    out += "\r\n";
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (http10_keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head_only && !bodiless) out += response.body;
}

}  // namespace peerstack::http
