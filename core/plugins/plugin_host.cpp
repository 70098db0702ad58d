#include "plugins/plugin_host.h"

#include <dirent.h>
#include <sys/stat.h>

#define BOOST_DLL_USE_STD_FS
#include <algorithm>
#include <atomic>
#include <boost/dll/shared_library.hpp>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "base/metrics.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "http/static_files.h"
#include "peerstack/plugin.hpp"
#include "plugins/executor.h"
#include "store/blob_store.h"

// The opaque handles of plugin.h, defined by the host.
namespace peerstack::plugins {
// What PS_INFO_* answers; the public URL can change while plugins run.
struct SharedInfo {
  std::mutex mu;
  HostInfo info;
};
}  // namespace peerstack::plugins

struct ps_host {
  // Shared, so that a call still running after the host stopped finds valid objects (the
  // store then answers "closed").
  std::shared_ptr<peerstack::store::Store> store;
  std::shared_ptr<peerstack::appdata::Replica> appdata;  // null: no replicated collections
  std::shared_ptr<peerstack::plugins::SharedInfo> info;
  std::string name;        // empty until the descriptor was read
  std::string log_module;  // "plugin:<name>"
  std::string config = "{}";
};

struct ps_response {
  int status = 200;
  std::vector<peerstack::http::Header> headers;
  std::string body;
};

namespace peerstack::plugins {
namespace {

constexpr size_t kMaxKeyBytes = 1024;
constexpr size_t kMaxValueBytes = 1 << 20;
constexpr size_t kMaxRoutes = 256;
constexpr size_t kMaxResponseBytes = 64u << 20;

// Libraries stay mapped until the process exits (see plugin_host.h): they are kept here, in a
// registry that is never destroyed, rather than leaked, so leak checkers see them as reachable.
void KeepLoaded(std::unique_ptr<boost::dll::shared_library> library) {
  static std::mutex* mu = new std::mutex;
  static auto* kept = new std::vector<std::unique_ptr<boost::dll::shared_library>>;
  std::lock_guard<std::mutex> lock(*mu);
  kept->push_back(std::move(library));
}

// The smallest descriptor this host reads: ABI 1.0 ends with shutdown.
constexpr size_t kDescriptorV1Size = offsetof(ps_plugin, shutdown) + sizeof(void (*)(void*));
// ABI 1.1 adds the collection table.
constexpr size_t kDescriptorV11Size = offsetof(ps_plugin, collection_count) + sizeof(size_t);

// A plugin's name follows the same rule as a collection's (they are both namespaces).
bool ValidName(std::string_view n) { return appdata::ValidCollectionName(n); }

// MAJOR.MINOR.PATCH with optional -prerelease and +build of [0-9A-Za-z.-].
bool ValidSemver(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    const size_t start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == start || (i - start > 1 && v[start] == '0')) return false;
    if (part < 2) {
      if (i >= v.size() || v[i] != '.') return false;
      ++i;
    }
  }
  if (i == v.size()) return true;
  if (v[i] != '-' && v[i] != '+') return false;
  for (++i; i < v.size(); ++i) {
    const char c = v[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
          c == '-' || c == '+')) {
      return false;
    }
  }
  return true;
}

bool ValidMethod(std::string_view m) {
  return m == "GET" || m == "POST" || m == "PUT" || m == "DELETE" || m == "PATCH";
}

std::string FileName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct Route {
  std::string method;
  std::string pattern;
  bool is_private;
  uint32_t id;
};

// A loaded plugin. Shared by the route table and by calls in flight; the last owner to let
// go calls the plugin's shutdown (so it never runs while a handler does).
struct Loaded {
  std::string file;  // where it was found
  std::string sha256;
  std::string name;
  std::string version;
  bool concurrent = false;
  bool nonblocking = false;          // PS_PLUGIN_NONBLOCKING: run on network threads
  std::atomic<bool> demoted{false};  // broke that promise: back to the worker pool
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> failures{0};  // 500 (plugin error) or 504 (time limit)
  metrics::AtomicHistogram latency{{0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10}};  // of handle()
  std::vector<Route> routes;
  std::vector<appdata::CollectionSpec> collections;  // ABI 1.1
  const ps_plugin* desc = nullptr;
  std::unique_ptr<ps_host> ctx;
  std::timed_mutex serial;  // for plugins not marked concurrent

  ~Loaded() {
    if (desc && desc->shutdown) {
      try {
        desc->shutdown(desc->state);
      } catch (...) {
        // A C++ plugin's shutdown must not throw; nothing to do if one does anyway.
      }
    }
    PS_LOG(kInfo, "plugins") << "retired " << name << " " << version;
  }
};
using LoadedPtr = std::shared_ptr<Loaded>;

struct Table {
  std::map<std::string, LoadedPtr> by_name;
};

struct Failure {
  std::string reason;
};

// One request on its way to a plugin: a copy of what the plugin may read, because the
// connection's request buffer is reused once the HTTP answer (maybe a 504) is sent.
using Params = std::vector<std::pair<std::string, std::string>>;

struct Call {
  LoadedPtr plugin;
  uint32_t route_id = 0;
  http::Request request;  // the fields a plugin can see
  std::string route_path;
  Params params;
  bool admin = false;
  bool private_route = false;
  std::chrono::milliseconds timeout{0};
  std::shared_ptr<http::Responder> responder;
};

}  // namespace

struct PluginHost::Impl {
  PluginHostOptions options;
  std::shared_ptr<SharedInfo> info = std::make_shared<SharedInfo>();
  std::unique_ptr<Executor> executor;
  std::unique_ptr<store::BlobStore> cache;
  ps_host_api api{};

  mutable std::mutex mu;                                           // guards failed
  std::mutex load_mu;                                              // one load (or unload) at a time
  std::shared_ptr<const Table> table = std::make_shared<Table>();  // std::atomic_load/store
  std::map<std::string, Failure> failed;                           // by file path

