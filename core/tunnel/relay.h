// Peer relays: a reachable member forwards TCP connections to a member behind NAT over
// connections that member opened (no third-party service). Like bore/frp:
//
//   NATed node N                      relay R (a reachable member)          browser
//   control: connect to R:relay_port
//            <- CHALLENGE <nonce>
//            -> HELLO <key> <sig>      R checks the signature (domain "relay-hello") and
//                                      that the key is a member (or gives it one of a few
//                                      joiner slots, closed after 2 minutes unless it has
//                                      become a member by then); opens a public port P
//            <- OK <public url>        (a port per relayed node, so root-relative links and
//                                      client-side routes work unchanged in a browser)
//                                                                      <- connects to R:P
//            <- CONNECT <id>           (id: 128 random bits, a one-time capability)
//   data:    connect to R:relay_port, -> DATA <id>; R splices it with the browser's socket
//            (one epoll thread, splicer.h); N hands it to its public listener (Adopt).
//            <- PING / -> PONG         every 15 s; a dead control connection closes P.
//
// Limits per relayed node: connections at once and bytes per second (both directions).
// Only the public listener is reachable through a relay (N hands data connections to it alone).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/ed25519.h"
#include "tunnel/tunnel.h"

namespace peerstack::tunnel {

struct RelayServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;                      // control/data port; 0: any
  std::string public_host = "127.0.0.1";  // host part of the URLs handed to relayed nodes
  std::function<bool(const std::string& key_hex)> is_member;
  size_t max_nodes = 16;
  // A node behind NAT needs a path before it can join (the network answers it at its URL), so
  // a few slots go to non-members for a limited time; a slot whose node is not a member when
  // the time is up closes. One per address at a time, smaller limits, and the slot belongs to
  // the address: reconnecting or a new key continues it, and once it ran out the address waits
  // joiner_cooldown for another (a slot is for joining, not a free tunnel).
  size_t max_joiner_slots = 4;
  std::chrono::milliseconds joiner_slot_time{std::chrono::minutes(2)};
  std::chrono::milliseconds joiner_cooldown{std::chrono::minutes(10)};
  size_t joiner_connections = 8;
  uint64_t joiner_bytes_per_second = 256u << 10;
  size_t max_connections_per_node = 64;
  uint64_t max_bytes_per_second_per_node = 8u << 20;
  // Joiner slots, pending connections and pings; null: the system clock. Not owned.
  const Clock* clock = nullptr;
};

class RelayServer {
 public:
  explicit RelayServer(RelayServerOptions options);
  ~RelayServer();
  RelayServer(const RelayServer&) = delete;
  RelayServer& operator=(const RelayServer&) = delete;

  Status Start();
  void Stop();
  uint16_t port() const;
  size_t relayed_nodes() const;
  uint64_t relayed_bytes() const;  // copied between relayed nodes and their clients

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The `relay` provider: holds a control connection to the first relay ("host:port") that
// accepts it, and hands each relayed connection to `deliver` (the node: its public server's
// Adopt, so a relayed request costs no extra hop and reaches the public listener only).
// Alive() turns false when the control connection drops; the manager then opens it again,
// trying the next relay. `relays` is asked for the candidates at every Open (the node finds
// them among the members).
using RelayCandidates = std::function<std::vector<std::string>()>;
using DeliverConnection = std::function<bool(int fd)>;  // takes ownership of fd
ProviderPtr MakeRelayProvider(RelayCandidates relays, const crypto::SigningKey& key,
                              DeliverConnection deliver);
ProviderPtr MakeRelayProvider(std::vector<std::string> relays, const crypto::SigningKey& key,
                              DeliverConnection deliver);

}  // namespace peerstack::tunnel
