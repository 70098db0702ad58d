// The `peerstack` command line: the only code not shared with tests.
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "base/files.h"
#include "base/log.h"
#include "bundle/bundle.h"
#include "crypto/encoding.h"
#include "http/client.h"
#include "init_cli.h"
#include "json/json.h"
#include "node/config.h"
#include "node/node.h"
#include "protocol/event.h"
#include "release_cli.h"
#include "store/key_file.h"
#include "store/store.h"

namespace {

using peerstack::Status;
namespace node = peerstack::node;

constexpr const char kVersion[] = PEERSTACK_VERSION;

constexpr const char kHelp[] =
    "peerstack: one binary that serves a web app and runs it as a peer-to-peer network.\n"
    "\n"
    "usage: peerstack [COMMAND] [options]\n"
    "\n"
    "commands:\n"
    "  run       start a node (the default command)\n"
    "  id        print this node's id and public key\n"
    "  status    ask the running node's admin listener for a summary\n"
    "  keygen    make a publisher key (signs releases)\n"
    "  release   create, sign, publish and follow a release of the app\n"
    "  invite    make an invitation (a link) for a friend's node to join\n"
    "  init      write a new app (a plugin and a frontend) to start from\n"
    "\n"
    "  peerstack --help, peerstack COMMAND --help, peerstack --version\n";

constexpr const char kIdHelp[] =
    "usage: peerstack id [--data-dir DIR]\n"
    "\n"
    "Prints the node id and the Ed25519 public key (hex) of the node in DIR.\n";

constexpr const char kStatusHelp[] =
    "usage: peerstack status [--data-dir DIR] [--json]\n"
    "\n"
    "Reads DIR/ports.json and DIR/admin.token and asks the running node's admin listener\n"
    "for GET /status. --json prints the raw answer.\n";

using peerstack::cli::Fail;

bool WantsHelp(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int Run(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << node::kRunHelp;
    return 0;
  }
  node::Config config;
  if (auto s = node::ParseRunConfig(args, std::getenv, &config); !s.ok()) {
    return Fail(s.message(), 2);
  }
  peerstack::log::SetLevel(config.log_level);
  node::PrepareProcess();

  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto opened = node::Node::Open(config, kVersion);
  if (!opened) return Fail(opened.status().message());
  auto& n = *opened;
  if (auto s = n->Start(); !s.ok()) return Fail(s.message());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  PS_LOG(kInfo, "node") << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping";
  n->Stop();
  PS_LOG(kInfo, "node") << "stopped cleanly";
  return 0;
}

// The shared start of `id` and `status`: --help, then --data-dir; the rest is left in *rest.
// Returns an exit code when the command is already done (help shown or bad usage).
std::optional<int> ParseDataDirCommand(const std::vector<std::string>& args, const char* help,
                                       node::Config* config, std::vector<std::string>* rest) {
  if (WantsHelp(args)) {
    std::cout << help;
    return 0;
  }
  if (auto s = node::ParseDataDirOnly(args, std::getenv, config, rest); !s.ok()) {
    return Fail(s.message(), 2);
  }
  return std::nullopt;
}

int Id(const std::vector<std::string>& args) {
  node::Config config;
  std::vector<std::string> rest;
  if (auto done = ParseDataDirCommand(args, kIdHelp, &config, &rest)) return *done;
  if (!rest.empty()) return Fail("unexpected argument '" + rest[0] + "'", 2);
  const std::string path = config.data_dir + "/" + node::kKeyFile;
  if (!peerstack::files::Exists(path)) {
    return Fail("no node key in " + config.data_dir + " (start the node once with peerstack run)");
  }
  bool created = false;
  auto key = peerstack::store::LoadOrCreateNodeKey(path, &created);
  if (!key) return Fail(key.status().message());
  const auto& pub = key->public_key();
  std::cout << "id         " << peerstack::protocol::NodeIdFor(pub) << "\n"
            << "public_key " << peerstack::crypto::HexEncode(pub.data(), pub.size()) << "\n";
  return 0;
}

int StatusCommand(const std::vector<std::string>& args) {
  node::Config config;
  std::vector<std::string> rest;
  if (auto done = ParseDataDirCommand(args, kStatusHelp, &config, &rest)) return *done;
  bool raw = false;
  for (const auto& a : rest) {
    if (a == "--json")
      raw = true;
    else
      return Fail("unexpected argument '" + a + "'", 2);
  }
  auto st = peerstack::cli::Admin(config.data_dir, "GET", "/status");
  if (!st) return Fail(st.status().message());
  if (raw) {
    std::cout << peerstack::json::Serialize(*st) << "\n";
    return 0;
  }
  auto str = [](const peerstack::json::Value* obj, const char* key) -> std::string {
    if (!obj) return "?";
    if (const std::string* s = obj->find_string(key)) return *s;
    if (const int64_t* i = obj->find_int(key)) return std::to_string(*i);
    return "?";
  };
  const auto* nd = st->find("node");
  const auto* net = st->find("network");
  const auto* pt = st->find("ports");
  const auto* tn = st->find("tunnel");
  std::cout << "node       " << str(nd, "id") << " (version " << str(nd, "version") << ")\n"
            << "url        " << str(nd, "url") << "\n"
            << "reached by " << str(tn, "provider") << "\n";
  if (const auto* failures = tn ? tn->find("failures") : nullptr;
      failures && failures->is_array()) {
    for (const auto& f : failures->as_array()) {
      std::cout << "  " << str(&f, "provider") << " failed: " << str(&f, "error") << "\n";
    }
  }
  if (const auto* relay = st->find("relay"); relay && relay->is_object()) {
    std::cout << "relay      port " << str(relay, "port") << ", relaying " << str(relay, "relayed")
              << " node(s)\n";
  }
  std::cout << "network    " << str(net, "id") << "\n"
            << "state      " << str(net, "state_hash") << "\n"
            << "members    " << str(net, "members") << "\n"
            << "admission  "
            << (str(net, "admission") == "invite"
                    ? "by invitation (" + str(net, "invitations_used") +
                          " used; `peerstack invite` makes one)"
                    : str(net, "admission"))
            << "\n"
            << "release    " <<
      [&] {
        const auto* rel = st->find("release");
        const auto* run = rel ? rel->find("running") : nullptr;
        std::string line = run && run->is_object()
                               ? (str(run, "version") == "0" ? "its local files"
                                                             : "release " + str(run, "version"))
                               : std::string("nothing yet");
        const std::string detail = str(rel, "detail");
        return line + " (" + str(rel, "phase") +
               (detail.empty() || detail == "?" ? "" : ": " + detail) + ")";
      }() << "\n"
            <<
      [&] {
        // One line per plugin with replicated data: its hash (compare across nodes).
        std::string lines;
        const auto* ad = st->find("appdata");
        const auto* plugins = ad ? ad->find("plugins") : nullptr;
        if (!plugins || !plugins->is_object()) return lines;
        for (const auto& [name, p] : plugins->as_object()) {
          lines += "app data   " + name + ": " + str(&p, "entries") + " entries, hash " +
                   str(&p, "hash").substr(0, 16) + "\n";
        }
        return lines;
      }() << "ports      public "
            << str(pt, "public") << ", admin " << str(pt, "admin") << "\n"
            << "uptime     " << str(nd, "uptime_ms") << " ms\n";
  return 0;
}

constexpr const char kBundleHelp[] =
    "usage: ./FILE [--data-dir DIR] [peerstack run options]\n"
    "\n"
    "This file is a Peerstack node that carries an app and the card of the network it joins\n"
    "(from a member's /download). Run, it checks every byte (hashes, the publishers'\n"
    "signatures, the network's genesis), extracts the app into DIR (default\n"
    "peerstack-NETWORK, reused when run again) and starts a node that joins the network\n"
    "through the members the card names. Other options go to `peerstack run` (see its --help).\n"
    "Exit code 3: the file is damaged or not trustworthy; nothing was written.\n";

// The first of the card's members that answers (each given 3 s: a silent one costs that, not
// the join), or the first when none does (the node then keeps asking it).
std::string PickBootstrap(const std::vector<std::string>& urls) {
  using namespace std::chrono_literals;
  for (const std::string& url : urls) {
    std::cout << "  asking " << url << " ... " << std::flush;
    peerstack::http::ClientRequest req;
    req.url = url + "/p2p/identity?nonce=6a6f696e";  // any member answers this, cheaply
    req.timeout = 3s;
    req.max_response_bytes = 64 * 1024;
    auto r = peerstack::http::Fetch(req);
    if (r.ok() && r->status == 200) {
      std::cout << "answers\n";
      return url;
    }
    std::cout << "no answer ("
              << (r.ok() ? "status " + std::to_string(r->status) : r.status().ToString()) << ")\n";
  }
  std::cout << "  none of the " << urls.size()
            << " members the file names answers now; the node keeps asking " << urls.front()
            << "\n";
  return urls.front();
}

// The file is a bundle (core/bundle/): verify, extract, run a node that joins.
int RunBundle(std::vector<std::string> args) {
  if (WantsHelp(args)) {
    std::cout << kBundleHelp;
    return 0;
  }
  auto c = peerstack::bundle::Read("/proc/self/exe");
  if (!c) return Fail(c.status().message() + "; download it again", 3);
  const std::string fp = peerstack::bundle::Fingerprint(c->card.network);
  std::string dir = "peerstack-" + c->card.network.substr(0, 12);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir" && i + 1 < args.size()) {
      dir = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      break;
    }
  }
  std::cout << "peerstack: a node of network " << fp
            << " (compare this fingerprint with your friend's)\n"
            << "  app: "
            << (c->manifest ? "release " + std::to_string(c->manifest->version)
                            : std::string("release 0"))
            << ", " << c->files.size() << " files, all verified\n";
  for (const auto& [entry, bytes] : c->files) {
    const std::string path =
        dir + "/app/" + (entry.role == "plugin" ? "plugins/" : "front/") + entry.path;
    if (auto s = peerstack::files::MakeDirs(path.substr(0, path.rfind('/'))); !s.ok())
      return Fail(s.message());
    if (auto s =
            peerstack::files::WriteFileAtomic(path, bytes, entry.role == "plugin" ? 0755 : 0644);
        !s.ok()) {
      return Fail(s.message());
    }
  }
  std::cout << "  extracted into " << dir << "/app\n";
  std::vector<std::string> run{"--data-dir",         dir,       "--plugins",
                               dir + "/app/plugins", "--front", dir + "/app/front"};
  // The join flags go along on every run: a node that is a member already ignores them. Until
  // it holds the network's events (a joiner stores none before it is admitted: a first run,
  // or one stopped before admission) it asks around for a live member of the card first.
  if (!c->card.bootstrap.empty()) {
    bool admitted = false;
    if (peerstack::files::Exists(dir + "/" + node::kStoreFile)) {
      auto store = peerstack::store::OpenSqliteStore(dir + "/" + node::kStoreFile);
      if (store) {
        auto events = (*store)->Events();
        admitted = events && !events->empty();
      }
    }
    const std::string via = admitted ? c->card.bootstrap.front() : PickBootstrap(c->card.bootstrap);
    run.insert(run.end(), {"--join", via});
    if (!c->card.invitation.empty()) run.insert(run.end(), {"--invite", c->card.invitation});
    if (!admitted) {
      std::cout << "  joining through " << via
                << (c->card.invitation.empty() ? "" : " with the invitation the file carries")
                << "\n";
    }
  }
  std::cout.flush();
  run.insert(run.end(), args.begin(), args.end());
  return Run(run);
}

}  // namespace

