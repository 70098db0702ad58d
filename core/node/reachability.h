// Reachability as the peers see it, in the node: this node's signed identity at its URL
// (GET /p2p/identity), the checks other nodes ask of it (GET /p2p/reach: fetch a URL's
// identity, on the transport's event loop, rate-limited, never a reflector), the checks it
// asks of its witnesses for its own URL (VerifyIdentity, for the tunnel manager), and
// finding relays among the members (FindRelays). Which peers to ask comes from the network
// (ReachabilityOptions::peers).
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/rate_limit.h"
#include "crypto/ed25519.h"
#include "http/message.h"
#include "transport/transport.h"
#include "tunnel/tunnel.h"

namespace peerstack::node {

// keep(url, via): whether a peer is worth asking.
using PeerFilter = std::function<bool(const std::string& url, const std::string& via)>;

struct ReachabilityOptions {
  const crypto::SigningKey* key = nullptr;    // required; not owned
  const Clock* clock = nullptr;               // required; not owned
  transport::Transport* transport = nullptr;  // required; not owned
  std::string ca_file;                        // for https:// URLs (the blocking checks)
  // The join node's URL, then up to `most` members' URLs (random order), kept only if keep().
  std::function<std::vector<std::string>(size_t most, const PeerFilter& keep)> peers;
  std::function<std::string()> self_url;  // where this node answers now
};

class Reachability {
 public:
  explicit Reachability(ReachabilityOptions options);

  // GET /p2p/identity?nonce=N (public): {"key", "sig"}, the nonce signed with the domain
  // "identity": proves that whoever answers at this URL holds this node's key; plus
  // "relay": <port> when this node runs a relay (set_relay_port).
  http::Response HandleIdentity(const http::Request& request) const;
  void set_relay_port(uint16_t port);
  // GET /p2p/reach?url=U&nonce=N (public): fetches U/p2p/identity?nonce=N and answers the
  // {key, sig} it got (502 when it cannot reach U). Rate-limited; returns nothing else of
  // what U answered.
  http::Response HandleReach(const http::Request& request);
  // Is url this node, as others see it? Asks up to three members and the join URL at once
  // (/p2p/reach): confirmed when one of them got this node's signed identity, refuted when
  // one tried and did not, unknown when they are busy. With no peer known, or none
  // answering at all, the node checks its own URL.
  tunnel::Reach VerifyIdentity(const std::string& url) const;
  // Relays ("host:port") for the `relay` provider: those of the join URL's node and of up to
  // four members reached without a relay (asked in random order, 1.5 s each).
  std::vector<std::string> FindRelays() const;

 private:
  ReachabilityOptions o_;
  std::string key_hex_;
  std::atomic<uint16_t> relay_port_{0};
  std::mutex mu_;  // rate limits of /p2p/reach
  RateLimit by_source_{5, 1000, 1000000};
  RateLimit by_url_{1, 1000, 50};
};

}  // namespace peerstack::node
