// URLs as Peerstack uses them, in one place: parsing http[s]:// URLs, percent-encoding and
// decoding, and reading query parameters. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace peerstack::http {

struct Url {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
  bool tls = false;  // https://
};
// Parses http[s]://host[:port][/path] (ports 80 and 443 by default); "bad_url" otherwise,
// also for any control character or space (none may reach a request line).
Result<Url> ParseUrl(std::string_view url);

// A loopback host or address: localhost, 127.0.0.0/8, ::1 (bracketed or not), or an IPv4
// loopback mapped into IPv6.
bool IsLoopbackHost(std::string_view host);

// Percent-encodes everything but unreserved characters (RFC 3986), for query values.
std::string PercentEncode(std::string_view in);
// Percent-decodes (a path or a query value); false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);
// "a=1&b=2" -> the value of `name`, percent-decoded; false when absent or malformed.
bool QueryParam(const std::string& query, std::string_view name, std::string* out);

}  // namespace peerstack::http
