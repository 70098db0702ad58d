#include "cli/cli.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "base/files.h"
#include "base/log.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "crypto/encoding.h"
#include "http/client.h"
#include "json/json.h"
#include "node/node.h"
#include "protocol/event.h"
#include "protocol/release.h"
#include "store/key_file.h"
#include "store/store.h"

namespace peerstack::cli {
namespace {

constexpr const char kVersion[] = PEERSTACK_VERSION;

constexpr const char kAbout[] =
    "peerstack: one binary that serves a web app and runs it as a peer-to-peer network.\n"
    "`run` is the default command; `peerstack help COMMAND` or `peerstack COMMAND --help` "
    "tells more.";

// A flag without a variable: its value is read with CommandLine::ValuesOf.
CLI::Option* Flag(CLI::App* cmd, const char* name, const char* description) {
  return cmd->add_flag(name)->description(description);
}
// An option without a variable, likewise.
CLI::Option* Option(CLI::App* cmd, const char* name, const char* description) {
  return cmd->add_option(name)->description(description);
}

// --data-dir (bound to *bind when given) and --config: what every command that talks to a
// node or reads its files takes.
CLI::Option* AddDataDir(CommandLine* cl, CLI::App* cmd, std::string* bind = nullptr) {
  const char* what = "the node's data dir: key, token, state database, ports file";
  CLI::Option* opt = bind ? cmd->add_option("--data-dir", *bind, what)->capture_default_str()
                          : Option(cmd, "--data-dir", what)->default_str(".peerstack");
  opt->type_name("DIR");
  cl->WithConfig(cmd);
  return opt;
}

CLI::Validator TunnelList() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::vector<std::string> names = node::SplitList(text);
        for (const std::string& name : names) {
          if (name != "direct" && name != "upnp" && name != "relay" && name != "command") {
            return "unknown provider '" + name + "' (known: direct, upnp, relay, command)";
          }
        }
        return names.empty() ? "needs at least one provider" : "";
      },
      "of direct,upnp,relay,command");
}

