#include "release/manager.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "protocol/event.h"
#include "release/app_files.h"
#include "release/fetcher.h"
#include "release/rollout.h"
#include "store/blob_store.h"

namespace peerstack::release {
namespace {

constexpr int64_t kMinCallsForHealth = 20;
constexpr int64_t kRestartsBeforeGivingUp = 3;
// A node that dies this soon after starting a release (its libraries loaded and initialised)
// counts it as a failed attempt; later deaths are not the release's to judge.
constexpr int64_t kCrashWindowMs = 1000;
constexpr size_t kMaxBlobAnswers = 16;  // blob requests served at once
constexpr size_t kMaxStalled = 64;      // test hook: answers held back

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// What release.json holds.
struct Record {
  std::string running;   // app id
  std::string previous;  // the app id before it
  std::string attempting;
  int64_t attempts = 0;
  std::set<std::string> failed;   // release events that failed here
  std::set<std::string> healthy;  // release events reported healthy from here
  std::set<std::string> reported_failed;

  json::Value ToJson() const {
    return json::Object{
        {"attempting", attempting},
        {"attempts", attempts},
        {"failed", json::Array(failed.begin(), failed.end())},
        {"healthy", json::Array(healthy.begin(), healthy.end())},
        {"previous", previous},
        {"reported_failed", json::Array(reported_failed.begin(), reported_failed.end())},
        {"running", running}};
  }
  static Record FromJson(const json::Value& v) {
    Record r;
    if (const std::string* s = v.find_string("running")) r.running = *s;
    if (const std::string* s = v.find_string("previous")) r.previous = *s;
    if (const std::string* s = v.find_string("attempting")) r.attempting = *s;
    if (const int64_t* n = v.find_int("attempts")) r.attempts = *n;
    auto set_of = [&](const char* key, std::set<std::string>* out) {
      if (const json::Value* a = v.find(key); a && a->is_array()) {
        for (const json::Value& x : a->as_array()) {
          if (x.is_string()) out->insert(x.as_string());
        }
      }
    };
    set_of("failed", &r.failed);
    set_of("healthy", &r.healthy);
    set_of("reported_failed", &r.reported_failed);
    return r;
  }
};

}  // namespace

struct ReleaseManager::Impl {
  ReleaseManagerOptions o;
  store::BlobStore blobs;
  std::unique_ptr<BlobFetcher> fetcher;

  mutable std::mutex mu;  // everything below
  std::vector<AppFile> local;
  std::string local_code;
  std::string local_error;  // why the local files could not be read
  Record record;
  std::map<std::string, App> apps;  // installed here, by id (to go back without a fetch)
  std::string running;              // app id; empty: nothing runs
  int64_t switched_at = 0;          // steady ms
  plugins::PluginCalls calls_at_switch;
  std::string phase = "starting";
  std::string detail;
  int64_t target_version = -1;
  std::string target_event;
  int64_t stage = -1;
  bool expired = false;
  mutable std::mutex listed_mu;  // apart from mu: blob requests never wait for a switch
  std::set<std::string> listed;  // sha256 of the files of the releases in force (served)
  bool first_pass = true;

  // The worker.
  std::mutex wake_mu;
  std::condition_variable wake_cv;
  bool poked = false;
  bool stopping = false;
  std::thread worker;

  // Blob answers.
  std::atomic<size_t> answering{0};
  std::mutex stalled_mu;
  std::deque<std::pair<int64_t, std::shared_ptr<http::Responder>>> stalled;

  explicit Impl(ReleaseManagerOptions options)
      : o(std::move(options)), blobs(o.data_dir + "/blobs") {}

  std::string RecordPath() const { return o.data_dir + "/release.json"; }
  std::string ReleaseDir(const std::string& id) const { return o.data_dir + "/releases/" + id; }

  void Save() {
    if (auto s =
            files::WriteFileAtomic(RecordPath(), json::Serialize(record.ToJson()) + "\n", 0644);
        !s.ok()) {
      PS_LOG(kError, "release") << "cannot record the running release: " << s.ToString();
    }
  }

  void SetPhase(std::string p, std::string d) {
    if (p != phase || d != detail) {
      if (p == "failed" || p == "halted") {
        PS_LOG(kWarn, "release") << p << (d.empty() ? "" : ": " + d);
      } else {
        PS_LOG(kInfo, "release") << p << (d.empty() ? "" : ": " + d);
      }
    }
    phase = std::move(p);
    detail = std::move(d);
  }

