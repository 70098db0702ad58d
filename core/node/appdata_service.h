// App data, inside the node: drives the sans-I/O replica (appdata/replica.h) with real time,
// the ledger's membership history and a transport of its own.
//
//   - Every tick_ms: the members and their liveness from the network (and, when the ledger
//     changed, who was a member or publisher when), then the replica's pushes and pulls.
//   - Outgoing: the replica's messages are sealed like every peer message (the body signed
//     with this node's key under the domain "p2p/<type>", protocol/envelope.h) and handed to
//     a transport that carries nothing else, so that app traffic never waits behind (or
//     delays) the membership protocol's messages; all of them may be dropped under pressure
//     (a pull repairs what a lost push missed).
//   - Incoming: NetworkService hands over /p2p/appdata, appsync and appops from members once
//     their signature and envelope are checked (NetworkOptions::app_message).
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "appdata/replica.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"
#include "node/network_service.h"
#include "transport/transport.h"

namespace peerstack::node {

struct AppDataOptions {
  const Clock* clock = nullptr;               // required; not owned
  std::shared_ptr<appdata::Replica> replica;  // required
  NetworkService* network = nullptr;          // required; not owned, outlives Stop()
  transport::Transport* transport = nullptr;  // required; not owned, app data's alone
  const crypto::SigningKey* key = nullptr;    // required; not owned
  int64_t tick_ms = 50;
};

class AppDataService {
 public:
  explicit AppDataService(AppDataOptions options);
  ~AppDataService();  // Stop()
  AppDataService(const AppDataService&) = delete;
  AppDataService& operator=(const AppDataService&) = delete;

  void Start();
  void Stop();  // idempotent
  // A message from a member (see NetworkOptions::app_message).
  Status Receive(const std::string& key, const std::string& url, const std::string& type,
                 const json::Value& body);
  // For /status: the replica's figures.
  json::Value StatusJson() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peerstack::node