  // Dev-mode watcher.
  std::thread watcher;
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool watch_stop = false;
  bool stopped = false;

  std::shared_ptr<const Table> Snapshot() const { return std::atomic_load(&table); }
  std::set<std::string> declared;  // plugins whose collections the replica knows (load_mu)

  // The replica knows the collections of exactly the plugins that run (ops for others are
  // refused). With load_mu held.
  void Redeclare() {
    if (!options.appdata) return;
    auto current = Snapshot();
    for (const std::string& name : declared) {
      if (!current->by_name.count(name)) (void)options.appdata->Declare(name, {});
    }
    declared.clear();
    for (const auto& [name, p] : current->by_name) {
      (void)options.appdata->Declare(name, p->collections);
      declared.insert(name);
    }
  }
  void Publish(std::shared_ptr<const Table> next) {
    std::atomic_store(&table, std::move(next));
    Redeclare();
  }

  void RecordFailure(const std::string& file, const std::string& reason) {
    PS_LOG(kError, "plugins") << "refused " << file << ": " << reason;
    std::lock_guard<std::mutex> lock(mu);
    failed[file] = Failure{reason};
  }
  void ClearFailure(const std::string& file) {
    std::lock_guard<std::mutex> lock(mu);
    failed.erase(file);
  }

  Status Load(const std::string& path);
  // Loads and initialises one library without publishing it. expected_sha: refuse other
  // bytes (empty: any); shown_file: the name Plugins() reports. For a set, duplicate names
  // are checked by the caller.
  Result<LoadedPtr> Prepare(const std::string& path, const std::string& expected_sha,
                            const std::string& shown_file, bool check_duplicate);
  Status Replace(const std::vector<PluginFile>& set, bool best_effort);
  http::Response Handle(const http::Request& request, bool admin);
  // private_route: the matched route is a private one (its handler writes for the owner).
  static http::Response Invoke(Loaded& p, uint32_t route_id, const http::Request& request,
                               std::string_view route_path, const Params& params, bool admin,
                               bool private_route, std::chrono::milliseconds wait_limit);
  void Watch();
  void BuildApi();
};

// ---- host callbacks -------------------------------------------------------------------

