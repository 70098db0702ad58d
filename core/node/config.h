// The node's configuration with its defaults: what `peerstack run` sets from its flags,
// environment and config file (core/cli/cli.cpp defines them; docs/operations.md lists them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"

namespace peerstack::node {

struct Config {
  std::string data_dir = ".peerstack";
  uint16_t port = 8080;        // public listener; 0 = any free port
  uint16_t admin_port = 8081;  // admin listener (always 127.0.0.1); 0 = any free port
  std::string bind = "0.0.0.0";
  std::string front_dir = "front";
  std::string plugins_dir = "plugins";
  std::string public_url;  // empty: http://127.0.0.1:<port>
  std::string tunnel = "direct,upnp,relay";
  std::string tunnel_command;        // for the `command` provider; {port} = the public port
  std::string tunnel_url_pattern;    // regex picking the URL from its output (default: first URL)
  int upnp_lease_s = 3600;           // lease asked for the `upnp` mapping, renewed at half-time
  int relay_port = -1;               // serve as a relay for members on this port (-1: off, 0: any)
  size_t relay_connections = 64;     // per relayed node, at once
  uint64_t relay_rate = 8ull << 20;  // bytes/s per relayed node, both directions
  std::string relay_via;             // relays for the `relay` provider: host:port[,host:port...]
  std::string join_url;              // NETWORK_NODE_URL
  std::string ca_file;               // PEM CAs trusted for https:// peers besides the system's
  bool dev = false;
  // A new network's publisher keys (hex), from --publisher-key (a key or a key file, "node" for
  // this node's key; empty: this node's key alone), and how many must sign a release.
  std::vector<std::string> publishers;
  int64_t publisher_threshold = 1;
  // A new network's admission rule: "invite" (the default outside --dev: a join needs a
  // member's invitation) or "open"; empty: the default.
  std::string admission;
  std::string invite;  // the invitation token this node presents when joining (--invite)
  // Propose a checkpoint once this many events are held above the last (0: never propose;
  // checkpoints of others are still approved and adopted). docs/protocol.md, "Checkpoints".
  int64_t checkpoint_every = 1000;
  // Or sooner, once 32 are held above it and none came for this long (0: not sooner).
  int64_t checkpoint_quiet_ms = 10000;
  log::Level log_level = log::Level::kInfo;
  size_t threads = 0;                 // public listener workers; 0 = one per core
  int64_t plugin_timeout_ms = 10000;  // a plugin call longer than this is answered 504
};

// "a,b,,c" -> {"a", "b", "c"} (for --tunnel and --relay-via).
std::vector<std::string> SplitList(const std::string& text);

// What no single flag can check: a data dir, no more signatures than publisher keys, two
// different ports. The error names the flags.
Status CheckConfig(const Config& config);

}  // namespace peerstack::node