int main(int argc, char** argv) {
  // A /download answer is a 16 MB buffer per request: with glibc's moving mmap threshold,
  // some sizes land in fresh mappings every time, and faulting 4,000 pages in costs 20 ms
  // on a VM (the first byte left after 20 ms instead of 1). Keep buffers up to 64 MiB in the
  // heap and give memory back above 128 MiB free (docs/benchmarks.md, "The one-file download").
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (peerstack::bundle::HasPayload("/proc/self/exe")) {
    try {
      return RunBundle(args);
    } catch (const std::exception& e) {
      return Fail(std::string("fatal: ") + e.what());
    }
  }
  if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
    std::cout << "peerstack " << kVersion << "\n";
    return 0;
  }
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
    std::cout << kHelp;
    return 0;
  }
  std::string command = "run";
  if (!args.empty() && args[0].rfind("-", 0) != 0) {
    command = args[0];
    args.erase(args.begin());
  }
  try {
    if (command == "run") return Run(args);
    if (command == "id") return Id(args);
    if (command == "status") return StatusCommand(args);
    if (command == "keygen") return peerstack::cli::Keygen(args);
    if (command == "release") return peerstack::cli::Release(args);
    if (command == "invite") return peerstack::cli::Invite(args);
    if (command == "init") return peerstack::cli::Init(args);
  } catch (const std::exception& e) {
    return Fail(std::string("fatal: ") + e.what());
  }
  return Fail("unknown command '" + command + "'\n" + kHelp, 2);
}
