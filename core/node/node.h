// The composition root: turns a Config into a running node. It owns the data dir (lock,
// keys, token, store), the network state, and the two listeners with their routes:
//   public  (Config::bind:port)      frontend, GET /nodes, plugins' public routes under /api/;
//                                    admin paths answer 404 here
//   admin   (127.0.0.1:admin_port)   bearer token; GET /status, GET /nodes, plugins' private
//                                    (and public) routes under /api/
// Start() and Stop() are called from one thread (main); handlers run on listener threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/result.h"
#include "node/config.h"

namespace peerstack::node {

// Files in the data dir.
inline constexpr const char kKeyFile[] = "node.key";
inline constexpr const char kTokenFile[] = "admin.token";
inline constexpr const char kPortsFile[] = "ports.json";
inline constexpr const char kStoreFile[] = "state.db";
inline constexpr const char kLockFile[] = "node.lock";
inline constexpr const char kBlobsDir[] = "blobs";  // content-addressed files of releases

class Node {
 public:
  // Opens or creates the data dir; on first start creates the network (genesis).
  static Result<std::unique_ptr<Node>> Open(const Config& config, std::string version);
  ~Node();

  // Starts both listeners, then writes ports.json.
  Status Start();
  // Stops accepting, finishes in-flight requests, closes the store, removes ports.json.
  void Stop();

  const std::string& node_id() const;
  std::string network_id() const;
  uint16_t public_port() const;
  uint16_t admin_port() const;

 private:
  struct Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Raises RLIMIT_NOFILE to its hard limit and ignores SIGPIPE (process-wide, call once).
void PrepareProcess();

}  // namespace peerstack::node
