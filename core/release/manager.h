// A node's releases (docs/releases.md): what it runs, what it fetches, when it switches, and
// what it reports. The node wires it to the network (a view of the ledger, report events),
// the plugin host (Replace) and the frontend (a directory per release); this module holds
// the decisions.
//
//   - What runs: outside dev mode, only files a release lists, each verified by hash, from
//     the content-addressed blob store (DATA_DIR/blobs) and a directory of links to them per
//     release (DATA_DIR/releases/<id>/front). The files the node was started with (plugins
//     and frontend directories) run when their code is one the network accepts (release 0,
//     which genesis records, or a release's own files); otherwise nothing runs until the
//     release is fetched. In dev mode nothing here runs: the plugin host loads and watches
//     the plugins directory as before.
//   - Following the ledger: every tick (and when poked), the release in force and the
//     rollout (rollout.h) say what to run; missing blobs are fetched from peers (the
//     release's author first, then members that reported it healthy, then the others;
//     fetcher.h); then the plugins switch (all or nothing) and the frontend after them.
//   - Health: a switch that fails (a plugin refused or its init fails) stays on the old
//     release and reports "failed". After a switch the node reports "healthy" once it ran a
//     second without dying (the next stage then waits the soak time after the reports), and
//     watches for max(soak, 10 s): more than max_error_percent
//     failed plugin calls (of at least 20) in that window send it back to what it ran before,
//     reporting "failed" (which then stands). A node that died three times while starting a
//     release (loading it, or within a second of running it) goes back too.
//   - DATA_DIR/release.json records what runs, the attempts and the failed releases
//     (written atomically), so a restart resumes the same release.
// Thread-safe. One worker thread; fetch answers arrive on the transport's loop and wait for it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/message.h"
#include "json/json.h"
#include "plugins/plugin_host.h"
#include "protocol/genesis.h"
#include "protocol/release.h"
#include "transport/transport.h"

namespace peerstack::release {

// The ledger as the manager needs it, taken under the network's lock.
struct NetworkView {
  bool has_ledger = false;
  bool is_member = false;
  std::string network_id;
  std::vector<std::string> accepted_codes;
  struct Release {
    std::string event;     // empty: release 0 (the genesis code) or none
    int64_t version = -1;  // -1: none
    std::string code;
    int64_t time_ms = 0;
    std::optional<protocol::Manifest> manifest;
    std::string author_url;                                         // the member that published it
    std::map<std::string, protocol::NetworkState::Report> reports;  // by member key
  };
  Release current, previous;
  std::vector<std::string> member_keys;
  std::vector<protocol::Member> members;
  std::map<std::string, std::string> member_urls;  // key -> URL, this node left out
};

// What a node runs.
struct App {
  std::string id;       // release event hash, or "local-<code>" for the files it was started with
  int64_t version = 0;  // the release's, 0 for local files
  std::string code;
  std::vector<plugins::PluginFile> plugins;
  std::string front_root;
  bool best_effort = false;  // the local files: a plugin that does not load is left out
  std::vector<protocol::FileEntry> files;  // every file, as listed (its bytes: the blob store)
};

struct ReleaseManagerOptions {
  const Clock* clock = nullptr;               // not owned
  transport::Transport* transport = nullptr;  // not owned
  std::string data_dir;
  std::string plugins_dir, front_dir;  // the files the node was started with
  std::string self_key;                // hex
  bool dev = false;
  std::function<NetworkView()> view;
  // Emits a release-report event ("healthy" or "failed").
  std::function<Status(const std::string& release, const std::string& status,
                       const std::string& reason)>
      report;
  // Runs an app: the plugins (all or nothing; an error leaves the old ones), then the front.
  std::function<Status(const App&)> install;
  std::function<void(const std::string& code)> code_changed;
  std::function<plugins::PluginCalls()> plugin_calls;
  int64_t tick_ms = 250;
  int64_t min_soak_ms = 10000;  // the error watch after a switch lasts at least this long
  int64_t min_rate_bytes_per_s = 256 * 1024;
  // Test hook (PEERSTACK_FAULT_BLOBS): serve blobs wrong on purpose: "flip" (one byte
  // changed), "long" (a byte more), "other" (another blob), "trickle" (1 byte/s).
  std::string fault;
};

class ReleaseManager {
 public:
  explicit ReleaseManager(ReleaseManagerOptions options);
  ~ReleaseManager();
  ReleaseManager(const ReleaseManager&) = delete;
  ReleaseManager& operator=(const ReleaseManager&) = delete;

  // The code this node presents before Start(): the recorded release's, else its local files'.
  std::string initial_code() const;
  // Decides and installs what to run now (synchronously), then starts the worker.
  Status Start();
  void Stop();
  // The ledger changed: look again now.
  void Poke();

  // GET /p2p/blob/<sha256>: a blob of the release in force or the one before, if stored here.
  http::Response HandleBlob(const http::Request& request);
  // For POST /releases: are all the manifest's files in the blob store, whole? ("missing").
  Status CheckBlobs(const protocol::Manifest& m) const;
  std::string blobs_dir() const;

  json::Value StatusJson() const;   // for /status "release"
  json::Value RolloutJson() const;  // for GET /releases: the rollout, member by member
  // What runs now (for /download), or nullopt while nothing does.
  std::optional<App> running() const;
  // The running release's version (0: its own files), or nullopt while nothing runs; no copy.
  std::optional<int64_t> running_version() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peerstack::release