namespace {

log::Level ToLevel(ps_log_level level) {
  switch (level) {
    case PS_LOG_DEBUG:
      return log::Level::kDebug;
    case PS_LOG_INFO:
      return log::Level::kInfo;
    case PS_LOG_WARN:
      return log::Level::kWarn;
    default:
      return log::Level::kError;
  }
}

int CbLogEnabled(ps_host*, ps_log_level level) { return log::Enabled(ToLevel(level)) ? 1 : 0; }

void CbLog(ps_host* host, ps_log_level level, ps_str message) {
  if (!log::Enabled(ToLevel(level))) return;
  const std::string_view module =
      host->log_module.empty() ? std::string_view("plugin") : std::string_view(host->log_module);
  log::Write(ToLevel(level), module, sdk::FromPs(message).substr(0, 8192));
}

size_t CbInfo(ps_host* host, ps_info_key key, char* buf, size_t cap);
void CbConfig(ps_host* host, ps_bytes_sink sink, void* user) {
  sink(user, sdk::ToPs(host->config));
}

// The plugin's store, once its name (the namespace) is known: not during the entry call.
store::Store* StoreFor(ps_host* host) {
  if (host->name.empty()) return nullptr;
  return host->store.get();
}

ps_status CbKvGet(ps_host* host, ps_str key, ps_bytes_sink sink, void* user) {
  store::Store* st = StoreFor(host);
  if (!st) return PS_ERR_UNSUPPORTED;
  if (key.size > kMaxKeyBytes) return PS_ERR_TOO_LARGE;
  auto v = st->KvGet(host->name, std::string(sdk::FromPs(key)));
  if (!v) return PS_ERR_INTERNAL;
  if (!v->has_value()) return PS_ERR_NOT_FOUND;
  sink(user, sdk::ToPs(**v));
  return PS_OK;
}

ps_status CbKvPut(ps_host* host, ps_str key, ps_str value) {
  store::Store* st = StoreFor(host);
  if (!st) return PS_ERR_UNSUPPORTED;
  if (key.size > kMaxKeyBytes || value.size > kMaxValueBytes) return PS_ERR_TOO_LARGE;
  auto s = st->KvPut(host->name, std::string(sdk::FromPs(key)), std::string(sdk::FromPs(value)));
  if (!s.ok()) {
    PS_LOG(kError, "plugins") << host->name << ": cannot store a value: " << s.ToString();
    return PS_ERR_INTERNAL;
  }
  return PS_OK;
}

ps_status CbKvDelete(ps_host* host, ps_str key) {
  store::Store* st = StoreFor(host);
  if (!st) return PS_ERR_UNSUPPORTED;
  if (key.size > kMaxKeyBytes) return PS_ERR_TOO_LARGE;
  auto s = st->KvDelete(host->name, std::string(sdk::FromPs(key)));
  if (s.code() == "not_found") return PS_ERR_NOT_FOUND;
  if (!s.ok()) {
    PS_LOG(kError, "plugins") << host->name << ": cannot delete a value: " << s.ToString();
    return PS_ERR_INTERNAL;
  }
  return PS_OK;
}

ps_status CbKvList(ps_host* host, ps_str prefix, size_t limit, ps_kv_sink sink, void* user) {
  store::Store* st = StoreFor(host);
  if (!st) return PS_ERR_UNSUPPORTED;
  if (prefix.size > kMaxKeyBytes) return PS_ERR_TOO_LARGE;
  auto rows =
      st->KvList(host->name, std::string(sdk::FromPs(prefix)), std::min<size_t>(limit, 100000));
  if (!rows) return PS_ERR_INTERNAL;
  for (const auto& [k, v] : *rows) sink(user, sdk::ToPs(k), sdk::ToPs(v));
  return PS_OK;
}

// Who is writing on this thread: a private route's handler or init (the node's owner), or
// anything else: a public route's handler, or a thread the plugin started (which may act for
// a visitor). Replicated writes of the latter need a collection open to public writes.
thread_local bool tl_private_call = false;

ps_status RepStatus(const Status& s) {
  if (s.ok()) return PS_OK;
  const std::string& c = s.code();
  if (c == "not_found") return PS_ERR_NOT_FOUND;
  if (c == "invalid" || c == "unknown_collection") return PS_ERR_INVALID;
  if (c == "too_large") return PS_ERR_TOO_LARGE;
  if (c == "forbidden") return PS_ERR_FORBIDDEN;
  if (c == "busy") return PS_ERR_BUSY;
  if (c == "not_member") return PS_ERR_UNSUPPORTED;
  return PS_ERR_INTERNAL;
}

appdata::Replica* ReplicaFor(ps_host* host) {
  if (host->name.empty()) return nullptr;
  return host->appdata.get();
}

ps_status CbRepGet(ps_host* host, ps_str collection, ps_str key, ps_bytes_sink sink, void* user) {
  appdata::Replica* r = ReplicaFor(host);
  if (!r) return PS_ERR_UNSUPPORTED;
  if (key.size > appdata::kMaxKeyBytes) return PS_ERR_TOO_LARGE;
  auto v = r->Get(host->name, std::string(sdk::FromPs(collection)), std::string(sdk::FromPs(key)));
  if (!v) return PS_ERR_INTERNAL;
  if (!v->has_value()) return PS_ERR_NOT_FOUND;
  sink(user, sdk::ToPs(**v));
  return PS_OK;
}

ps_status CbRepPut(ps_host* host, ps_str collection, ps_str key, ps_str value) {
  appdata::Replica* r = ReplicaFor(host);
  if (!r) return PS_ERR_UNSUPPORTED;
  if (key.size > appdata::kMaxKeyBytes || value.size > appdata::kMaxValueBytes)
    return PS_ERR_TOO_LARGE;
  auto s = r->Put(host->name, std::string(sdk::FromPs(collection)), std::string(sdk::FromPs(key)),
                  std::string(sdk::FromPs(value)), !tl_private_call);
  if (!s.ok() && RepStatus(s) == PS_ERR_INTERNAL) {
    PS_LOG(kError, "plugins") << host->name
                              << ": cannot write a replicated value: " << s.ToString();
  }
  return RepStatus(s);
}

ps_status CbRepDelete(ps_host* host, ps_str collection, ps_str key) {
  appdata::Replica* r = ReplicaFor(host);
  if (!r) return PS_ERR_UNSUPPORTED;
  if (key.size > appdata::kMaxKeyBytes) return PS_ERR_TOO_LARGE;
  return RepStatus(r->Delete(host->name, std::string(sdk::FromPs(collection)),
                             std::string(sdk::FromPs(key)), !tl_private_call));
}

ps_status CbRepList(ps_host* host, ps_str collection, ps_str prefix, size_t limit, ps_kv_sink sink,
                    void* user) {
  appdata::Replica* r = ReplicaFor(host);
  if (!r) return PS_ERR_UNSUPPORTED;
  if (prefix.size > appdata::kMaxKeyBytes) return PS_ERR_TOO_LARGE;
  auto rows = r->List(host->name, std::string(sdk::FromPs(collection)),
                      std::string(sdk::FromPs(prefix)), std::min<size_t>(limit, 100000));
  if (!rows) return PS_ERR_INTERNAL;
  for (const auto& [k, v] : *rows) sink(user, sdk::ToPs(k), sdk::ToPs(v));
  return PS_OK;
}

uint64_t CbRepChanges(ps_host* host, ps_str collection) {
  appdata::Replica* r = ReplicaFor(host);
  return r ? r->Changes(host->name, std::string(sdk::FromPs(collection))) : 0;
}

ps_status CbStatus(ps_response* r, int status) {
  if (status < 200 || status > 599) return PS_ERR_INVALID;
  r->status = status;
  return PS_OK;
}

ps_status CbHeader(ps_response* r, ps_str name, ps_str value) {
  const std::string_view n = sdk::FromPs(name);
  const std::string_view v = sdk::FromPs(value);
  if (n.empty() || n.size() > 256 || v.size() > 8192) return PS_ERR_INVALID;
  std::string lower;
  for (char c : n) {
    const bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!token || c == '\0') return PS_ERR_INVALID;
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  for (char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') return PS_ERR_INVALID;
  }
  if (lower == "content-length" || lower == "connection" || lower == "date" || lower == "server" ||
      lower == "transfer-encoding") {
    return PS_ERR_INVALID;
  }
  r->headers.push_back({std::move(lower), std::string(v)});
  return PS_OK;
}

ps_status CbWrite(ps_response* r, ps_str bytes) {
  if (r->body.size() + bytes.size > kMaxResponseBytes) return PS_ERR_TOO_LARGE;
  r->body.append(sdk::FromPs(bytes));
  return PS_OK;
}

size_t CbInfo(ps_host* host, ps_info_key key, char* buf, size_t cap) {
  std::string value;
  HostInfo info;
  {
    std::lock_guard<std::mutex> lock(host->info->mu);
    info = host->info->info;
  }
  switch (key) {
    case PS_INFO_NODE_ID:
      value = info.node_id;
      break;
    case PS_INFO_NETWORK_ID:
      value = info.network_id;
      break;
    case PS_INFO_PUBLIC_URL:
      value = info.public_url;
      break;
    case PS_INFO_HOST_VERSION:
      value = info.version;
      break;
    case PS_INFO_PLUGIN_NAME:
      value = host->name;
      break;
    default:
      return 0;
  }
  if (buf && cap > 0) std::memcpy(buf, value.data(), std::min(cap, value.size()));
  return value.size();
}

}  // namespace