void DefineRun(CommandLine* cl, CLI::App* root, node::Config* c) {
  CLI::App* run = cl->Add(root, "run",
                          "start a node: the public listener (frontend, /nodes, plugin and peer "
                          "routes) and the admin listener on 127.0.0.1 (bearer token in "
                          "DATA_DIR/admin.token)");
  run->footer("Ports actually bound are written to DATA_DIR/ports.json once the node is ready.");
  AddDataDir(cl, run, &c->data_dir);
  run->add_option("--port", c->port, "public listener; 0 = any free port")
      ->type_name("N")
      ->check(Between(0, 65535))
      ->capture_default_str();
  run->add_option("--admin-port", c->admin_port,
                  "admin listener, always on 127.0.0.1; 0 = any free port")
      ->type_name("N")
      ->check(Between(0, 65535))
      ->capture_default_str();
  run->add_option("--bind", c->bind, "address of the public listener")
      ->type_name("ADDR")
      ->capture_default_str();
  run->add_option("--front", c->front_dir, "the frontend this node was started with")
      ->type_name("DIR")
      ->capture_default_str();
  run->add_option("--plugins", c->plugins_dir,
                  "the plugins this node was started with: every *.so in DIR")
      ->type_name("DIR")
      ->capture_default_str();
  run->add_option("--public-url", c->public_url, "the URL other nodes reach this one at")
      ->type_name("URL")
      ->default_str("http://127.0.0.1:PORT");
  run->add_option("--tunnel", c->tunnel, "reachability providers, in order of preference")
      ->type_name("LIST")
      ->check(TunnelList())
      ->capture_default_str();
  // Renewed at half-time; under 20 s a slow router answer could let a lease lapse.
  run->add_option("--upnp-lease", c->upnp_lease_s,
                  "seconds of the lease asked of the router for the upnp mapping, renewed at "
                  "half-time")
      ->type_name("S")
      ->check(Between(20, 604800))
      ->capture_default_str();
  run->add_option("--tunnel-command", c->tunnel_command,
                  "the `command` provider's program, run with /bin/sh -c; {port} is replaced by "
                  "the public port")
      ->type_name("CMD");
  run->add_option("--tunnel-url-pattern", c->tunnel_url_pattern,
                  "regex picking the public URL from the program's output (its first group if "
                  "it has one)")
      ->type_name("RE")
      ->default_str("the first http(s) URL");
  run->add_option_function<int>(
         "--relay-port", [c](const int& port) { c->relay_port = port; },
         "run a relay for members behind NAT on port N (0: any)")
      ->type_name("N")
      ->check(Between(0, 65535))
      ->default_str("off");
  run->add_option("--relay-connections", c->relay_connections,
                  "relay: connections at once per relayed node")
      ->type_name("N")
      ->check(Between(1, 4096))
      ->capture_default_str();
  run->add_option("--relay-rate", c->relay_rate,
                  "relay: bytes per second per relayed node, both directions")
      ->type_name("B")
      ->check(Between(1024, int64_t{1} << 40))
      ->capture_default_str();
  run->add_option("--relay-via", c->relay_via,
                  "relays (host:port,...) the `relay` provider tries before those it finds")
      ->type_name("LIST");
  CLI::Option* join =
      run->add_option("--join", c->join_url,
                      "on first start (empty data dir), ask the node at URL to admit this one "
                      "into its network instead of creating one; retried until admitted")
          ->type_name("URL");
  cl->Env(join, {"PEERSTACK_JOIN", "NETWORK_NODE_URL"});
  run->add_option("--ca-file", c->ca_file,
                  "for https:// peers: CA certificates (PEM) trusted besides the system's")
      ->type_name("FILE");
  run->add_flag("--dev", c->dev,
                "development mode: serve the local plugins and frontend unsigned whatever the "
                "network's release, reload them on change (warned in /status); a network "
                "created so accepts any code");
  run->add_option("--publisher-key", c->publishers,
                  "a new network's release signers: hex public keys, key files made by "
                  "`peerstack keygen`, or `node` (this node's key)")
      ->type_name("LIST")
      ->delimiter(',')
      ->default_str("node");
  run->add_option("--publisher-threshold", c->publisher_threshold,
                  "signatures a release needs (at most the number of keys)")
      ->type_name("N")
      ->check(Between(1, 64))
      ->capture_default_str();
  run->add_option("--admission", c->admission,
                  "a new network's rule for joins, for the network's life: `invite` (a "
                  "member's invitation, single use) or `open` (any node with the accepted code)")
      ->type_name("RULE")
      ->check(OneOf({"invite", "open"}))
      ->default_str("invite (open with --dev)");
  run->add_option_function<std::string>(
         "--invite",
         [c](const std::string& v) {
           const size_t q = v.find("invite=");
           c->invite = q == std::string::npos ? v : v.substr(q + 7);
         },
         "the invitation this node presents when it joins (from `peerstack invite`; a whole "
         "...?invite=TOKEN link works too)")
      ->type_name("TOKEN");
  run->add_option("--checkpoint-every", c->checkpoint_every,
                  "propose a checkpoint (after which older events are pruned) once N events "
                  "are held above the last; 0: never propose one")
      ->type_name("N")
      ->check(Between(0, int64_t{1} << 40))
      ->capture_default_str();
  run->add_option("--checkpoint-quiet", c->checkpoint_quiet_ms,
                  "propose one sooner, once 32 events are held above the last and none came "
                  "for MS milliseconds (a settled network's next joiner then verifies one "
                  "checkpoint); 0: only by --checkpoint-every")
      ->type_name("MS")
      ->check(Between(0, int64_t{1} << 40))
      ->capture_default_str();
  run->add_option("--threads", c->threads, "public listener worker threads; 0 = one per core")
      ->type_name("N")
      ->check(Between(0, 256))
      ->capture_default_str();
  run->add_option("--plugin-timeout", c->plugin_timeout_ms,
                  "a plugin call running longer than MS milliseconds is answered 504")
      ->type_name("MS")
      ->check(Between(1, 3600000))
      ->capture_default_str();
  run->add_option_function<std::string>(
         "--log-level", [c](const std::string& v) { log::ParseLevel(v, &c->log_level); },
         "the least severe log lines written")
      ->type_name("LEVEL")
      ->check(OneOf({"debug", "info", "warn", "error", "off"}))
      ->default_str("info");
}

