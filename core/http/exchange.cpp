#include "http/exchange.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <utility>

namespace peerstack::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

Result<std::unique_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ::SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ctx->set_default_verify_paths(ec);  // none is no error: then only ca_file is trusted
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec)
      return Status::Error("bad_ca_file",
                           "cannot read CA certificates from " + ca_file + ": " + ec.message());
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

struct Connection {
  Connection(asio::io_context& ioc, ssl::context* tls) : plain(ioc), resolver(ioc) {
    if (tls) secure.emplace(ioc, *tls);
  }
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : plain; }
  // Calls f with the stream to use: the TLS stream or the plain one.
  template <typename F>
  void With(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(plain);
    }
  }

  beast::tcp_stream plain;  // unused when secure
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  tcp::resolver resolver;
  beast::flat_buffer buffer;
  bool connected = false;
};

ConnectionPtr NewConnection(asio::io_context& ioc, ssl::context* tls) {
  return std::make_shared<Connection>(ioc, tls);
}

void CloseConnection(Connection& c) {
  beast::error_code ignored;
  c.tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  c.tcp().close();
}

namespace {

Status Failure(const char* stage, const beast::error_code& ec, const Exchange& x) {
  if (ec == beast::error::timeout)
    return Status::Error("timeout", std::string(stage) + " timed out");
  if (ec == bhttp::error::body_limit) {
    return Status::Error("too_large",
                         "response larger than " + std::to_string(x.max_response_bytes));
  }
  const std::string s(stage);
  const std::string code = s == "connect" ? "connect_failed"
                           : s == "tls"   ? "tls_failed"
                                          : "io_error";
  return Status::Error(code, s + ": " + ec.message());
}

bool PeerClosed(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

void Finish(const ExchangePtr& x, Exchange::Outcome outcome) {
  auto done = std::exchange(x->done, nullptr);  // called once; and x may be run again by it
  if (done) done(std::move(outcome));
}

void Expire(Connection& c, const Exchange& x, std::chrono::milliseconds timeout) {
  if (x.deadline) {
    c.tcp().expires_at(*x.deadline);
  } else {
    c.tcp().expires_after(timeout);
  }
}

// The answer, in two steps: Beast 1.74's async_read of a whole message drops the
// body_limit error its header step reports for a Content-Length over the limit (measured:
// the body is read anyway), so the header is read on its own and its error kept.
void ReadBody(const ConnectionPtr& c, const ExchangePtr& x,
              const std::shared_ptr<bhttp::response_parser<bhttp::string_body>>& parser) {
  // Beast sizes each read by the buffer's free space (512 bytes at least): without room, a
  // 1 MiB body takes two thousand reads (measured by bench/rollout).
  if (parser->content_length().value_or(0) > 4096) c->buffer.reserve(64 * 1024);
  c->With([&](auto& stream) {
    bhttp::async_read(stream, c->buffer, *parser, [c, x, parser](beast::error_code ec, size_t) {
      if (ec) return Finish(x, {Failure("receive", ec, *x), false, false});
      c->tcp().expires_never();
      auto& res = parser->get();
      if (res.body().size() > x->max_response_bytes) {
        return Finish(x, {Status::Error("too_large", "response larger than " +
                                                         std::to_string(x->max_response_bytes)),
                          false, false});
      }
      ClientResponse out;
      out.status = static_cast<int>(res.result_int());
      for (const auto& field : res) {
        std::string name(field.name_string());
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.headers.push_back({std::move(name), std::string(field.value())});
      }
      // The parser's view (a body that ends at EOF closes), and nothing read beyond the
      // answer: leftover bytes would be taken for the next answer.
      const bool keep_alive = parser->keep_alive() && c->buffer.size() == 0;
      out.body = std::move(res.body());
      Finish(x, {std::move(out), keep_alive, false});
    });
  });
}

void Read(const ConnectionPtr& c, const ExchangePtr& x) {
  auto parser = std::make_shared<bhttp::response_parser<bhttp::string_body>>();
  parser->body_limit(x->max_response_bytes);
  parser->header_limit(64 * 1024);
  c->With([&](auto& stream) {
    bhttp::async_read_header(
        stream, c->buffer, *parser, [c, x, parser](beast::error_code ec, size_t n) {
          if (ec)
            return Finish(
                x, {Failure("receive", ec, *x), false, x->reused && n == 0 && PeerClosed(ec)});
          ReadBody(c, x, parser);
        });
  });
}

void Write(const ConnectionPtr& c, const ExchangePtr& x) {
  auto req = std::make_shared<bhttp::request<bhttp::string_body>>();
  req->method_string(x->method);
  req->target(x->url.target);
  req->version(11);
  const std::string host =
      x->url.host.find(':') != std::string::npos ? "[" + x->url.host + "]" : x->url.host;
  req->set(bhttp::field::host, host + ":" + std::to_string(x->url.port));
  req->set(bhttp::field::user_agent, "peerstack");
  if (!x->keep_alive) req->set(bhttp::field::connection, "close");
  for (const Header& h : x->headers) req->set(h.name, h.value);
  if (!x->body.empty() || x->method == "POST" || x->method == "PUT") {
    req->body() = x->body;
    req->prepare_payload();
  }
  Expire(*c, *x, x->request_timeout);
  c->With([&](auto& stream) {
    bhttp::async_write(stream, *req, [c, x, req](beast::error_code ec, size_t) {
      if (ec) return Finish(x, {Failure("send", ec, *x), false, x->reused && PeerClosed(ec)});
      Read(c, x);
    });
  });
}

void Handshake(const ConnectionPtr& c, const ExchangePtr& x) {
  const std::string name = x->server_name.empty() ? x->url.host : x->server_name;
  // (SSL_set_tlsext_host_name, without the macro's C cast.)
  if (::SSL_ctrl(c->secure->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                 TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str())) != 1) {
    return Finish(
        x, {Status::Error("tls_failed", "cannot set the server name " + name), false, false});
  }
  c->secure->set_verify_callback(ssl::host_name_verification(name));
  c->secure->async_handshake(ssl::stream_base::client, [c, x, name](beast::error_code ec) {
    if (ec) {
      Status s = Failure("tls", ec, *x);
      if (ec != beast::error::timeout) {
        s = Status::Error("tls_failed",
                          "TLS with " + name + " failed (" + ec.message() +
                              "): is its certificate valid for this name, and trusted?");
      }
      return Finish(x, {std::move(s), false, false});
    }
    Write(c, x);
  });
}

}  // namespace