void PluginHost::Impl::BuildApi() {
  api.struct_size = sizeof(ps_host_api);
  api.abi_major = PEERSTACK_PLUGIN_ABI_MAJOR;
  api.abi_minor = PEERSTACK_PLUGIN_ABI_MINOR;
  api.log_enabled = &CbLogEnabled;
  api.log = &CbLog;
  api.info = &CbInfo;
  api.config = &CbConfig;
  api.kv_get = &CbKvGet;
  api.kv_put = &CbKvPut;
  api.kv_delete = &CbKvDelete;
  api.kv_list = &CbKvList;
  api.response_status = &CbStatus;
  api.response_header = &CbHeader;
  api.response_write = &CbWrite;
  api.rep_get = &CbRepGet;
  api.rep_put = &CbRepPut;
  api.rep_delete = &CbRepDelete;
  api.rep_list = &CbRepList;
  api.rep_changes = &CbRepChanges;
}

// ---- loading --------------------------------------------------------------------------

Result<LoadedPtr> PluginHost::Impl::Prepare(const std::string& path,
                                            const std::string& expected_sha,
                                            const std::string& shown_file, bool check_duplicate) {
  auto refuse = [&](const std::string& reason) {
    RecordFailure(shown_file, reason);
    return Status::Error("plugin_refused", reason);
  };
  auto bytes = files::ReadFile(path, options.max_file_bytes);
  if (!bytes) return refuse("cannot read: " + bytes.status().message());
  if (bytes->size() < 4 || bytes->compare(0, 4,
                                          "\x7f"
                                          "ELF") != 0) {
    return refuse("not a shared library (no ELF header)");
  }
  // The same bytes from the same file are already serving (a touched file, a copy of the
  // same build): nothing to do. dlopen would hand back the loaded library anyway.
  const std::string digest = crypto::Sha256Hex(*bytes);
  if (!expected_sha.empty() && !crypto::ConstantTimeEqual(digest, expected_sha)) {
    return refuse("the file's sha256 is " + digest + ", not the " + expected_sha +
                  " its release lists");
  }
  if (check_duplicate) {
    for (const auto& [n, p] : Snapshot()->by_name) {
      if (p->file == path && p->sha256 == digest) return LoadedPtr();
    }
  }
  // Load exactly the bytes we hashed, from a path nobody else writes (0444, by hash).
  // (Stored already when the same bytes were loaded before: no second hash of them.)
  Result<std::string> hash =
      cache->PathOf(digest).ok() ? Result<std::string>(digest) : cache->Put(*bytes);
  if (!hash) return refuse("cannot cache: " + hash.status().message());
  auto cached = cache->PathOf(*hash);
  if (!cached) return refuse("cannot cache: " + cached.status().message());

  auto owned = std::make_unique<boost::dll::shared_library>();
  try {
    owned->load(*cached, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse(std::string("not a loadable shared library: ") + e.what());
  }
  // Never dlclose once loaded: its constructors ran, it may have started threads or
  // registered handlers; and a retired version may still be running a stuck call.
  boost::dll::shared_library* library = owned.get();
  KeepLoaded(std::move(owned));
  if (!library->has(PEERSTACK_PLUGIN_ENTRY_SYMBOL)) {
    return refuse("missing entry symbol " PEERSTACK_PLUGIN_ENTRY_SYMBOL);
  }
  auto entry =
      library->get<const ps_plugin*(const ps_host_api*, ps_host*)>(PEERSTACK_PLUGIN_ENTRY_SYMBOL);

  auto loaded = std::make_shared<Loaded>();
  loaded->file = shown_file;
  loaded->sha256 = *hash;
  loaded->ctx = std::make_unique<ps_host>();
  loaded->ctx->store = options.store;
  loaded->ctx->appdata = options.appdata;
  loaded->ctx->info = info;
  const ps_plugin* desc = nullptr;
  try {
    desc = entry(&api, loaded->ctx.get());
  } catch (...) {
    desc = nullptr;  // a C entry cannot throw; a broken C++ one is refused like a NULL
  }
  if (desc == nullptr) return refuse("the entry point returned no descriptor");
  if (desc->struct_size < kDescriptorV1Size) return refuse("descriptor too small for ABI 1.0");
  if (desc->abi_major != PEERSTACK_PLUGIN_ABI_MAJOR) {
    return refuse("built for ABI " + std::to_string(desc->abi_major) + "." +
                  std::to_string(desc->abi_minor) + "; this host supports ABI major " +
                  std::to_string(PEERSTACK_PLUGIN_ABI_MAJOR));
  }
  // From here the descriptor is readable: a refusal lets the plugin free itself.
  auto refuse_readable = [&](const std::string& reason) {
    if (desc->shutdown) desc->shutdown(desc->state);
    return refuse(reason);
  };
  if (desc->abi_minor > PEERSTACK_PLUGIN_ABI_MINOR) {
    return refuse_readable("built for ABI 1." + std::to_string(desc->abi_minor) +
                           ", newer than this host's 1." +
                           std::to_string(PEERSTACK_PLUGIN_ABI_MINOR));
  }
  const std::string name = desc->name ? desc->name : "";
  if (!ValidName(name)) return refuse_readable("invalid plugin name '" + name.substr(0, 40) + "'");
  const std::string version = desc->version ? desc->version : "";
  if (!ValidSemver(version)) {
    return refuse_readable("plugin " + name + ": invalid version '" + version.substr(0, 40) + "'");
  }
  if (desc->handle == nullptr) return refuse_readable("plugin " + name + " has no handler");
  if (desc->route_count > kMaxRoutes || (desc->route_count > 0 && desc->routes == nullptr)) {
    return refuse_readable("plugin " + name + ": bad route table");
  }
  std::vector<Route> routes;
  for (size_t i = 0; i < desc->route_count; ++i) {
    const ps_route& r = desc->routes[i];
    const std::string method = r.method ? r.method : "";
    const std::string pattern = r.pattern ? r.pattern : "";
    if (!ValidMethod(method)) {
      return refuse_readable("plugin " + name + ": bad route method '" + method.substr(0, 16) +
                             "'");
    }
    if (!sdk::ValidPattern(pattern)) {
      return refuse_readable("plugin " + name + ": bad route pattern '" + pattern.substr(0, 64) +
                             "'");
    }
    const bool is_private = (r.flags & PS_ROUTE_PRIVATE) != 0;
    for (const Route& other : routes) {
      if (other.method == method && other.pattern == pattern && other.is_private == is_private) {
        return refuse_readable("plugin " + name + ": duplicate route " + method + " " + pattern);
      }
    }
    routes.push_back({method, pattern, is_private, r.id});
  }
  if (check_duplicate) {
    auto current = Snapshot();
    auto it = current->by_name.find(name);
    if (it != current->by_name.end() && it->second->file != path) {
      return refuse_readable("duplicate plugin name '" + name + "' (already loaded from " +
                             it->second->file + ")");
    }
  }
  // Configuration: plugins/<name>.json, validated as JSON.
  std::string config = "{}";
  const std::string config_path = options.plugins_dir + "/" + name + ".json";
  if (files::Exists(config_path)) {
    auto text = files::ReadFile(config_path, 1 << 20);
    if (!text) return refuse_readable("plugin " + name + ": cannot read " + config_path);
    auto parsed = json::Parse(*text);
    if (!parsed) {
      return refuse_readable("plugin " + name + ": " + config_path + " is not valid JSON (" +
                             parsed.status().message() + ")");
    }
    config = std::move(text).value();
  }
  loaded->ctx->name = name;
  loaded->ctx->log_module = "plugin:" + name;
  loaded->ctx->config = std::move(config);
  loaded->name = name;
  loaded->version = version;
  loaded->concurrent = (desc->flags & PS_PLUGIN_CONCURRENT) != 0;
  loaded->nonblocking = (desc->flags & PS_PLUGIN_NONBLOCKING) != 0;
  loaded->routes = std::move(routes);
  // Replicated collections (ABI 1.1), declared before init so that init may write to them.
  if (desc->abi_minor >= 1 && desc->struct_size >= kDescriptorV11Size &&
      desc->collection_count > 0) {
    if (desc->collection_count > appdata::kMaxCollections || desc->collections == nullptr) {
      return refuse_readable("plugin " + name + ": bad collection table (at most 16)");
    }
    // Stepped through by the first element's size (the struct may grow in later minors).
    const size_t stride = desc->collections[0].struct_size;
    if (stride < offsetof(ps_collection, rule) + sizeof(uint32_t) || stride > 4096) {
      return refuse_readable("plugin " + name + ": bad collection table (struct_size " +
                             std::to_string(stride) + ")");
    }
    for (size_t i = 0; i < desc->collection_count; ++i) {
      const ps_collection& c = *reinterpret_cast<const ps_collection*>(
          reinterpret_cast<const char*>(desc->collections) + i * stride);
      if (c.struct_size != stride)
        return refuse_readable("plugin " + name + ": collections of different sizes");
      appdata::CollectionSpec spec;
      spec.name = c.name ? c.name : "";
      spec.rule = static_cast<appdata::Rule>(c.rule & 0xff);
      spec.public_writes = (c.rule & PS_REP_PUBLIC_WRITES) != 0;
      if ((c.rule & ~uint32_t{0x1ff}) != 0) {
        return refuse_readable("plugin " + name + ": collection " + spec.name.substr(0, 32) +
                               " has unknown flags");
      }
      loaded->collections.push_back(std::move(spec));
    }
    if (!options.appdata)
      return refuse_readable("plugin " + name +
                             " declares replicated collections; this node has no app data store");
  }
  if (options.appdata) {
    declared.insert(name);  // Redeclare puts the running set back if this one is refused
    if (auto s = options.appdata->Declare(name, loaded->collections); !s.ok()) {
      return refuse_readable("plugin " + name + ": " + s.message());
    }
  }
  if (desc->init) {
    ps_status st = PS_ERR_INTERNAL;
    tl_private_call = true;  // init writes for the node's owner
    try {
      st = desc->init(desc->state);
    } catch (...) {
    }
    tl_private_call = false;
    if (st != PS_OK) {
      return refuse_readable("plugin " + name + ": init failed (status " + std::to_string(st) +
                             ")");
    }
  }
  loaded->desc = desc;  // from now on, ~Loaded calls shutdown
  return loaded;
}

Status PluginHost::Impl::Load(const std::string& path) {
  std::lock_guard<std::mutex> load_lock(load_mu);
  // The same bytes from the same file are already serving (a touched file, a copy of the
  // same build): nothing to do. dlopen would hand back the loaded library anyway.
  auto prepared = Prepare(path, "", path, /*check_duplicate=*/true);
  if (!prepared) {
    Redeclare();  // Prepare may have declared the refused version's collections
    return prepared.status();
  }
  LoadedPtr loaded = *prepared;
  if (!loaded) {
    ClearFailure(path);
    return Status::Ok();  // unchanged
  }
  // Publish: a new table with this plugin (replacing an older version of it).
  LoadedPtr replaced;
  {
    auto next = std::make_shared<Table>(*Snapshot());
    auto& slot = next->by_name[loaded->name];
    replaced = slot;
    slot = loaded;
    Publish(std::shared_ptr<const Table>(std::move(next)));
  }
  ClearFailure(path);
  if (options.dev) {
    PS_LOG(kWarn, "plugins") << "dev mode: loaded unsigned plugin " << loaded->name << " "
                             << loaded->version << " from " << path;
  }
  PS_LOG(kInfo, "plugins") << (replaced ? "replaced " : "loaded ") << loaded->name << " "
                           << loaded->version
                           << (replaced ? " (was " + replaced->version + ")" : std::string())
                           << ", sha256 " << loaded->sha256 << ", " << loaded->routes.size()
                           << " routes";
  return Status::Ok();
}

Status PluginHost::Impl::Replace(const std::vector<PluginFile>& set, bool best_effort) {
  std::lock_guard<std::mutex> load_lock(load_mu);
  auto current = Snapshot();
  auto next = std::make_shared<Table>();
  std::vector<std::string> changed;
  {
    std::lock_guard<std::mutex> lock(mu);
    failed.clear();
  }
  for (const PluginFile& f : set) {
    // Unchanged bytes keep running as they are: no second init, no lost state.
    LoadedPtr same;
    for (const auto& [n, p] : current->by_name) {
      if (p->sha256 == f.sha256) same = p;
    }
    LoadedPtr loaded = same;
    if (!loaded) {
      auto prepared = Prepare(f.path, f.sha256, f.file, /*check_duplicate=*/false);
      if (!prepared && best_effort) continue;  // listed in failed
      if (!prepared) {
        Redeclare();  // the prepared ones retire with `next`
        return prepared.status();
      }
      loaded = *prepared;
      changed.push_back(loaded->name + " " + loaded->version);
    }
    if (next->by_name.count(loaded->name)) {
      RecordFailure(f.file, "duplicate plugin name '" + loaded->name + "' (already loaded from " +
                                next->by_name[loaded->name]->file + ")");
      if (best_effort) continue;
      Redeclare();
      return Status::Error("plugin_refused",
                           "duplicate plugin name '" + loaded->name + "' in the release");
    }
    next->by_name[loaded->name] = loaded;
  }
  Publish(std::shared_ptr<const Table>(std::move(next)));
  PS_LOG(kInfo, "plugins") << "switched to a set of " << set.size() << " plugins ("
                           << (changed.empty() ? std::string("none changed")
                                               : std::to_string(changed.size()) + " new")
                           << "); calls in flight finish on the old code";
  return Status::Ok();
}

// ---- serving --------------------------------------------------------------------------

http::Response PluginHost::Impl::Handle(const http::Request& request, bool admin) {
  // /api/<name>[/rest]
  std::string_view rest = std::string_view(request.path).substr(5);
  const size_t slash = rest.find('/');
  const std::string name(rest.substr(0, slash));
  const std::string_view route_path =
      slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  auto snapshot = Snapshot();
  auto it = snapshot->by_name.find(name);
  if (it == snapshot->by_name.end()) {
    return http::JsonError(404, "not_found", "no plugin named '" + name.substr(0, 64) + "'");
  }
  const LoadedPtr& plugin = it->second;
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  const Route* match = nullptr;
  std::vector<std::pair<std::string, std::string>> params;
  std::string allow;
  for (const Route& r : plugin->routes) {
    if (r.is_private && !admin) continue;
    std::vector<std::pair<std::string, std::string>> found;
    if (!sdk::MatchPattern(r.pattern, route_path, &found)) continue;
    if (r.method == method) {
      match = &r;
      params = std::move(found);
      break;
    }
    if (allow.find(r.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + r.method;
  }
  if (!match) {
    if (!allow.empty()) {
      http::Response resp =
          http::JsonError(405, "method_not_allowed", method + " is not allowed here");
      resp.set("allow", allow);
      return resp;
    }
    return http::JsonError(404, "not_found", "no such route in plugin " + name);
  }
  for (auto& [k, v] : params) {
    std::string decoded;
    if (!http::PercentDecode(v, &decoded)) {
      return http::JsonError(400, "bad_path", "malformed percent-encoding in the path");
    }
    v = std::move(decoded);
  }

  if (plugin->nonblocking && !plugin->demoted.load(std::memory_order_relaxed)) {
    // Declared non-blocking: run on this network thread, no handoff, no copy.
    const auto start = std::chrono::steady_clock::now();
    http::Response out = Invoke(*plugin, match->id, request, route_path, params, admin,
                                match->is_private, std::chrono::milliseconds::max());
    const auto took = std::chrono::steady_clock::now() - start;
    if (took > options.nonblocking_budget && !plugin->demoted.exchange(true)) {
      PS_LOG(kError, "plugins")
          << plugin->name << " declares itself non-blocking but " << request.method << " "
          << request.path << " took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
          << " ms; its calls now run on the worker pool";
    }
    return out;
  }

  // Everything the plugin may read is copied: the connection's request buffer is reused
  // once the HTTP answer (maybe a 504) is sent, while the call may still run.
  auto call = std::make_shared<Call>();
  call->plugin = plugin;
  call->route_id = match->id;
  call->request.method = request.method;
  call->request.path = request.path;
  call->request.query = request.query;
  call->request.body = request.body;
  call->request.remote_address = request.remote_address;
  call->request.headers = request.headers;
  call->route_path = std::string(route_path);
  call->params = std::move(params);
  call->admin = admin;
  call->private_route = match->is_private;
  call->timeout = options.timeout;
  call->responder = request.Defer();
  if (!call->responder) {
    return http::JsonError(500, "internal", "plugin routes need a deferring server");
  }
  auto run = [call]() {
    call->responder->Send(Invoke(*call->plugin, call->route_id, call->request, call->route_path,
                                 call->params, call->admin, call->private_route, call->timeout));
  };
  auto on_timeout = [call, timeout = options.timeout]() {
    call->plugin->failures.fetch_add(1, std::memory_order_relaxed);
    PS_LOG(kError, "plugins") << call->plugin->name << ": " << call->request.method << " "
                              << call->request.path << " took longer than " << timeout.count()
                              << " ms; answered 504";
    call->responder->Send(
        http::JsonError(504, "plugin_timeout", "the plugin did not answer in time"));
  };
  if (!executor->Submit(run, on_timeout)) {
    call->responder->Send(http::JsonError(503, "busy", "too many plugin calls waiting"));
  }
  return http::Response::Deferred();
}

// Calls the plugin's handle() for one request and turns the outcome into an HTTP response.
// wait_limit bounds the wait for a serialised plugin (a hung handler must not pile up
// blocked workers behind it); on expiry the answer is 504 (the watchdog's, when pooled).
http::Response PluginHost::Impl::Invoke(Loaded& p, uint32_t route_id, const http::Request& request,
                                        std::string_view route_path, const Params& params,
                                        bool admin, bool private_route,
                                        std::chrono::milliseconds wait_limit) {
  ps_header header_buf[32];
  std::vector<ps_header> header_vec;
  ps_header* headers = header_buf;
  if (request.headers.size() > std::size(header_buf)) {
    header_vec.resize(request.headers.size());
    headers = header_vec.data();
  }
  for (size_t i = 0; i < request.headers.size(); ++i) {
    headers[i] = {sdk::ToPs(request.headers[i].name), sdk::ToPs(request.headers[i].value)};
  }
  ps_param c_params[16];
  const size_t param_count = std::min(params.size(), std::size(c_params));
  for (size_t i = 0; i < param_count; ++i) {
    c_params[i] = {sdk::ToPs(params[i].first), sdk::ToPs(params[i].second)};
  }
  ps_request req{};
  req.struct_size = sizeof(ps_request);
  req.method = sdk::ToPs(request.method);
  req.path = sdk::ToPs(request.path);
  req.route_path = sdk::ToPs(route_path);
  req.query = sdk::ToPs(request.query);
  req.headers = headers;
  req.header_count = request.headers.size();
  req.params = c_params;
  req.param_count = param_count;
  req.body = sdk::ToPs(request.body);
  req.remote_address = sdk::ToPs(request.remote_address);
  req.is_admin = admin ? 1 : 0;
  ps_response resp;
  ps_status st = PS_ERR_INTERNAL;
  // Measured, not used for decisions: the steady clock directly.
  const auto started = std::chrono::steady_clock::now();
  {
    std::unique_lock<std::timed_mutex> serial(p.serial, std::defer_lock);
    if (!p.concurrent) {
      const bool locked = wait_limit == std::chrono::milliseconds::max()
                              ? (serial.lock(), true)
                              : serial.try_lock_for(wait_limit);
      if (!locked)
        return http::JsonError(504, "plugin_timeout", "the plugin did not answer in time");
    }
    tl_private_call = admin && private_route;
    try {
      st = p.desc->handle(p.desc->state, route_id, &req, &resp);
    } catch (...) {
      st = PS_ERR_INTERNAL;  // a C++ plugin without the SDK's barrier
    }
    tl_private_call = false;
  }
  p.calls.fetch_add(1, std::memory_order_relaxed);
  p.latency.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (st != PS_OK) {
    p.failures.fetch_add(1, std::memory_order_relaxed);
    PS_LOG(kError, "plugins") << p.name << ": " << request.method << " " << request.path
                              << " failed with status " << static_cast<int>(st);
    return http::JsonError(500, "plugin_error", "the plugin failed");
  }
  http::Response out;
  out.status = resp.status;
  out.headers = std::move(resp.headers);
  out.body = std::move(resp.body);
  return out;
}

// ---- dev-mode watcher -----------------------------------------------------------------

namespace {

struct FileSig {
  off_t size = 0;
  int64_t mtime_ns = 0;
  ino_t inode = 0;
  bool operator==(const FileSig&) const = default;
};

std::map<std::string, FileSig> ScanSharedLibraries(const std::string& dir) {
  std::map<std::string, FileSig> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 4 || name.compare(name.size() - 3, 3, ".so") != 0 || name[0] == '.') continue;
    const std::string path = dir + "/" + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out[path] = FileSig{st.st_size,
                        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                        st.st_ino};
  }
  ::closedir(d);
  return out;
}

}  // namespace

void PluginHost::Impl::Watch() {
  std::map<std::string, FileSig> settled = ScanSharedLibraries(options.plugins_dir);
  std::map<std::string, FileSig> previous = settled;
  std::unique_lock<std::mutex> lock(watch_mu);
  while (!watch_stop) {
    watch_cv.wait_for(lock, options.watch_interval);
    if (watch_stop) break;
    lock.unlock();
    const auto now = ScanSharedLibraries(options.plugins_dir);
    for (const auto& [path, sig] : now) {
      // Load once a changed file looks the same on two scans in a row (a copy is finished).
      auto prev = previous.find(path);
      auto done = settled.find(path);
      const bool stable = prev != previous.end() && prev->second == sig;
      const bool changed = done == settled.end() || !(done->second == sig);
      if (stable && changed) {
        settled[path] = sig;
        (void)Load(path);
      }
    }
    for (auto it = settled.begin(); it != settled.end();) {
      if (now.count(it->first) == 0) {
        // Removed from the directory: retire the plugin loaded from it.
        std::lock_guard<std::mutex> load_lock(load_mu);
        auto next = std::make_shared<Table>(*Snapshot());
        for (auto p = next->by_name.begin(); p != next->by_name.end();) {
          p = p->second->file == it->first ? next->by_name.erase(p) : std::next(p);
        }
        Publish(std::shared_ptr<const Table>(std::move(next)));
        ClearFailure(it->first);
        PS_LOG(kInfo, "plugins") << "removed " << it->first;
        it = settled.erase(it);
      } else {
        ++it;
      }
    }
    previous = now;
    lock.lock();
  }
}

// ---- PluginHost -----------------------------------------------------------------------

PluginHost::PluginHost(PluginHostOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->info->info = impl_->options.info;
  impl_->BuildApi();
  impl_->cache = std::make_unique<store::BlobStore>(impl_->options.cache_dir);
  Executor::Options eo;
  eo.workers = impl_->options.workers != 0
                   ? impl_->options.workers
                   : std::max<size_t>(2, std::thread::hardware_concurrency());
  eo.max_workers = eo.workers + 32;
  eo.timeout = impl_->options.timeout;
  impl_->executor = std::make_unique<Executor>(eo);
}

PluginHost::~PluginHost() { Stop(); }

void PluginHost::Start() {
  if (!impl_->options.load_dir) return;  // the node installs a release with Replace()
  const auto found = ScanSharedLibraries(impl_->options.plugins_dir);
  if (!files::Exists(impl_->options.plugins_dir)) {
    PS_LOG(kInfo, "plugins") << "no plugins directory " << impl_->options.plugins_dir;
  }
  for (const auto& [path, sig] : found) (void)impl_->Load(path);
  if (impl_->options.dev) {
    PS_LOG(kWarn, "plugins") << "dev mode: watching " << impl_->options.plugins_dir
                             << " and loading unsigned plugins";
    impl_->watcher = std::thread([impl = impl_] { impl->Watch(); });
  }
}

void PluginHost::SetPublicUrl(const std::string& url) {
  std::lock_guard<std::mutex> lock(impl_->info->mu);
  impl_->info->info.public_url = url;
}

void PluginHost::SetNetworkId(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->info->mu);
  impl_->info->info.network_id = id;
}

