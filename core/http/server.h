// An HTTP/1.1 server behind our own interface, so the implementation under it can change.
//
// Today: Pistache's TCP layer (listener, epoll reactors, write queue) with our own request
// parser (http/parser.h), response writer and connection policy, because Pistache 0.0.5's
// HTTP layer closes keep-alive connections, desyncs after 413, trusts Content-Length and
// echoes exception text (docs/dependencies.md). What the server guarantees:
//   - HTTP/1.1 connections stay open by default; pipelined requests are answered in order.
//   - Limits (message.h Limits) are enforced with 400/413/431/501/505; the connection is
//     closed after such an answer, and bytes after the bad request are never executed.
//   - Header, body and idle timeouts: a slow client cannot hold a connection.
//   - A handler that throws gets a generic 500; no exception text reaches the client.
// Handlers run on the server's worker threads, several at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/result.h"
#include "http/message.h"

namespace peerstack::http {

struct ServerOptions {
  std::string name = "http";  // in log lines: "public", "admin"
  std::string bind_address = "127.0.0.1";
  uint16_t port = 0;   // 0: any free port; see Server::port()
  size_t threads = 0;  // worker threads; 0: one per core
  Limits limits;
  Handler handler;
  const Clock* clock = nullptr;  // deadlines; null: the system clock. Not owned
};

struct ServerStats {
  uint64_t connections = 0;  // accepted since start
  uint64_t open_connections = 0;
  uint64_t requests = 0;               // handled by the handler
  uint64_t rejected = 0;               // refused by the parser (4xx/5xx, connection closed)
  uint64_t timeouts = 0;               // connections closed by a timeout
  std::array<uint64_t, 6> by_class{};  // answers sent by status class: [2] = 2xx, ...
};

class Server {
 public:
  virtual ~Server() = default;
  // Binds and starts serving on background threads.
  virtual Status Start() = 0;
  // The bound port (useful when ServerOptions::port was 0). Valid after Start().
  virtual uint16_t port() const = 0;
  // Stops accepting, lets running handlers finish, closes connections. Idempotent.
  virtual void Stop() = 0;
  virtual ServerStats stats() const = 0;
  // Serves an already connected stream socket as if this listener had accepted it (a
  // connection arriving through a relay), with the same limits and timeouts; its remote
  // address reads 127.0.0.1. Takes ownership of fd: closes it and returns false when the
  // server is not running.
  virtual bool Adopt(int fd) = 0;
};
using ServerPtr = std::unique_ptr<Server>;

ServerPtr MakeServer(ServerOptions options);

}  // namespace peerstack::http
