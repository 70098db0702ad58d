#include "http/url.h"

#include <cctype>
#include <charconv>

#include "crypto/encoding.h"

namespace peerstack::http {

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host.substr(0, 4) == "127." || host == "::1" || host == "[::1]" ||
         host.substr(0, 11) == "::ffff:127.";
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<Url> ParseUrl(std::string_view url) {
  // No control characters or spaces anywhere: they would end up in a request line (CR LF
  // injection into whatever the URL points at).
  for (const char ch : url) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F)
      return Status::Error("bad_url", "control character or space in the URL");
  }
  Url out;
  if (url.substr(0, 7) == "http://") {
    url.remove_prefix(7);
  } else if (url.substr(0, 8) == "https://") {
    url.remove_prefix(8);
    out.tls = true;
    out.port = 443;
  } else {
    return Status::Error("bad_url",
                         "only http:// and https:// URLs are supported: " + std::string(url));
  }
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (authority.empty()) return Status::Error("bad_url", "missing host");
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::Error("bad_url", "bad IPv6 host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status::Error("bad_url", "bad port");
      port = authority.substr(close + 2);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  out.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), value);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return Status::Error("bad_url", "bad port: " + std::string(port));
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    auto hex = crypto::HexDecode(in.substr(i + 1, 2));
    if (!hex) return false;
    out->push_back(static_cast<char>((*hex)[0]));
    i += 2;
  }
  return true;
}

bool QueryParam(const std::string& query, std::string_view name, std::string* out) {
  size_t at = 0;
  while (at <= query.size()) {
    size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    const std::string_view part(query.data() + at, end - at);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return PercentDecode(part.substr(name.size() + 1), out);
    }
    at = end + 1;
  }
  return false;
}

}  // namespace peerstack::http