void DefineRelease(CommandLine* cl, CLI::App* root) {
  CLI::App* release =
      cl->Add(root, "release", "create, sign, publish and follow a release of the app");
  release->require_subcommand(1);
  release->footer("See docs/releases.md for the whole procedure.");

  const protocol::RolloutPolicy rollout;  // the manifest's defaults
  CLI::App* create =
      cl->Add(release, "create", "hash every file of the app into a manifest (unsigned) in FILE");
  Option(create, "--plugins", "the app's plugins (every *.so in DIR)")->type_name("DIR");
  Option(create, "--front", "the app's frontend")->type_name("DIR");
  // A flag another command takes with another meaning has its command in its variable's name
  // (and PEERSTACK_VERSION would be too easy to have set for something else).
  cl->Env(Option(create, "--version", "the release's version (default: the one in force + 1)")
              ->type_name("N")
              ->check(Between(1, int64_t{1} << 53)),
          {"PEERSTACK_RELEASE_VERSION"});
  cl->Env(Option(create, "--expires", "how long the release may be installed")
              ->type_name("DURATION")
              ->check(Duration(1000, 3650LL * 86400000, true))
              ->default_str("30d"),
          {"PEERSTACK_RELEASE_EXPIRES"});
  Option(create, "--stages", "rollout stages")
      ->type_name("N")
      ->check(Between(1, 16))
      ->default_str(std::to_string(rollout.stages));
  Option(create, "--soak", "how long a stage stays healthy before the next starts")
      ->type_name("DURATION")
      ->check(Duration(0, 86400000))
      ->default_str(std::to_string(rollout.soak_ms / 1000) + "s");
  Option(create, "--healthy-percent", "the share of a stage that must report healthy")
      ->type_name("P")
      ->check(Between(1, 100))
      ->default_str(std::to_string(rollout.healthy_percent));
  Option(create, "--max-failures", "failure reports that halt the rollout")
      ->type_name("N")
      ->check(Between(1, 1000000))
      ->default_str(std::to_string(rollout.max_failures));
  create
      ->add_option("--max-error-percent",
                   "plugin calls failing on a node (of 20 at least) that make it report failed")
      ->type_name("P")
      ->check(Between(1, 100))
      ->default_str(std::to_string(rollout.max_error_percent));
  Option(create, "--network", "the network's id (default: the local node's)")->type_name("ID");
  Option(create, "-o,--output", "the release file to write")->type_name("FILE");
  AddDataDir(cl, create);

  CLI::App* sign = cl->Add(release, "sign", "add a publisher key's signature to FILE (offline)");
  Option(sign, "FILE", "a release file, or a publisher-set change")->required();
  Option(sign, "--key", "the publisher key (from `peerstack keygen`)")->type_name("KEYFILE");

  CLI::App* publish =
      cl->Add(release, "publish",
              "hand FILE's files to the local node and start the rollout; show its progress");
  Option(publish, "FILE", "a signed release file, or a signed publisher-set change")->required();
  Flag(publish, "--no-wait", "return once the node has the release");
  Option(publish, "--timeout", "how long to follow the rollout")
      ->type_name("DURATION")
      ->check(Duration(0, 7 * 86400000LL))
      ->default_str("10m");
  AddDataDir(cl, publish);

  CLI::App* status =
      cl->Add(release, "status", "per member: stage, health, version and why it is behind");
  Flag(status, "--json", "print the node's answer as JSON");
  AddDataDir(cl, status);

  CLI::App* rotate = cl->Add(release, "rotate",
                             "write a change of the publisher set, to sign with the current keys");
  cl->Env(Option(rotate, "--publisher-key",
                 "the new set: hex public keys or key files made by `peerstack keygen`")
              ->type_name("LIST"),
          {"PEERSTACK_RELEASE_PUBLISHER_KEY"});
  Option(rotate, "--threshold", "signatures a release will need")
      ->type_name("N")
      ->check(Between(1, 64));
  Option(rotate, "-o,--output", "the change file to write")->type_name("FILE");
  AddDataDir(cl, rotate);
}

}  // namespace