void Run(const ConnectionPtr& c, const ExchangePtr& x) {
  if (c->connected) return Write(c, x);
  auto connect = [c, x](const tcp::resolver::results_type& results) {
    Expire(*c, *x, x->connect_timeout);
    c->tcp().async_connect(results, [c, x](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return Finish(x, {Failure("connect", ec, *x), false, false});
      c->connected = true;
      if (c->secure) return Handshake(c, x);
      Write(c, x);
    });
  };
  // An address needs no lookup: connect at once (Asio runs lookups one at a time on one
  // thread per io_context, so a slow name must not hold up the peers given by address).
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(x->url.host, ec);
  if (!ec) {
    return connect(tcp::resolver::results_type::create(tcp::endpoint(address, x->url.port),
                                                       x->url.host, std::to_string(x->url.port)));
  }
  // A name: the lookup gets the connect deadline too (a resolver that never answers must not
  // hold the exchange); a late answer finds the exchange finished and is dropped.
  auto timer = std::make_shared<asio::steady_timer>(c->tcp().get_executor());
  if (x->deadline) {
    timer->expires_at(*x->deadline);
  } else {
    timer->expires_after(x->connect_timeout);
  }
  timer->async_wait([x](const beast::error_code& e) {
    if (!e) Finish(x, {Status::Error("timeout", "name lookup timed out"), false, false});
  });
  c->resolver.async_resolve(
      x->url.host, std::to_string(x->url.port),
      [x, timer, connect](beast::error_code e, tcp::resolver::results_type results) {
        timer->cancel();
        if (!x->done) return;  // timed out meanwhile
        if (e) return Finish(x, {Failure("resolve", e, *x), false, false});
        connect(results);
      });
}

}  // namespace peerstack::http
