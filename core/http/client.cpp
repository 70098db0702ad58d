#include "http/client.h"

#include <cctype>

#include <charconv>
#include <optional>

#include <boost/asio/io_context.hpp>

#include "http/exchange.h"

namespace peerstack::http {

namespace asio = boost::asio;

const std::string* ClientResponse::header(std::string_view lower_name) const {
  for (const Header& h : headers) {
    if (h.name == lower_name) return &h.value;
  }
  return nullptr;
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
  Url out;
  if (url.substr(0, 7) == "http://") {
    url.remove_prefix(7);
  } else if (url.substr(0, 8) == "https://") {
    url.remove_prefix(8);
    out.tls = true;
    out.port = 443;
  } else {
    return Status::Error("bad_url", "only http:// and https:// URLs are supported: " + std::string(url));
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

Result<ClientResponse> Fetch(const ClientRequest& request) {
  auto url = ParseUrl(request.url);
  if (!url) return url.status();
  std::unique_ptr<asio::ssl::context> tls;
  if (url->tls) {
    auto ctx = MakeClientTlsContext(request.ca_file);
    if (!ctx) return ctx.status();
    tls = std::move(ctx).value();
  }
  asio::io_context ioc;
  auto x = std::make_shared<Exchange>();
  x->url = *url;
  x->method = request.method;
  x->headers = request.headers;
  x->body = request.body;
  x->keep_alive = false;
  x->deadline = std::chrono::steady_clock::now() + request.timeout;
  x->max_response_bytes = request.max_response_bytes;
  x->server_name = request.server_name;
  std::optional<Result<ClientResponse>> result;
  x->done = [&result](Exchange::Outcome o) { result = std::move(o.response); };
  auto c = NewConnection(ioc, tls.get());
  Run(c, x);
  ioc.run_until(*x->deadline + std::chrono::milliseconds(100));
  CloseConnection(*c);
  if (!result) return Status::Error("timeout", "request timed out");
  return std::move(*result);
}

}  // namespace peerstack::http
