// One HTTP/1.1 request and its answer on Asio, over TCP or TLS: the machinery under both the
// blocking http::Fetch (client.h) and the peer transport (transport/transport.h), so that
// deadlines, size caps, keep-alive and certificate checks are written once.
//
//   - A Connection is one socket to one origin, plain or TLS (verified against the system's
//     CA store plus an optional PEM file, with the host name checked and sent as SNI,
//     TLS 1.2 at least). It is either idle (kept alive, nothing pending) or owned by exactly
//     one exchange.
//   - An Exchange connects if needed, writes the request and reads the answer, each step
//     under a deadline: one for everything (deadline), or a connect timeout and then one
//     for write + read. A response over max_response_bytes fails with "too_large".
//   - On a reused connection that the peer closed meanwhile, the exchange ends "stale": the
//     caller may run it again on a new connection.
// Errors: "timeout", "connect_failed", "tls_failed" (handshake or certificate), "io_error",
// "too_large". Not thread-safe: one exchange runs on one io_context thread at a time.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "http/client.h"

namespace peerstack::http {

// The client TLS settings: system CAs (Debian's ca-certificates), plus ca_file if not empty.
// Errors ("bad_ca_file") when ca_file cannot be read.
Result<std::unique_ptr<boost::asio::ssl::context>> MakeClientTlsContext(const std::string& ca_file);

struct Connection;
using ConnectionPtr = std::shared_ptr<Connection>;
// A new, unconnected connection; tls is null for http:// (not owned, outlives it).
ConnectionPtr NewConnection(boost::asio::io_context& ioc, boost::asio::ssl::context* tls);
void CloseConnection(Connection& c);

struct Exchange {
  Url url;  // where (host, port, tls); the request target is url.target
  std::string method = "GET";
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = true;                                         // false: "Connection: close"
  std::optional<std::chrono::steady_clock::time_point> deadline;  // for everything, or:
  std::chrono::milliseconds connect_timeout{1500};
  std::chrono::milliseconds request_timeout{3000};  // write + read
  size_t max_response_bytes = 64 * 1024;
  std::string server_name;  // TLS name to verify and send (SNI); empty: url.host
  bool reused = false;      // set by the caller: the connection served an exchange before
  struct Outcome {
    Result<ClientResponse> response = Status::Error("io_error", "not run");
    bool keep_alive = false;  // the answer allows the connection to be reused
    bool stale = false;       // a reused connection the peer had closed: run it again
  };
  // Called once, on the io_context's thread.
  std::function<void(Outcome)> done;
};
using ExchangePtr = std::shared_ptr<Exchange>;

// Runs x on c (connecting first if c is new).
void Run(const ConnectionPtr& c, const ExchangePtr& x);

}  // namespace peerstack::http
