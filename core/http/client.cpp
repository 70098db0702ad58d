#include "http/client.h"

#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>

namespace peerstack::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

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
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::Error("bad_url", "only http:// URLs are supported: " + std::string(url));
  }
  url.remove_prefix(kScheme.size());
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  Url out;
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

  asio::io_context ioc;
  asio::ip::tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  bhttp::request<bhttp::string_body> req;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(request.max_response_bytes);
  parser.header_limit(64 * 1024);

  req.method_string(request.method);
  req.target(url->target);
  req.version(11);
  req.set(bhttp::field::host, url->host + ":" + std::to_string(url->port));
  req.set(bhttp::field::user_agent, "peerstack");
  req.set(bhttp::field::connection, "close");
  for (const Header& h : request.headers) req.set(h.name, h.value);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    req.body() = request.body;
    req.prepare_payload();
  }

  Status failure = Status::Ok();
  auto fail = [&](const char* stage, beast::error_code ec) {
    if (ec == beast::error::timeout) {
      failure = Status::Error("timeout", std::string(stage) + " timed out after " +
                                             std::to_string(request.timeout.count()) + " ms");
    } else if (ec == bhttp::error::body_limit) {
      failure = Status::Error("too_large", "response larger than " +
                                               std::to_string(request.max_response_bytes));
    } else {
      failure = Status::Error(std::string(stage) == "connect" ? "connect_failed" : "io_error",
                              std::string(stage) + ": " + ec.message());
    }
  };

  // One deadline for the whole exchange, set once on the stream.
  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  resolver.async_resolve(
      url->host, std::to_string(url->port),
      [&](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
        if (ec) return fail("resolve", ec);
        stream.expires_at(deadline);
        stream.async_connect(results, [&](beast::error_code ec2, auto) {
          if (ec2) return fail("connect", ec2);
          bhttp::async_write(stream, req, [&](beast::error_code ec3, size_t) {
            if (ec3) return fail("send", ec3);
            bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec4, size_t) {
              if (ec4) return fail("receive", ec4);
            });
          });
        });
      });
  ioc.run_until(deadline + std::chrono::milliseconds(100));
  if (!ioc.stopped()) {
    ioc.stop();
    return Status::Error("timeout", "request timed out");
  }
  if (!failure.ok()) return failure;
  if (!parser.is_done()) return Status::Error("io_error", "incomplete response");

  ClientResponse out;
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.push_back({std::move(name), std::string(field.value())});
  }
  out.body = std::move(res.body());
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  return out;
}

}  // namespace peerstack::http