void Define(CommandLine* cl, node::Config* run) {
  CLI::App* root = cl->root();
  cl->Env(Flag(root, "--version", "print the version and exit"), {});
  root->require_subcommand(0, 1);
  DefineRun(cl, root, run);

  CLI::App* id = cl->Add(root, "id", "print this node's id and Ed25519 public key (hex)");
  AddDataDir(cl, id);

  CLI::App* status = cl->Add(root, "status", "ask the running node's admin listener for a summary");
  Flag(status, "--json", "print the node's answer (GET /status) as JSON");
  AddDataDir(cl, status);

  CLI::App* keygen =
      cl->Add(root, "keygen",
              "make an Ed25519 publisher key in FILE (mode 0600; never overwritten) and print its "
              "public key; keep it off the nodes: it signs releases");
  Option(keygen, "FILE", "where to write the key")->required();

  DefineRelease(cl, root);

  CLI::App* invite = cl->Add(
      root, "invite",
      "ask the running member for an invitation to its network: single use, signed by this "
      "member; prints the link a friend downloads the app from and the token for `peerstack "
      "run --join URL --invite TOKEN`");
  cl->Env(Option(invite, "--expires", "how long the invitation is valid")
              ->type_name("DURATION")
              ->check(Duration(1000, 90 * 86400000LL))
              ->default_str("7d"),
          {"PEERSTACK_INVITE_EXPIRES"});
  Option(invite, "--note", "a note for the members (200 bytes at most)")
      ->type_name("TEXT")
      ->check(CLI::Validator(
          [](std::string& t) -> std::string {
            return t.size() <= 200 ? "" : "at most 200 bytes, got " + std::to_string(t.size());
          },
          ""));
  Flag(invite, "--json", "print the node's answer as JSON");
  AddDataDir(cl, invite);

  CLI::App* init = cl->Add(
      root, "init",
      "write a new app into DIR (new or empty): a C++ plugin with a public and a private "
      "route, its CMakeLists.txt (the installed plugin SDK), a front/ page that calls it, and "
      "a README with the commands to build it, run it with --dev and publish a release");
  Option(init, "DIR", "the app's directory")->required();
  Option(init, "--name",
         "the plugin's name, mounted at /api/NAME/: [a-z0-9][a-z0-9_-]{0,31} (default: DIR's "
         "name)")
      ->type_name("NAME");

  CLI::App* dashboard =
      cl->Add(root, "dashboard",
              "print a link that logs in to the running node's dashboard (its admin listener): it "
              "works once, for five minutes");
  Flag(dashboard, "--open", "open the link in the desktop's browser (xdg-open)");
  AddDataDir(cl, dashboard);

  CLI::App* help = cl->Add(root, "help", "print the help of a command (or of them all)");
  Option(help, "COMMAND", "a command, such as `run` or `release create`")
      ->allow_extra_args()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cl->Env(Flag(help, "--all", "every command's help, one after the other (for the man page)"), {});
  cl->Env(Flag(help, "--markdown",
               "every command's flags as the tables of "
               "docs/operations.md"),
          {});
}