  // ---- apps ----

  // The manifest saved when a release was installed (what a restart needs before the ledger).
  std::optional<protocol::Manifest> SavedManifest(const std::string& id) const {
    auto text = files::ReadFile(ReleaseDir(id) + "/manifest.json", 1 << 20);
    if (!text) return std::nullopt;
    auto v = json::Parse(*text);
    if (!v) return std::nullopt;
    auto m = protocol::ParseManifest(*v);
    if (!m) return std::nullopt;
    return *m;
  }

  // Links each front file to its blob under a fresh directory, then renames it into place.
  Result<std::string> Materialize(const std::string& id,
                                  const std::vector<protocol::FileEntry>& files,
                                  const protocol::Manifest* manifest) {
    const std::string dir = ReleaseDir(id);
    const std::string front = dir + "/front";
    if (files::Exists(dir + "/complete")) return front;
    const std::string tmp = o.data_dir + "/releases/.tmp-" + id;
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    if (auto s = files::MakeDirs(tmp + "/front"); !s.ok()) return s;
    for (const protocol::FileEntry& f : files) {
      if (f.role != "front") continue;
      auto blob = blobs.PathOf(f.sha256);
      if (!blob) return blob.status();
      const std::string dest = tmp + "/front/" + f.path;
      const size_t slash = dest.rfind('/');
      if (auto s = files::MakeDirs(dest.substr(0, slash)); !s.ok()) return s;
      if (::link(blob->c_str(), dest.c_str()) != 0) {
        // Another file system (or no hard links): a copy, checked like the blob was.
        auto bytes = blobs.Get(f.sha256, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
        if (!bytes) return bytes.status();
        if (auto s = files::WriteFileAtomic(dest, *bytes, 0444); !s.ok()) return s;
      }
    }
    if (manifest) {
      if (auto s = files::WriteFileAtomic(tmp + "/manifest.json",
                                          json::Serialize(manifest->ToJson()), 0644);
          !s.ok()) {
        return s;
      }
    }
    if (auto s = files::WriteFileAtomic(tmp + "/complete", "", 0644); !s.ok()) return s;
    std::filesystem::remove_all(dir, ec);
    if (auto s = files::MakeDirs(o.data_dir + "/releases"); !s.ok()) return s;
    if (::rename(tmp.c_str(), dir.c_str()) != 0)
      return Status::Error("io_error", "cannot rename " + tmp);
    return front;
  }

  Result<App> BuildApp(const std::string& id, int64_t version,
                       const std::vector<protocol::FileEntry>& files,
                       const protocol::Manifest* manifest) {
    App app;
    app.id = id;
    app.version = version;
    app.code = protocol::CodeHashOf(files);
    app.files = files;
    for (const protocol::FileEntry& f : files) {
      if (f.role != "plugin") continue;
      auto path = blobs.PathOf(f.sha256);
      if (!path) return path.status();
      app.plugins.push_back({f.path, *path, f.sha256});
    }
    auto front = Materialize(id, files, manifest);
    if (!front) return front.status();
    app.front_root = *front;
    return app;
  }

  // The files the node was started with, copied into the blob store (so what runs is what
  // was hashed, whatever happens to the directories afterwards).
  Result<App> LocalApp() {
    const std::string id = "local-" + local_code.substr(0, 16);
    if (auto it = apps.find(id); it != apps.end()) return it->second;
    std::vector<protocol::FileEntry> entries;
    for (const AppFile& f : local) {
      auto bytes = files::ReadFile(f.source, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
      if (!bytes) return bytes.status();
      auto hash = blobs.Put(*bytes);
      if (!hash) return hash.status();
      if (*hash != f.entry.sha256) {
        return Status::Error("changed", f.source + " changed since the node started; restart it");
      }
      entries.push_back(f.entry);
    }
    auto app = BuildApp(id, 0, entries, nullptr);
    if (!app) return app;
    app->best_effort = true;
    // Refusals name the file where the author put it (the same order: both sorted by path).
    size_t i = 0;
    for (const AppFile& f : local) {
      if (f.entry.role == "plugin" && i < app->plugins.size()) app->plugins[i++].file = f.source;
    }
    return app;
  }

  // ---- deciding ----

  std::vector<std::string> PeersFor(const NetworkView& v, const NetworkView::Release& r) {
    std::vector<std::string> first, healthy, rest;
    if (!r.author_url.empty()) first.push_back(r.author_url);
    for (const auto& [key, url] : v.member_urls) {
      if (url.empty() || Contains(first, url)) continue;
      auto rep = r.reports.find(key);
      (rep != r.reports.end() && rep->second.status == "healthy" ? healthy : rest).push_back(url);
    }
    auto shuffle = [](std::vector<std::string>* list) {
      for (size_t i = list->size(); i > 1; --i) {
        uint32_t x = 0;
        crypto::RandomBytes(reinterpret_cast<uint8_t*>(&x), sizeof x);
        std::swap((*list)[i - 1], (*list)[x % i]);
      }
    };
    shuffle(&healthy);
    shuffle(&rest);
    first.insert(first.end(), healthy.begin(), healthy.end());
    first.insert(first.end(), rest.begin(), rest.end());
    return first;
  }

  void Report(const std::string& release, const std::string& status, const std::string& reason,
              bool member) {
    if (release.rfind("local-", 0) == 0 || release.empty()) return;
    if (!member) return;  // a joiner has no voice yet; it reports once admitted
    auto s = o.report(release, status, reason);
    if (!s.ok()) {
      PS_LOG(kWarn, "release") << "cannot report " << status << " for " << release.substr(0, 12)
                               << ": " << s.ToString();
      return;
    }
    (status == "healthy" ? record.healthy : record.reported_failed).insert(release);
    Save();
  }

  // Switches to app; on failure stays and says why.
  Status Switch(const App& app, const std::string& why) {
    // Counted before the switch: a node that dies while starting this release counts it at
    // every restart (Reconcile gives up after kRestartsBeforeGivingUp). The local files are
    // not a release: nothing to go back to from them.
    if (app.id.rfind("local-", 0) != 0) {
      record.attempts = record.attempting == app.id ? record.attempts + 1 : 1;
      record.attempting = app.id;
      Save();
    }
    PS_LOG(kInfo, "release") << "switching to "
                             << (app.version ? "release " + std::to_string(app.version) : app.id)
                             << " (" << why << ")";
    if (auto s = o.install(app); !s.ok()) return s;
    apps[app.id] = app;
    if (running != app.id) record.previous = running;
    running = app.id;
    record.running = app.id;
    Save();
    switched_at = o.clock->SteadyMs();
    calls_at_switch = o.plugin_calls ? o.plugin_calls() : plugins::PluginCalls{};
    o.code_changed(app.code);
    PS_LOG(kInfo, "release") << "now serving "
                             << (app.version ? "release " + std::to_string(app.version)
                                             : "the local files")
                             << ", code " << app.code.substr(0, 16);
    return Status::Ok();
  }

  // The app with this id, from memory or rebuilt from what is on disk (a release installed
  // before a restart: its manifest and blobs are still here; the local files).
  const App* Recall(const std::string& id) {
    if (auto it = apps.find(id); it != apps.end()) return &it->second;
    Result<App> app = Status::Error("not_found", "nothing recorded");
    if (id.rfind("local-", 0) == 0) {
      app = LocalApp();
    } else if (auto m = SavedManifest(id)) {
      app = BuildApp(id, m->version, m->files, &*m);
    }
    if (!app) return nullptr;
    return &(apps[app->id] = *app);
  }

  // Marks failed_id failed here (and reports it), then runs what ran before it, if we still
  // have it: the recorded previous app when failed_id was running, else the one running.
  void GoBack(const NetworkView& v, const std::string& failed_id, const std::string& reason) {
    record.failed.insert(failed_id);
    record.attempting.clear();
    record.attempts = 0;
    Save();
    Report(failed_id, "failed", reason, v.is_member);
    const std::string back_id =
        running == failed_id || running.empty()
            ? (record.running == failed_id ? record.previous : record.running)
            : running;
    // Never back onto a release that failed here too.
    const App* back = back_id.empty() || record.failed.count(back_id) ? nullptr : Recall(back_id);
    if (!back) {
      SetPhase("failed", reason + "; no earlier release to go back to");
      return;
    }
    if (back->id == running) {
      SetPhase("failed", reason);
      return;
    }
    const App copy = *back;
    if (auto s = Switch(copy, "going back after: " + reason); !s.ok()) {
      SetPhase("failed", reason + "; going back failed too: " + s.message());
    } else {
      SetPhase("reverted", reason);
    }
  }

  void Reconcile() {
    std::lock_guard<std::mutex> lock(mu);
    const NetworkView v = o.view();
    const int64_t now_wall = o.clock->WallMs();
    const int64_t now = o.clock->SteadyMs();
    {
      std::set<std::string> now_listed;
      for (const NetworkView::Release* r : {&v.current, &v.previous}) {
        if (!r->manifest) continue;
        for (const protocol::FileEntry& f : r->manifest->files) now_listed.insert(f.sha256);
      }
      std::lock_guard<std::mutex> listed_lock(listed_mu);
      listed.swap(now_listed);
    }
    if (!v.has_ledger) {
      SetPhase("waiting", "for the network's ledger (asking " + std::string("the join node") + ")");
      return;
    }
    expired = v.current.manifest && v.current.manifest->expires_ms < now_wall;

    // A release that this node kept restarting on is a failure.
    if (first_pass) {
      first_pass = false;
      if (!record.attempting.empty() && record.attempts >= kRestartsBeforeGivingUp) {
        const std::string id = record.attempting;
        const std::string why =
            "the node restarted " + std::to_string(record.attempts) + " times while starting it";
        PS_LOG(kError, "release") << why << " (" << id << ")";
        GoBack(v, id, why);
        return;
      }
    }

    HealthWatch(v, now);

    const std::vector<std::string>& accepted = v.accepted_codes;
    auto is_accepted = [&](const std::string& code) {
      return accepted.empty() || Contains(accepted, code);
    };
    const App* run = running.empty() ? nullptr : &apps.at(running);
    const bool have_local = !local.empty() || local_error.empty();
    const std::string base_code = run ? run->code : local_code;
    const bool base_accepted = (run || have_local) && is_accepted(base_code);

    Target target = Target::kKeep;
    RolloutView rollout;
    stage = -1;
    if (v.current.manifest) {
      const protocol::Manifest& m = *v.current.manifest;
      rollout =
          Evaluate(m.rollout, v.current.event, v.current.time_ms, v.members, v.current.reports);
      stage = StageOf(o.self_key, v.current.event, m.rollout.stages);
      target = Decide(rollout, v.is_member, stage, base_accepted, now_wall);
    } else if (!base_accepted) {
      target = Target::kCurrent;  // release 0: only the founder's files will do
    }
    const NetworkView::Release* want = target == Target::kCurrent    ? &v.current
                                       : target == Target::kPrevious ? &v.previous
                                                                     : nullptr;
    if (want && record.failed.count(want->event) && want->manifest) {
      SetPhase("failed", "release " + std::to_string(want->version) +
                             " failed on this node; waiting for a newer one");
      return;
    }
    if (want && run && run->code == want->code) {
      // Already there: the same files under another release (the old files published again
      // at a higher version, the way out of a halt). Take on its id so this node reports on
      // it and the rollout goes on; nothing is reloaded.
      if (want->manifest && run->id != want->event && !want->event.empty()) {
        App same = *run;
        same.id = want->event;
        same.version = want->version;
        apps[same.id] = same;
        if (running != same.id) record.previous = running;
        running = same.id;
        record.running = same.id;
        switched_at = now;
        calls_at_switch = o.plugin_calls ? o.plugin_calls() : plugins::PluginCalls{};
        Save();
        PS_LOG(kInfo, "release") << "release " << same.version
                                 << " has the files that run here: serving it as is";
      }
      want = nullptr;
      run = &apps.at(running);
    }
    if (!want) {
      if (!run) {
        if (!base_accepted) {
          SetPhase("failed", "the local files are not a release this network accepts");
          return;
        }
        auto app = LocalApp();
        if (!app) {
          SetPhase("failed", "cannot prepare the local files: " + app.status().message());
          return;
        }
        if (auto s = Switch(*app, "the files this node was started with are accepted"); !s.ok()) {
          SetPhase("failed", "the local files do not start: " + s.message());
        }
        return;
      }
      if (rollout.halted) {
        SetPhase("halted", "release " + std::to_string(v.current.version) + " halted after " +
                               std::to_string(rollout.failures) +
                               " failure report(s); running the previous release");
      } else if (v.current.manifest && run->code != v.current.code) {
        SetPhase("waiting", "stage " + std::to_string(stage) + " of release " +
                                std::to_string(v.current.version) + " has not started (" +
                                std::to_string(rollout.OpenStages(now_wall)) + " of " +
                                std::to_string(v.current.manifest->rollout.stages) +
                                " stages open)");
      } else {
        SetPhase(expired ? "expired" : "serving",
                 expired ? "release " + std::to_string(v.current.version) +
                               " expired; still serving it, publish a newer one"
                         : std::string());
      }
      return;
    }
    if (!want->manifest) {
      // Release 0 (or a previous that is): the founder's files, which no one can fetch.
      if (is_accepted(local_code) && local_code == want->code) {
        if (auto app = LocalApp(); app) (void)Switch(*app, "release 0 is the local files");
      } else {
        SetPhase("failed", "the network runs release " +
                               std::to_string(std::max<int64_t>(want->version, 0)) +
                               " (the founder's files, code " + want->code.substr(0, 16) +
                               "); start this node with those files");
      }
      return;
    }
    target_version = want->version;
    target_event = want->event;
    if (auto it = apps.find(want->event); it != apps.end()) {
      const App app = it->second;
      if (auto s = Switch(app, std::string("rollout: ") + ToString(target)); !s.ok())
        GoBack(v, app.id, s.message());
      return;
    }
    std::vector<BlobRequest> wanted;
    for (const protocol::FileEntry& f : want->manifest->files) wanted.push_back({f.sha256, f.size});
    if (!fetcher->Pump(wanted, PeersFor(v, *want))) {
      const FetcherStats st = fetcher->stats();
      SetPhase("fetching",
               "release " + std::to_string(want->version) + ": " +
                   std::to_string(wanted.size() - st.missing) + " of " +
                   std::to_string(wanted.size()) + " files" +
                   (st.errors.empty() ? std::string() : "; last refusal " + st.errors.back()));
      return;
    }
    auto app = BuildApp(want->event, want->version, want->manifest->files, &*want->manifest);
    if (!app) {
      SetPhase("failed", "cannot prepare release " + std::to_string(want->version) + ": " +
                             app.status().message());
      return;
    }
    if (auto s =
            Switch(*app, std::string("rollout: ") + ToString(target) +
                             (stage >= 0 ? ", stage " + std::to_string(stage) : std::string()));
        !s.ok()) {
      record.failed.insert(want->event);
      Save();
      Report(want->event, "failed", "does not start: " + s.message(), v.is_member);
      SetPhase("failed",
               "release " + std::to_string(want->version) + " does not start: " + s.message());
      return;
    }
    SetPhase("serving", "");
  }

  // After a switch to a release: report it healthy once soak_ms passed; until the watch
  // window (soak_ms, min_soak_ms at least) ends, too many failed plugin calls send the node
  // back to what it ran before (a failure stands even after a healthy report).
  void HealthWatch(const NetworkView& v, int64_t now) {
    if (!record.attempting.empty() && record.attempting == running &&
        now - switched_at > kCrashWindowMs) {
      record.attempting.clear();  // it started and kept running: not a crash loop
      record.attempts = 0;
      Save();
    }
    // Failures this node could not report yet (it was not a member then): report them now.
    if (v.is_member) {
      for (const std::string& f :
           std::vector<std::string>(record.failed.begin(), record.failed.end())) {
        if (!record.reported_failed.count(f) && (f == v.current.event || f == v.previous.event)) {
          Report(f, "failed", "failed here before this node was a member", true);
        }
      }
    }
    if (running.empty() || running.rfind("local-", 0) == 0 || record.failed.count(running)) return;
    const App& app = apps.at(running);
    const protocol::Manifest* m =
        v.current.event == running && v.current.manifest     ? &*v.current.manifest
        : v.previous.event == running && v.previous.manifest ? &*v.previous.manifest
                                                             : nullptr;
    const int64_t soak = m ? m->rollout.soak_ms : 0;
    // Healthy once it ran a second without dying, whenever this node is a member by then (a
    // joiner is admitted after it installed the release: it reports then). The soak is the
    // rollout's to wait (rollout.h), after the report; failures in it still count.
    if (now - switched_at >= kCrashWindowMs && v.is_member && !record.healthy.count(running)) {
      Report(app.id, "healthy", "", true);
    }
    const int64_t window = std::max(o.min_soak_ms, soak);
    if (now - switched_at > window) return;
    const int64_t max_error = m ? m->rollout.max_error_percent : 20;
    const plugins::PluginCalls c = o.plugin_calls ? o.plugin_calls() : plugins::PluginCalls{};
    const uint64_t calls =
        c.calls >= calls_at_switch.calls ? c.calls - calls_at_switch.calls : c.calls;
    const uint64_t failures =
        c.failures >= calls_at_switch.failures ? c.failures - calls_at_switch.failures : c.failures;
    if (static_cast<int64_t>(calls) >= kMinCallsForHealth &&
        static_cast<int64_t>(failures) * 100 > max_error * static_cast<int64_t>(calls)) {
      GoBack(v, app.id,
             std::to_string(failures) + " of " + std::to_string(calls) +
                 " plugin calls failed after the switch (more than " + std::to_string(max_error) +
                 "%)");
    }
  }

  void SendStalled(bool all) {
    std::deque<std::pair<int64_t, std::shared_ptr<http::Responder>>> due;
    {
      std::lock_guard<std::mutex> lock(stalled_mu);
      const int64_t now = o.clock->SteadyMs();
      while (!stalled.empty() && (all || stalled.front().first <= now)) {
        due.push_back(std::move(stalled.front()));
        stalled.pop_front();
      }
    }
    for (auto& [t, r] : due)
      r->Send(http::JsonError(503, "stalled", "test hook: answered late on purpose"));
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(wake_mu);
    while (!stopping) {
      wake_cv.wait_for(lock, std::chrono::milliseconds(o.tick_ms),
                       [this] { return poked || stopping; });
      if (stopping) break;
      poked = false;
      lock.unlock();
      Reconcile();
      SendStalled(false);
      lock.lock();
    }
  }
};

ReleaseManager::ReleaseManager(ReleaseManagerOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {
  Impl& d = *impl_;
  FetcherOptions fo;
  fo.transport = d.o.transport;
  fo.blobs = &d.blobs;
  fo.clock = d.o.clock;
  fo.min_rate_bytes_per_s = d.o.min_rate_bytes_per_s;
  fo.wake = [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto i = weak.lock()) {
      std::lock_guard<std::mutex> lock(i->wake_mu);
      i->poked = true;
      i->wake_cv.notify_all();
    }
  };
  d.fetcher = std::make_unique<BlobFetcher>(std::move(fo));
  auto scanned = ScanAppFiles(d.o.plugins_dir, d.o.front_dir);
  if (scanned) {
    d.local = std::move(scanned).value();
  } else {
    d.local_error = scanned.status().message();
    PS_LOG(kError, "release") << "cannot read the local files: " << d.local_error;
  }
  d.local_code = protocol::CodeHashOf(EntriesOf(d.local));
  if (auto text = files::ReadFile(d.RecordPath(), 1 << 20); text) {
    if (auto v = json::Parse(*text); v) d.record = Record::FromJson(*v);
  }
}

ReleaseManager::~ReleaseManager() { Stop(); }

std::string ReleaseManager::initial_code() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.o.dev && !d.record.running.empty() && d.record.running.rfind("local-", 0) != 0) {
    if (auto m = d.SavedManifest(d.record.running)) return m->CodeHash();
  }
  return d.local_code;
}

Status ReleaseManager::Start() {
  Impl& d = *impl_;
  if (d.o.dev) {
    std::lock_guard<std::mutex> lock(d.mu);
    d.SetPhase("dev", "dev mode: serving the local files unsigned, whatever the network's release");
    return Status::Ok();
  }
  {
    // A restart resumes the recorded release from the store, before the ledger says more.
    std::lock_guard<std::mutex> lock(d.mu);
    const std::string id = d.record.running;
    const bool gave_up =
        (d.record.attempting == id && d.record.attempts >= kRestartsBeforeGivingUp) ||
        d.record.failed.count(id) != 0;
    if (!id.empty() && id.rfind("local-", 0) != 0 && !gave_up) {
      if (auto m = d.SavedManifest(id)) {
        auto app = d.BuildApp(id, m->version, m->files, &*m);
        if (app) {
          if (d.record.attempting == id) {
            ++d.record.attempts;  // restarted within its watch window: counted
            d.Save();
          }
          if (auto s = d.o.install(*app); s.ok()) {
            d.apps[id] = *app;
            d.running = id;
            d.switched_at = d.o.clock->SteadyMs();
            d.o.code_changed(app->code);
            d.Save();
            PS_LOG(kInfo, "release") << "resumed release " << m->version;
          } else {
            PS_LOG(kError, "release")
                << "recorded release " << m->version << " does not start: " << s.ToString();
          }
        }
      }
    }
  }
  d.Reconcile();
  d.worker = std::thread([impl = impl_] { impl->Loop(); });
  return Status::Ok();
}

void ReleaseManager::Stop() {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.wake_mu);
    if (d.stopping) return;
    d.stopping = true;
  }
  d.wake_cv.notify_all();
  if (d.worker.joinable()) d.worker.join();
  d.SendStalled(true);
}

