// The plugin host: loads plugins (shared libraries with the C ABI of plugin-sdk's plugin.h),
// mounts their routes under /api/<name>/, and runs their handlers.
//
// Loading (LoadAll at start; in dev mode also whenever a file in the directory changes):
//   hash the file, copy it to a read-only content-addressed path (cache_dir/<sha256>), load
//   exactly those bytes with RTLD_NOW | RTLD_LOCAL, check the entry symbol, the ABI version,
//   struct sizes, the name, version and routes, read plugins/<name>.json, call init. Every
//   refusal is logged once with its cause and listed in Status(); the rest keep serving.
// Serving: Handle() matches the route (public routes on the public listener; the admin
//   listener serves private and public ones), then defers the HTTP answer and runs the
//   handler on the executor's workers: a plugin error or exception gives 500, a call past
//   the time limit gives 504 (and is logged). A plugin not marked concurrent is serialised.
//   A plugin marked PS_PLUGIN_NONBLOCKING runs directly on the network thread instead (no
//   handoff: about twice the throughput for small handlers) without that isolation; one
//   call over nonblocking_budget moves it to the pool for good, with a log line.
// Replacing a whole set (a release, Replace()) works the same way for every plugin at once.
// Replacing (dev mode): the new version is loaded beside the old one and the route table is
//   swapped atomically; calls in flight on the old version finish; then the old version's
//   shutdown runs. Libraries are never unloaded (dlclose is unsafe with thread-locals and
//   with calls that never returned); retired code is simply never called again.
// Thread-safe. Stop() before destroying the store it uses.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "appdata/replica.h"
#include "base/result.h"
#include "http/message.h"
#include "json/json.h"
#include "store/store.h"

namespace peerstack::metrics {
class Writer;
}

namespace peerstack::plugins {

// What plugins can ask about the node (PS_INFO_*).
struct HostInfo {
  std::string node_id;
  std::string network_id;
  std::string public_url;
  std::string version;
};

struct PluginHostOptions {
  std::string plugins_dir;
  std::string cache_dir;  // content-addressed copies of loaded libraries
  std::shared_ptr<store::Store> store;
  // Replicated collections (ABI 1.1): the plugins' declarations go here and their writes
  // through it. Null: a plugin that declares collections is refused.
  std::shared_ptr<appdata::Replica> appdata;
  HostInfo info;
  std::chrono::milliseconds timeout{10000};  // per handler call; then 504
  // A PS_PLUGIN_NONBLOCKING plugin whose call takes longer is moved to the worker pool.
  std::chrono::milliseconds nonblocking_budget{20};
  size_t workers = 0;  // 0: max(2, cores)
  bool dev = false;    // watch plugins_dir and hot-swap changed plugins
  // Start() loads every *.so in plugins_dir (dev mode, and tests); false: nothing is loaded
  // until Replace() names a set (a node outside dev mode runs only its release's files).
  bool load_dir = true;
  std::chrono::milliseconds watch_interval{200};
  size_t max_file_bytes = 64u << 20;
};

// What is loaded, as values (the status page and the code hash are built from these).
struct PluginRoute {
  std::string method;
  std::string path;  // as mounted: /api/<name>/...
  bool is_private = false;
};
struct LoadedPlugin {
  std::string name, version, sha256;
  std::string file;  // the file name in plugins_dir
  bool concurrent = false;
  bool nonblocking = false;  // runs on the network thread (not demoted to the pool)
  std::vector<PluginRoute> routes;
  std::vector<std::pair<std::string, std::string>> collections;  // name, rule (ABI 1.1)
};
struct FailedPlugin {
  std::string file, reason;
};
// One file of a release, for Replace(): a verified, read-only, content-addressed path.
struct PluginFile {
  std::string file;    // its name in the release (what Plugins() shows)
  std::string path;    // where the bytes are
  std::string sha256;  // what they must hash to
};
struct PluginCalls {
  uint64_t calls = 0;
  uint64_t failures = 0;  // answered 500 or 504
};
struct PluginSet {
  std::vector<LoadedPlugin> loaded;  // by name
  std::vector<FailedPlugin> failed;
};
// {"loaded": [{name, version, sha256, file, concurrent, nonblocking, routes: [{method, path,
//  private}], collections: {name: rule}}], "failed": [{file, reason}]}
json::Value ToJson(const PluginSet& set);

class PluginHost {
 public:
  explicit PluginHost(PluginHostOptions options);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Loads every *.so in plugins_dir (sorted by name) unless load_dir is false; in dev mode
  // starts watching it.
  void Start();
  // Runs exactly this set from now on: each new library is loaded and initialised beside the
  // running ones (a file whose sha256 is already running is kept as it is), then the route
  // table switches at once; calls in flight finish on the old code, plugins not in the set
  // retire. All or nothing: when one file is refused (wrong hash, not a plugin, init fails,
  // a duplicate name) nothing changes and the reason is returned and listed in Plugins().
  // best_effort (the files a node was started with): the refused ones are listed and left
  // out, the rest run.
  Status Replace(const std::vector<PluginFile>& set, bool best_effort = false);
  // Calls and failures of the plugins running now, since each was loaded.
  PluginCalls Calls() const;
  // peerstack_plugin_calls_total, _errors_total, _call_duration_seconds (by plugin and
  // version) and peerstack_plugins_refused.
  void WriteMetrics(metrics::Writer& w) const;
  // What plugins get for PS_INFO_PUBLIC_URL from now on.
  void SetPublicUrl(const std::string& url);
  // What plugins get for PS_INFO_NETWORK_ID from now on.
  void SetNetworkId(const std::string& id);
  // Serves a request whose path starts with /api/. admin: it came through the admin listener.
  http::Response Handle(const http::Request& request, bool admin);
  // Stops watching and running calls, retires every plugin. Idempotent.
  void Stop();

  PluginSet Plugins() const;
  json::Value StatusJson() const { return ToJson(Plugins()); }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peerstack::plugins