Status PluginHost::Replace(const std::vector<PluginFile>& set, bool best_effort) {
  return impl_->Replace(set, best_effort);
}

void PluginHost::WriteMetrics(metrics::Writer& w) const {
  auto snapshot = impl_->Snapshot();
  w.Family("peerstack_plugin_calls_total", "counter",
           "Calls into a plugin's handler, by plugin and version.");
  for (const auto& [name, p] : snapshot->by_name)
    w.Sample("peerstack_plugin_calls_total", {{"plugin", name}, {"version", p->version}},
             static_cast<double>(p->calls.load(std::memory_order_relaxed)));
  w.Family("peerstack_plugin_errors_total", "counter",
           "Plugin calls answered 500 (the plugin failed) or 504 (it took too long).");
  for (const auto& [name, p] : snapshot->by_name)
    w.Sample("peerstack_plugin_errors_total", {{"plugin", name}, {"version", p->version}},
             static_cast<double>(p->failures.load(std::memory_order_relaxed)));
  w.Family("peerstack_plugin_call_duration_seconds", "histogram",
           "How long a plugin's handler ran, by plugin.");
  for (const auto& [name, p] : snapshot->by_name)
    w.Histogram("peerstack_plugin_call_duration_seconds", p->latency.Read(),
                {{"plugin", name}, {"version", p->version}});
  w.Gauge("peerstack_plugins_refused", "Plugin files found but not loaded (see /status).",
          static_cast<double>(Plugins().failed.size()));
}

