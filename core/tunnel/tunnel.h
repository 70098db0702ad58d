// Reachability (docs/design.md section 7): an ordered list of providers, each of which tries to
// make the node's public listener reachable and reports the public URL; a manager that uses the
// first one that works, checks it periodically, moves to the next when it fails, comes back
// to a better one when it works again, and reports every change of URL.
//
// A path counts only once verified: the manager fetches <url>/p2p/identity?nonce=N and
// checks the answer is signed by this node's key (so a tunnel that forwards elsewhere, or a
// stale URL, is never taken for ours). One file per provider (after Redis' connection
// types); providers run on the manager's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace peerstack::tunnel {

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string name() const = 0;
  // Makes the node reachable (may take seconds); returns the public URL.
  virtual Result<std::string> Open() = 0;
  // Cheap local liveness of the path (e.g. the tunnel program still runs); the manager also
  // verifies the URL itself.
  virtual bool Alive() { return true; }
  // Releases the path (mapping removed, program stopped). Idempotent.
  virtual void Close() {}
};
using ProviderPtr = std::unique_ptr<Provider>;

// `direct`: the node's own address (or --public-url): nothing to open, only to verify.
ProviderPtr MakeDirectProvider(std::string url);

// `command`: runs an external tunnel program (localtunnel's lt, cloudflared, ngrok, bore,
// ssh -R ...) with /bin/sh -c, reads its output until a line contains a URL (the first
// match of url_pattern, an ECMAScript regex; default: the first http(s)://... token), and
// restarts it when it dies. {port} in the command is replaced by the local port.
ProviderPtr MakeCommandProvider(std::string command, std::string url_pattern, uint16_t local_port,
                                std::chrono::milliseconds start_timeout = std::chrono::seconds(20));

// `upnp`: asks the router for a port mapping to local_port, by UPnP IGD (miniupnpc) and
// else NAT-PMP (libnatpmp); the same port outside if free. Renews the lease at half-time from
// Alive() and removes the mapping on Close(). Refuses when the node listens on loopback only.
ProviderPtr MakeUpnpProvider(std::string bind_address, uint16_t local_port,
                             std::chrono::seconds lease = std::chrono::seconds(3600));

// What a reachability check found out about a URL.
enum class Reach {
  kConfirmed,  // someone got this node's signed identity there
  kRefuted,    // someone tried and did not (unreachable, or another node answers)
  kUnknown,    // nobody could check now (peers busy or down)
};

struct ManagerOptions {
  std::vector<ProviderPtr> providers;  // in order of preference
  // Is `url` this node? (identity check; injected so tests and the node share the manager.)
  // A path is taken only when confirmed, and left only when refuted (or its provider dies):
  // busy peers neither make nor break one.
  std::function<Reach(const std::string& url)> verify;
  // Called (on the manager's thread) whenever the public URL or provider changes.
  std::function<void(const std::string& url, const std::string& provider)> on_change;
  std::chrono::milliseconds check_interval{5000};
  std::chrono::milliseconds retry_better_interval{30000};
};

struct State {
  std::string provider;  // empty: unreachable
  std::string url;
  std::vector<std::pair<std::string, std::string>> failures;  // provider -> last error
};

class Manager {
 public:
  explicit Manager(ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Picks the first working provider (blocking, so the node starts with a URL), then checks
  // and fails over on a background thread; while none works, attempts back off from
  // check_interval to 6x check_interval.
  void Start();
  // Checks (or, unreachable, tries every provider) now instead of at the next interval: for
  // when what providers depend on has changed (the network is loaded: relays are known).
  void CheckNow();
  void Stop();
  State state() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peerstack::tunnel