void ReleaseManager::Poke() {
  std::lock_guard<std::mutex> lock(impl_->wake_mu);
  impl_->poked = true;
  impl_->wake_cv.notify_all();
}

std::string ReleaseManager::blobs_dir() const { return impl_->o.data_dir + "/blobs"; }

Status ReleaseManager::CheckBlobs(const protocol::Manifest& m) const {
  std::vector<std::string> missing;
  for (const protocol::FileEntry& f : m.files) {
    auto bytes = impl_->blobs.Get(f.sha256, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
    if (!bytes || static_cast<int64_t>(bytes->size()) != f.size) missing.push_back(f.path);
  }
  if (missing.empty()) return Status::Ok();
  return Status::Error("missing", std::to_string(missing.size()) +
                                      " file(s) of the release are not in " + blobs_dir() +
                                      " (first: " + missing.front() +
                                      "); `peerstack release publish` puts them there");
}

http::Response ReleaseManager::HandleBlob(const http::Request& request) {
  Impl& d = *impl_;
  if (request.method != "GET" && request.method != "HEAD") {
    http::Response r = http::JsonError(405, "method_not_allowed", "blobs are fetched with GET");
    r.set("allow", "GET");
    return r;
  }
  constexpr std::string_view kPrefix = "/p2p/blob/";
  const std::string sha = request.path.substr(std::min(request.path.size(), kPrefix.size()));
  if (!crypto::IsSha256Hex(sha))
    return http::JsonError(400, "bad_hash", "GET /p2p/blob/<64 lower-case hex digits>");
  {
    std::lock_guard<std::mutex> lock(d.listed_mu);
    if (!d.listed.count(sha)) {
      return http::JsonError(404, "not_found", "no file of the releases in force has this hash");
    }
  }
  if (d.answering.fetch_add(1) >= kMaxBlobAnswers) {
    d.answering.fetch_sub(1);
    return http::TooMany("too many blob requests at once");
  }
  struct Done {
    std::atomic<size_t>& n;
    ~Done() { n.fetch_sub(1); }
  } done{d.answering};
  auto bytes = d.blobs.Get(sha, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
  if (!bytes) {
    if (bytes.status().code() == "corrupt") {
      PS_LOG(kError, "release") << "stored blob " << sha << " is corrupt; not serving it";
    }
    return http::JsonError(404, "not_found", "this node does not have that file (yet)");
  }
  const std::string& fault = d.o.fault;
  if (fault == "flip" && !bytes->empty()) (*bytes)[bytes->size() / 2] ^= 0x01;
  if (fault == "long") bytes->push_back('\n');
  if (fault == "other") *bytes = "another blob altogether";
  if (fault == "stall") {
    auto responder = request.Defer();
    std::lock_guard<std::mutex> lock(d.stalled_mu);
    if (responder && d.stalled.size() < kMaxStalled) {
      d.stalled.emplace_back(d.o.clock->SteadyMs() + 60000, std::move(responder));
      return http::Response::Deferred();
    }
  }
  http::Response r;
  r.status = 200;
  r.set("content-type", "application/octet-stream");
  r.set("cache-control", "public, max-age=31536000, immutable");
  r.body = std::move(bytes).value();
  return r;
}

std::optional<App> ReleaseManager::running() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->apps.find(impl_->running);
  if (it == impl_->apps.end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> ReleaseManager::running_version() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->apps.find(impl_->running);
  if (it == impl_->apps.end()) return std::nullopt;
  return it->second.version;
}

json::Value ReleaseManager::StatusJson() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.apps.find(d.running);
  const FetcherStats fs = d.fetcher->stats();
  json::Array errors(fs.errors.begin(), fs.errors.end());
  return json::Object{
      {"dev", d.o.dev},
      {"running", it == d.apps.end() ? json::Value(nullptr)
                                     : json::Value(json::Object{{"id", it->second.id},
                                                                {"version", it->second.version},
                                                                {"code", it->second.code}})},
      {"local_code", d.local_code},
      {"phase", d.phase},
      {"detail", d.detail},
      {"expired", d.expired},
      {"target", d.target_version},
      {"stage", d.stage},
      {"failed", json::Array(d.record.failed.begin(), d.record.failed.end())},
      {"fetch", json::Object{{"missing", fs.missing},
                             {"in_flight", fs.in_flight},
                             {"fetched", fs.fetched},
                             {"fetched_bytes", fs.fetched_bytes},
                             {"refused", fs.refused},
                             {"last_bytes", fs.last_bytes},
                             {"last_transfer_us", static_cast<int64_t>(fs.last_transfer_ms * 1000)},
                             {"last_store_us", static_cast<int64_t>(fs.last_store_ms * 1000)},
                             {"errors", std::move(errors)}}},
  };
}

json::Value ReleaseManager::RolloutJson() const {
  const Impl& d = *impl_;
  const NetworkView v = d.o.view();
  const int64_t now = d.o.clock->WallMs();
  json::Array nodes;
  json::Value rollout = nullptr;
  if (v.current.manifest) {
    const protocol::Manifest& m = *v.current.manifest;
    const RolloutView rv =
        Evaluate(m.rollout, v.current.event, v.current.time_ms, v.members, v.current.reports);
    json::Array stages;
    for (size_t k = 0; k < rv.stage_start_ms.size(); ++k) {
      stages.push_back(json::Object{{"stage", static_cast<int64_t>(k)},
                                    {"members", rv.stage_size[k]},
                                    {"starts", rv.stage_start_ms[k]},
                                    {"started", rv.Started(static_cast<int64_t>(k), now)}});
    }
    rollout = json::Object{{"version", v.current.version}, {"event", v.current.event},
                           {"halted", rv.halted},          {"healthy", rv.healthy},
                           {"failures", rv.failures},      {"max_failures", m.rollout.max_failures},
                           {"expires", m.expires_ms},      {"expired", m.expires_ms < now},
                           {"stages", std::move(stages)}};
    for (const std::string& key : v.member_keys) {
      const int64_t st = StageOf(key, v.current.event, m.rollout.stages);
      std::string health = "unknown", why;
      int64_t version = -1;
      if (auto r = v.current.reports.find(key); r != v.current.reports.end()) {
        health = r->second.status;
        version = r->second.status == "healthy" ? v.current.version : v.previous.version;
        why = r->second.reason;
      } else if (rv.halted) {
        why = "the rollout halted";
      } else if (!rv.Started(st, now)) {
        why = "its stage has not started";
      } else {
        why = "switching or soaking (no report yet)";
      }
      if (version < 0) {
        if (auto r = v.previous.reports.find(key);
            r != v.previous.reports.end() && r->second.status == "healthy") {
          version = v.previous.version;
        }
      }
      nodes.push_back(json::Object{{"key", key},
                                   {"id", protocol::NodeIdForHex(key)},
                                   {"url", key == d.o.self_key        ? std::string("(this node)")
                                           : v.member_urls.count(key) ? v.member_urls.at(key)
                                                                      : std::string()},
                                   {"stage", st},
                                   {"health", health},
                                   {"version", version},
                                   {"why", why}});
    }
  }
  return json::Object{{"release", v.current.version < 0 ? 0 : v.current.version},
                      {"rollout", std::move(rollout)},
                      {"nodes", std::move(nodes)},
                      {"this_node", StatusJson()}};
}

}  // namespace peerstack::release