namespace {

int Run(const node::Config& config) {
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

int Id(const Values& a) {
  const std::string data_dir = a.Get("data-dir");
  const std::string path = data_dir + "/" + node::kKeyFile;
  if (!peerstack::files::Exists(path)) {
    return Fail("no node key in " + data_dir + " (start the node once with peerstack run)");
  }
  bool created = false;
  auto key = peerstack::store::LoadOrCreateNodeKey(path, &created);
  if (!key) return Fail(key.status().message());
  const auto& pub = key->public_key();
  std::cout << "id         " << peerstack::protocol::NodeIdFor(pub) << "\n"
            << "public_key " << peerstack::crypto::HexEncode(pub.data(), pub.size()) << "\n";
  return 0;
}

int StatusCommand(const Values& a) {
  auto st = Admin(a.Get("data-dir"), "GET", "/status");
  if (!st) return Fail(st.status().message());
  if (a.Has("json")) {
    std::cout << json::Serialize(*st) << "\n";
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
  if (std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
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
  node::Config config;
  if (auto s = ParseRunConfig(run, std::getenv, &config); !s.ok()) return Fail(s.message(), 2);
  return Run(config);
}

int DashboardCommand(const Values& a) {
  auto r = Admin(a.Get("data-dir"), "POST", "/dashboard/codes");
  if (!r) return Fail(r.status().message());
  const std::string* url = r->find_string("url");
  if (!url) return Fail("the node's answer is malformed");
  std::cout << *url << "\n";
  if (a.Has("open")) {
    // Only a link of the form the node makes goes to the shell (nothing in it to quote).
    static const std::regex kLink("http://127\\.0\\.0\\.1:[0-9]{1,5}/login\\?code=[0-9a-f]{64}");
    if (!std::regex_match(*url, kLink)) return Fail("the node sent a link of an unknown form");
    const std::string cmd = "xdg-open '" + *url + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      return Fail("could not open a browser (xdg-open); open the link above by hand");
    }
  }
  return 0;
}

int HelpCommand(CommandLine* cl, const Values& a) {
  if (a.Has("markdown")) {
    std::cout << FlagTables(cl);
    return 0;
  }
  if (a.Has("all")) {
    std::cout << cl->Help(cl->root());
    // A line "*peerstack run*" starts a section of the man page help2man makes of this.
    for (CLI::App* cmd : cl->Commands())
      std::cout << "\n*peerstack " << CommandLine::PathOf(cmd) << "*\n" << cl->Help(cmd);
    return 0;
  }
  CLI::App* cmd = cl->root();
  for (const std::string& name : a.positional) {
    CLI::App* sub = nullptr;
    for (CLI::App* s : cmd->get_subcommands([](CLI::App*) { return true; }))
      if (s->get_name() == name) sub = s;
    if (sub == nullptr) {
      return Fail("no command '" + name + "'" +
                      (cmd == cl->root() ? "" : " under " + CommandLine::PathOf(cmd)) +
                      " (see peerstack --help)",
                  2);
    }
    cmd = sub;
  }
  std::cout << cl->Help(cmd);
  return 0;
}

}  // namespace

std::string FlagTables(CommandLine* cl) {
  std::string out;
  for (CLI::App* cmd : cl->Commands()) {
    if (cmd->get_name() == "help") continue;
    out += "#### `peerstack " + CommandLine::PathOf(cmd) + "`\n\n" + cl->FlagTable(cmd) + "\n";
  }
  return out;
}

Status ParseRunConfig(const std::vector<std::string>& args, const GetEnv& env, node::Config* c) {
  CommandLine cl("peerstack", kAbout);
  Define(&cl, c);
  std::vector<std::string> all{"run"};
  all.insert(all.end(), args.begin(), args.end());
  auto parsed = cl.Parse(all, env);
  if (!parsed) return parsed.status();
  return node::CheckConfig(*c);
}

int Main(std::vector<std::string> args) {
  if (bundle::HasPayload("/proc/self/exe")) return RunBundle(args);
  if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
    std::cout << "peerstack " << kVersion << "\n";
    return 0;
  }
  // `run` is the default command.
  if (args.empty() || (args[0].rfind("-", 0) == 0 && args[0] != "-h" && args[0] != "--help"))
    args.insert(args.begin(), "run");
  node::Config config;
  CommandLine cl("peerstack", kAbout);
  Define(&cl, &config);
  auto parsed = cl.Parse(args, std::getenv);
  if (!parsed) {
    if (parsed.status().code() == "help") {
      std::cout << parsed.status().message();
      return 0;
    }
    return Fail(parsed.status().message(), 2);
  }
  CLI::App* cmd = *parsed;
  const std::string path = CommandLine::PathOf(cmd);
  const Values values = CommandLine::ValuesOf(cmd);
  if (path == "run") {
    if (auto s = node::CheckConfig(config); !s.ok()) return Fail(s.message(), 2);
    return Run(config);
  }
  if (path == "id") return Id(values);
  if (path == "status") return StatusCommand(values);
  if (path == "keygen") return Keygen(values);
  if (path == "invite") return Invite(values);
  if (path == "init") return Init(values);
  if (path == "release create") return ReleaseCreate(values);
  if (path == "release sign") return ReleaseSign(values);
  if (path == "release publish") return ReleasePublish(values);
  if (path == "release status") return ReleaseStatus(values);
  if (path == "release rotate") return ReleaseRotate(values);
  if (path == "dashboard") return DashboardCommand(values);
  if (path == "help") return HelpCommand(&cl, values);
  std::cout << cl.Help(cl.root());
  return 2;
}

}  // namespace peerstack::cli