PluginCalls PluginHost::Calls() const {
  PluginCalls c;
  for (const auto& [name, p] : impl_->Snapshot()->by_name) {
    c.calls += p->calls.load(std::memory_order_relaxed);
    c.failures += p->failures.load(std::memory_order_relaxed);
  }
  return c;
}

http::Response PluginHost::Handle(const http::Request& request, bool admin) {
  return impl_->Handle(request, admin);
}

void PluginHost::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  {
    std::lock_guard<std::mutex> lock(impl_->watch_mu);
    impl_->watch_stop = true;
  }
  impl_->watch_cv.notify_all();
  if (impl_->watcher.joinable()) impl_->watcher.join();
  impl_->executor->Stop();
  // Retire every plugin (each one's shutdown runs when its last call has let go).
  std::atomic_store(&impl_->table, std::shared_ptr<const Table>(std::make_shared<Table>()));
}

PluginSet PluginHost::Plugins() const {
  PluginSet set;
  for (const auto& [name, p] : impl_->Snapshot()->by_name) {
    LoadedPlugin l{name,
                   p->version,
                   p->sha256,
                   FileName(p->file),
                   p->concurrent,
                   p->nonblocking && !p->demoted.load(),
                   {},
                   {}};
    for (const Route& r : p->routes) {
      l.routes.push_back(
          {r.method, "/api/" + name + (r.pattern == "/" ? "/" : r.pattern), r.is_private});
    }
    for (const appdata::CollectionSpec& c : p->collections) {
      l.collections.emplace_back(
          c.name, std::string(appdata::RuleName(c.rule)) + (c.public_writes ? "+public" : ""));
    }
    set.loaded.push_back(std::move(l));
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [file, f] : impl_->failed) set.failed.push_back({FileName(file), f.reason});
  return set;
}

json::Value ToJson(const PluginSet& set) {
  json::Array loaded;
  for (const LoadedPlugin& p : set.loaded) {
    json::Array routes;
    for (const PluginRoute& r : p.routes) {
      routes.push_back(
          json::Object{{"method", r.method}, {"path", r.path}, {"private", r.is_private}});
    }
    loaded.push_back(json::Object{{"name", p.name},
                                  {"version", p.version},
                                  {"sha256", p.sha256},
                                  {"file", p.file},
                                  {"concurrent", p.concurrent},
                                  {"nonblocking", p.nonblocking},
                                  {"routes", std::move(routes)},
                                  {"collections", [&] {
                                     json::Object c;
                                     for (const auto& [n, r] : p.collections) c.emplace(n, r);
                                     return c;
                                   }()}});
  }
  json::Array failed;
  for (const FailedPlugin& f : set.failed)
    failed.push_back(json::Object{{"file", f.file}, {"reason", f.reason}});
  return json::Object{{"loaded", std::move(loaded)}, {"failed", std::move(failed)}};
}

}  // namespace peerstack::plugins
