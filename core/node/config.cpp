#include "node/config.h"

#include <algorithm>
#include <charconv>

namespace peerstack::node {

const char kRunHelp[] =
    "usage: peerstack run [options]\n"
    "\n"
    "Starts a node: the public listener (frontend, /nodes, plugin and peer routes) and the\n"
    "admin listener on 127.0.0.1 (bearer token in DATA_DIR/admin.token).\n"
    "\n"
    "options:\n"
    "  --data-dir DIR      node key, token, state database (default .peerstack;\n"
    "                      env PEERSTACK_DATA_DIR)\n"
    "  --port N            public port, 0 = any free port (default 8080; env PEERSTACK_PORT)\n"
    "  --admin-port N      admin port on 127.0.0.1, 0 = any (default 8081;\n"
    "                      env PEERSTACK_ADMIN_PORT)\n"
    "  --bind ADDR         public listener address (default 0.0.0.0)\n"
    "  --front DIR         static frontend to serve (default front)\n"
    "  --plugins DIR       plugin directory (default plugins)\n"
    "  --public-url URL    the URL other nodes reach this one at\n"
    "  --tunnel LIST       reachability providers, in order (default direct,upnp,relay;\n"
    "                      known: direct, upnp, relay, command)\n"
    "  --upnp-lease S      lease asked of the router for the upnp mapping (default 3600)\n"
    "  --tunnel-command CMD   the `command` provider's program, e.g. 'lt --port {port}'\n"
    "  --tunnel-url-pattern RE  regex for the URL in its output (default: the first URL)\n"
    "  --relay-port N      relay connections for members behind NAT on port N (0: any)\n"
    "  --relay-connections N  connections at once per relayed node (default 64)\n"
    "  --relay-rate B      bytes per second per relayed node (default 8388608)\n"
    "  --relay-via LIST    relays the `relay` provider tries first: host:port[,...]\n"
    "                      (then it finds the relays of the join node and the members)\n"
    "  --join URL          join the network of the node at URL (env NETWORK_NODE_URL)\n"
    "  --ca-file FILE      for https:// peers: trust these CA certificates (PEM) besides\n"
    "                      the system's (env PEERSTACK_CA_FILE)\n"
    "  --dev               development mode: serve the local plugins and files unsigned,\n"
    "                      reload them on change, install no release (warned in /status)\n"
    "  --publisher-key LIST  a new network's release signers: public keys (hex), key files\n"
    "                      made by `peerstack keygen`, or `node` (default: node)\n"
    "  --publisher-threshold N  signatures a release needs (default 1)\n"
    "  --admission RULE    a new network's rule for joins: invite (a member's invitation,\n"
    "                      `peerstack invite`; the default) or open (any node with the\n"
    "                      app's code; the default with --dev)\n"
    "  --invite TOKEN      the invitation to join with (from `peerstack invite`; a link's\n"
    "                      ?invite= part also works)\n"
    "  --threads N         public listener worker threads (default: one per core)\n"
    "  --plugin-timeout MS a plugin call running longer is answered 504 (default 10000)\n"
    "  --log-level LEVEL   debug, info, warn, error or off (default info;\n"
    "                      env PEERSTACK_LOG_LEVEL)\n"
    "\n"
    "Ports actually bound are written to DATA_DIR/ports.json once the node is ready.\n";

namespace {

// Every numeric flag: digits only, within [min, max]; the error names the flag and the range.
template <typename T>
Status ParseNumber(const std::string& text, const std::string& what, const char* unit, T min, T max,
                   T* out) {
  T value = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || value < min ||
      value > max) {
    return Status::Error("bad_flag", what + " must be " + unit + " " + std::to_string(min) + "-" +
                                         std::to_string(max) + ", got '" + text + "'");
  }
  *out = value;
  return Status::Ok();
}

Status ParsePort(const std::string& text, const std::string& what, uint16_t* out) {
  return ParseNumber<uint16_t>(text, what, "a port number", 0, 65535, out);
}

Status ParseTunnelList(const std::string& text, std::string* out) {
  const std::vector<std::string> names = SplitList(text);
  for (const std::string& name : names) {
    if (name != "direct" && name != "upnp" && name != "relay" && name != "command") {
      return Status::Error("bad_flag", "--tunnel: unknown provider '" + name +
                                           "' (known: direct, upnp, relay, command)");
    }
  }
  if (names.empty()) return Status::Error("bad_flag", "--tunnel needs at least one provider");
  *out = text;
  return Status::Ok();
}

// Splits "--flag=value" and "--flag value"; returns false when args[i] is not a flag.
bool TakeFlag(const std::vector<std::string>& args, size_t* i, std::string* name,
              std::string* value, bool* has_value) {
  const std::string& a = args[*i];
  if (a.rfind("--", 0) != 0) return false;
  const size_t eq = a.find('=');
  *name = a.substr(0, eq);
  *has_value = false;
  if (eq != std::string::npos) {
    *value = a.substr(eq + 1);
    *has_value = true;
  } else if (*i + 1 < args.size() && args[*i + 1].rfind("--", 0) != 0) {
    *value = args[*i + 1];
    *has_value = true;
  }
  return true;
}

Status ApplyEnv(const GetEnv& env, Config* c) {
  if (const char* v = env("PEERSTACK_DATA_DIR"); v && *v) c->data_dir = v;
  if (const char* v = env("PEERSTACK_PORT"); v && *v) {
    if (auto s = ParsePort(v, "PEERSTACK_PORT", &c->port); !s.ok()) return s;
  }
  if (const char* v = env("PEERSTACK_ADMIN_PORT"); v && *v) {
    if (auto s = ParsePort(v, "PEERSTACK_ADMIN_PORT", &c->admin_port); !s.ok()) return s;
  }
  if (const char* v = env("NETWORK_NODE_URL"); v && *v) c->join_url = v;
  if (const char* v = env("PEERSTACK_CA_FILE"); v && *v) c->ca_file = v;
  if (const char* v = env("PEERSTACK_LOG_LEVEL"); v && *v) {
    if (!log::ParseLevel(v, &c->log_level)) {
      return Status::Error("bad_flag",
                           std::string("PEERSTACK_LOG_LEVEL: unknown level '") + v + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Status ParseRunConfig(const std::vector<std::string>& args, const GetEnv& env, Config* c) {
  if (auto s = ApplyEnv(env, c); !s.ok()) return s;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name, value;
    bool has_value = false;
    if (!TakeFlag(args, &i, &name, &value, &has_value)) {
      return Status::Error("bad_flag", "unexpected argument '" + args[i] + "'");
    }
    const bool inline_value = args[i].find('=') != std::string::npos;
    if (name == "--dev") {
      c->dev = true;
      continue;
    }
    if (!has_value) return Status::Error("bad_flag", name + " needs a value");
    if (!inline_value) ++i;
    Status s = Status::Ok();
    if (name == "--data-dir")
      c->data_dir = value;
    else if (name == "--port")
      s = ParsePort(value, name, &c->port);
    else if (name == "--admin-port")
      s = ParsePort(value, name, &c->admin_port);
    else if (name == "--bind")
      c->bind = value;
    else if (name == "--front")
      c->front_dir = value;
    else if (name == "--plugins")
      c->plugins_dir = value;
    else if (name == "--public-url")
      c->public_url = value;
    else if (name == "--tunnel")
      s = ParseTunnelList(value, &c->tunnel);
    // (Renewed at half-time; under 20 s a slow router answer could let a lease lapse.)
    else if (name == "--upnp-lease")
      s = ParseNumber(value, name, "seconds", 20, 604800, &c->upnp_lease_s);
    else if (name == "--tunnel-command")
      c->tunnel_command = value;
    else if (name == "--tunnel-url-pattern")
      c->tunnel_url_pattern = value;
    else if (name == "--relay-via")
      c->relay_via = value;
    else if (name == "--relay-connections")
      s = ParseNumber<size_t>(value, name, "a number", 1, 4096, &c->relay_connections);
    else if (name == "--relay-rate")
      s = ParseNumber<uint64_t>(value, name, "a number", 1024, 1ull << 40, &c->relay_rate);
    else if (name == "--relay-port") {
      uint16_t port = 0;
      s = ParsePort(value, name, &port);
      c->relay_port = port;
    } else if (name == "--join")
      c->join_url = value;
    else if (name == "--ca-file")
      c->ca_file = value;
    else if (name == "--publisher-key") {
      for (std::string& k : SplitList(value)) c->publishers.push_back(std::move(k));
    } else if (name == "--publisher-threshold")
      s = ParseNumber<int64_t>(value, name, "a number", 1, 64, &c->publisher_threshold);
    else if (name == "--admission") {
      if (value != "open" && value != "invite")
        s = Status::Error("bad_flag", "--admission: invite or open, not '" + value + "'");
      c->admission = value;
    } else if (name == "--invite") {
      c->invite = value;
      if (const size_t q = value.find("invite="); q != std::string::npos)
        c->invite = value.substr(q + 7);
    } else if (name == "--threads")
      s = ParseNumber<size_t>(value, name, "a number", 0, 256, &c->threads);
    else if (name == "--plugin-timeout")
      s = ParseNumber<int64_t>(value, name, "milliseconds", 1, 3600000, &c->plugin_timeout_ms);
    else if (name == "--log-level") {
      if (!log::ParseLevel(value, &c->log_level)) {
        s = Status::Error("bad_flag", "--log-level: unknown level '" + value + "'");
      }
    } else {
      s = Status::Error("bad_flag", "unknown flag " + name + " (see peerstack run --help)");
    }
    if (!s.ok()) return s;
  }
  if (c->data_dir.empty()) return Status::Error("bad_flag", "--data-dir may not be empty");
  if (c->publisher_threshold > static_cast<int64_t>(std::max<size_t>(1, c->publishers.size()))) {
    return Status::Error("bad_flag", "--publisher-threshold is more than the publisher keys given");
  }
  if (c->port != 0 && c->port == c->admin_port) {
    return Status::Error("bad_flag", "--port and --admin-port must differ");
  }
  return Status::Ok();
}

Status ParseDataDirOnly(const std::vector<std::string>& args, const GetEnv& env, Config* c,
                        std::vector<std::string>* rest) {
  if (const char* v = env("PEERSTACK_DATA_DIR"); v && *v) c->data_dir = v;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir") {
      if (i + 1 >= args.size()) return Status::Error("bad_flag", "--data-dir needs a value");
      c->data_dir = args[++i];
    } else if (args[i].rfind("--data-dir=", 0) == 0) {
      c->data_dir = args[i].substr(11);
    } else {
      rest->push_back(args[i]);
    }
  }
  return Status::Ok();
}

}  // namespace peerstack::node
