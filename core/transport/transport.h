// Outgoing peer traffic on one Asio event loop: protocol messages to peers and one-off HTTP
// exchanges (reachability checks), with deadlines everywhere, so that a peer that goes
// silent (a frozen process, a host whose packets are dropped) costs nothing but its own
// messages.
//
//   - A queue per peer (peer_queue.h: bounded, must-arrive ahead of droppable, superseding,
//     expiry, backoff after failures, `in_flight` messages at once), drained by asynchronous
//     connects, writes and reads on the loop thread: no thread per message, peer or
//     connection, and no call that blocks the loop.
//   - HTTP/1.1 keep-alive: a peer's connections are reused for its next messages and closed
//     after `idle_timeout`; a reused connection the peer closed meanwhile is retried once
//     on a new one (not counted as a failure).
//   - Deadlines: connect, then write + read of one exchange; a response larger than
//     `max_response_bytes` fails the exchange.
//   - Bounded: at most `max_peers` peers are tracked (idle ones are forgotten first) and at
//     most `max_fetches` one-off exchanges run at once.
// http:// and https:// peers (certificates verified against the system's CAs plus ca_file,
// host names checked; http/exchange.h carries both this and the blocking http::Fetch).
// Thread-safe: Send, Heard, Fetch and stats may be called from any thread; callbacks run on
// the loop thread and must not block.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/client.h"
#include "http/message.h"
#include "transport/peer_queue.h"

namespace peerstack::transport {

struct Message {
  std::string peer;  // base URL: http://host[:port]
  std::string path;  // /p2p/<type>
  std::string body;
  std::vector<http::Header> headers;
  bool droppable = false;  // may be dropped under pressure (probes, syncs)
  std::string supersedes;  // a newer message with the same key replaces this one
};

struct TransportOptions {
  const Clock* clock = nullptr;  // required; not owned
  QueueLimits queue;
  size_t max_peers = 1024;
  size_t max_fetches = 32;
  size_t max_lookups = 8;                          // Resolve() calls at once
  std::chrono::milliseconds lookup_timeout{3000};  // a Resolve() answer after this is dropped
  std::chrono::milliseconds connect_timeout{1500};
  std::chrono::milliseconds request_timeout{3000};  // write + read, after the connect
  std::chrono::milliseconds idle_timeout{15000};  // a kept-alive connection unused this long closes
  size_t max_response_bytes = 64 * 1024;
  std::string ca_file;  // trusted for https:// besides the system's CAs (PEM); empty: none
};

struct PeerStats {
  std::string peer;
  size_t queued = 0;
  size_t in_flight = 0;
  size_t connections = 0;  // open, busy or idle
  bool backing_off = false;
  QueueCounters counters;
  std::string last_error;  // of the last failed exchange, empty after a success
  int64_t rtt_ms = -1;     // the last answered message took this long (-1: none answered yet)
};

struct TransportStats {
  uint64_t connections_opened = 0;
  uint64_t exchanges = 0;  // requests answered (any status)
  QueueCounters totals;    // every message since start, forgotten peers' included
  std::vector<PeerStats> peers;
};

class Transport {
 public:
  using FetchCallback = std::function<void(Result<http::ClientResponse>)>;

  explicit Transport(TransportOptions options);
  ~Transport();  // Stop()
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Starts the loop thread. Messages sent before are kept and go out then.
  void Start();
  // Stops the loop: queued messages are dropped, connections closed; callbacks of fetches
  // still running are not called. Idempotent.
  void Stop();

  // Queues a message for its peer; never blocks. False when refused: the peer's queue is
  // full of messages that must arrive, too many peers are tracked, the URL is bad, or the
  // transport is stopped.
  bool Send(Message message);
  // The peer (base URL) was heard from: its backoff ends.
  void Heard(const std::string& peer);
  // One exchange on a new connection (request.timeout covers connect + write + read,
  // request.max_response_bytes caps the answer). done runs on the loop thread, or is
  // called at once with "busy" when max_fetches are running, "bad_url" for a bad URL.
  void Fetch(http::ClientRequest request, FetchCallback done);
  // Resolves a host name to numeric addresses (IPv6 without brackets): an address at once,
  // a name on a loop of its own (never delaying peer traffic), within lookup_timeout
  // ("timeout"), at most max_lookups at once ("busy"). done runs on that loop.
  using ResolveCallback = std::function<void(Result<std::vector<std::string>>)>;
  void Resolve(const std::string& host, ResolveCallback done);

  TransportStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};
using TransportPtr = std::unique_ptr<Transport>;

}  // namespace peerstack::transport
