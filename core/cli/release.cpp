// `peerstack keygen` and `peerstack release ...`: what a publisher runs (docs/releases.md).

#include "protocol/release.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "cli/commands.h"
#include "crypto/encoding.h"
#include "http/client.h"
#include "json/json.h"
#include "node/config.h"
#include "node/node.h"
#include "release/app_files.h"
#include "store/blob_store.h"
#include "store/key_file.h"

namespace peerstack::cli {
namespace {

bool ParseInt(const std::string& text, int64_t lo, int64_t hi, int64_t* out) {
  int64_t n = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || n < lo || n > hi)
    return false;
  *out = n;
  return true;
}

std::string DataDir(const Values& a) { return a.Get("data-dir"); }

Result<json::Value> ReadJsonFile(const std::string& path) {
  auto text = files::ReadFile(path, 8u << 20);
  if (!text) return text.status();
  auto v = json::Parse(*text, {8u << 20, 16});
  if (!v || !v->is_object())
    return Status::Error("bad_file", path + " is not a release file (JSON object)");
  return v;
}

Status WriteJsonFile(const std::string& path, const json::Value& v) {
  return files::WriteFileAtomic(path, json::Serialize(v) + "\n", 0644);
}

std::string Hex(const crypto::PublicKey& k) { return crypto::HexEncode(k.data(), k.size()); }

}  // namespace

int ReleaseCreate(const Values& a) {
  if (!a.Has("output")) return Fail("release create needs -o FILE", 2);
  const std::string plugins = a.Get("plugins"), front = a.Get("front");
  if (plugins.empty() && front.empty())
    return Fail("release create needs --plugins DIR and/or --front DIR", 2);
  // Ranges and units were checked with the flags (cli.cpp); the defaults are the manifest's.
  protocol::Manifest m;
  int64_t expires_ms = 0;
  ParseDuration(a.Get("expires"), &expires_ms);
  ParseDuration(a.Get("soak"), &m.rollout.soak_ms);
  m.rollout.stages = std::stoll(a.Get("stages"));
  m.rollout.healthy_percent = std::stoll(a.Get("healthy-percent"));
  m.rollout.max_failures = std::stoll(a.Get("max-failures"));
  m.rollout.max_error_percent = std::stoll(a.Get("max-error-percent"));
  // The network and the next version: given, or asked of the local node.
  std::string network = a.Get("network");
  int64_t version = a.Has("version") ? std::stoll(a.Get("version")) : 0;
  if (network.empty() || version == 0) {
    auto st = Admin(DataDir(a), "GET", "/status");
    if (!st) return Fail(st.status().message() + " (or give --network ID and --version N)");
    const json::Value* net = st->find("network");
    const std::string* id = net ? net->find_string("id") : nullptr;
    const int64_t* release = net ? net->find_int("release") : nullptr;
    if (network.empty() && id) network = *id;
    if (version == 0 && release) version = *release + 1;
  }
  if (network.size() != 64) return Fail("no network id (give --network ID, or run the node first)");
  auto found = release::ScanAppFiles(plugins, front);
  if (!found) return Fail(found.status().message());
  m.network = network;
  m.version = version;
  m.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  m.expires_ms = m.created_ms + expires_ms;
  m.files = release::EntriesOf(*found);
  if (auto check = protocol::ParseManifest(m.ToJson()); !check)
    return Fail(check.status().message());
  char cwd[4096];
  auto absolute = [&](const std::string& p) {
    if (p.empty() || p[0] == '/' || !::getcwd(cwd, sizeof cwd)) return p;
    return std::string(cwd) + "/" + p;
  };
  const json::Value file = json::Object{
      {"kind", "release"},
      {"manifest", m.ToJson()},
      {"signatures", json::Array{}},
      {"sources", json::Object{{"plugins", absolute(plugins)}, {"front", absolute(front)}}}};
  if (auto s = WriteJsonFile(a.Get("output"), file); !s.ok()) return Fail(s.message());
  size_t n_plugins = 0;
  for (const auto& f : m.files) n_plugins += f.role == "plugin";
  std::cout << "release " << m.version << " for network " << network.substr(0, 16) << ": "
            << n_plugins << " plugin(s), " << m.files.size() - n_plugins << " frontend file(s), "
            << m.TotalBytes() << " bytes, code " << m.CodeHash().substr(0, 16) << "\n"
            << "rollout: " << m.rollout.stages << " stage(s), soak " << m.rollout.soak_ms / 1000
            << " s, halt after " << m.rollout.max_failures << " failure(s); expires in "
            << expires_ms / 86400000 << " day(s)\n"
            << "wrote " << a.Get("output") << " (unsigned: run `peerstack release sign "
            << a.Get("output") << " --key KEY`)\n";
  return 0;
}

int ReleaseSign(const Values& a) {
  if (a.positional.size() != 1 || !a.Has("key"))
    return Fail("usage: peerstack release sign FILE --key KEYFILE", 2);
  const std::string path = a.positional[0];
  auto file = ReadJsonFile(path);
  if (!file) return Fail(file.status().message());
  auto key = store::LoadKey(a.Get("key"));
  if (!key) return Fail(key.status().message());
  const std::string pub = Hex(key->public_key());
  const std::string* kind = file->find_string("kind");
  std::vector<protocol::PublisherSignature> sigs;
  if (const json::Value* sj = file->find("signatures")) {
    auto parsed = protocol::ParseSignatures(*sj);
    if (!parsed) return Fail(parsed.status().message());
    sigs = *parsed;
  }
  sigs.erase(
      std::remove_if(sigs.begin(), sigs.end(), [&](const auto& s) { return s.publisher == pub; }),
      sigs.end());
  if (kind && *kind == "release") {
    auto m = protocol::ParseManifest(*file->find("manifest"));
    if (!m) return Fail(m.status().message());
    sigs.push_back(protocol::SignManifest(*key, *m));
    std::cout << "signed release " << m->version << " for network " << m->network.substr(0, 16)
              << ": " << m->files.size() << " file(s), " << m->TotalBytes() << " bytes, code "
              << m->CodeHash().substr(0, 16) << ", " << m->rollout.stages
              << " stage(s), halts after " << m->rollout.max_failures << " failure(s), expires in "
              << (m->expires_ms - m->created_ms) / 3600000 << " h; as " << pub.substr(0, 16);
  } else if (kind && *kind == "publishers") {
    const std::string* network = file->find_string("network");
    const int64_t* threshold = file->find_int("threshold");
    const int64_t* seq = file->find_int("seq");
    const json::Value* keys_json = file->find("publishers");
    if (!network || !threshold || !seq || !keys_json || !keys_json->is_array())
      return Fail(path + " is malformed");
    std::vector<std::string> keys;
    for (const auto& k : keys_json->as_array()) {
      if (!k.is_string() || k.as_string().size() != 64 || !crypto::HexDecode(k.as_string())) {
        return Fail(path + ": a publisher is not a hex public key");
      }
      keys.push_back(k.as_string());
    }
    const auto sig = key->SignWithDomain(
        "publisher-set", protocol::PublisherSetPayload(*network, keys, *threshold, *seq));
    sigs.push_back({pub, crypto::HexEncode(sig.data(), sig.size())});
    std::cout << "signed the change of network " << network->substr(0, 16)
              << "'s publishers to, threshold " << *threshold << " of:\n";
    for (const auto& k : keys) std::cout << "  " << k << "\n";
    std::cout << "as " << pub.substr(0, 16);
  } else {
    return Fail(path + " is neither a release nor a publisher-set change");
  }
  json::Value out = *file;
  out.as_object()["signatures"] = protocol::ToJson(sigs);
  if (auto s = WriteJsonFile(path, out); !s.ok()) return Fail(s.message());
  std::cout << "; " << sigs.size() << " signature(s) now\n";
  return 0;
}

// Prints the rollout until every member reports on this release, it halts, or time runs out.
static int Follow(const std::string& data_dir, int64_t version, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = Admin(data_dir, "GET", "/releases");
    if (!r) return Fail(r.status().message());
    const json::Value* ro = r->find("rollout");
    const int64_t* v = ro ? ro->find_int("version") : nullptr;
    if (v && *v == version) {
      const json::Value* nodes = r->find("nodes");
      if (!nodes || !nodes->is_array()) return Fail("the node sent a malformed rollout");
      int64_t healthy = 0, failed = 0, total = static_cast<int64_t>(nodes->as_array().size());
      for (const auto& n : nodes->as_array()) {
        const std::string* h = n.find_string("health");
        healthy += h && *h == "healthy";
        failed += h && *h == "failed";
      }
      int64_t open = 0, stages = 0;
      if (const json::Value* st = ro->find("stages"); st && st->is_array()) {
        for (const auto& s : st->as_array()) {
          ++stages;
          if (const json::Value* b = s.find("started"); b && b->is_bool() && b->as_bool()) ++open;
        }
      }
      const bool halted =
          ro->find("halted") && ro->find("halted")->is_bool() && ro->find("halted")->as_bool();
      const std::string line = "release " + std::to_string(version) + ": " +
                               std::to_string(healthy) + "/" + std::to_string(total) +
                               " healthy, " + std::to_string(failed) + " failed, " +
                               std::to_string(open) + "/" + std::to_string(stages) +
                               " stage(s) open" + (halted ? ", HALTED" : "");
      if (line != last) std::cout << line << std::endl;
      last = line;
      if (halted) {
        std::cout << "the rollout halted: members go back to the previous release. Publish a fix "
                     "as release "
                  << version + 1 << ".\n";
        return 3;
      }
      if (healthy + failed >= total && total > 0) {
        std::cout << "rollout finished\n";
        return failed ? 3 : 0;
      }
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(250));  // a poll interval, not a wait for an event
  }
  std::cout << "still rolling out (see `peerstack release status`)\n";
  return 0;
}

int ReleasePublish(const Values& a) {
  if (a.positional.size() != 1)
    return Fail("usage: peerstack release publish FILE [--data-dir DIR]", 2);
  const std::string data_dir = DataDir(a);
  auto file = ReadJsonFile(a.positional[0]);
  if (!file) return Fail(file.status().message());
  const std::string* kind = file->find_string("kind");
  const json::Value* sj = file->find("signatures");
  if (!sj) return Fail("no signatures in the file");
  if (kind && *kind == "publishers") {
    const json::Value* keys = file->find("publishers");
    const json::Value* threshold = file->find("threshold");
    const int64_t* seq = file->find_int("seq");
    if (!keys || !threshold || !seq) return Fail(a.positional[0] + " is malformed");
    auto next = Admin(data_dir, "GET", "/publishers");
    if (!next) return Fail(next.status().message());
    if (const int64_t* n = next->find_int("next_seq"); !n || *n != *seq) {
      return Fail("this change was made for publisher-set number " + std::to_string(*seq) +
                  ", the network is at " + (n ? std::to_string(*n) : std::string("?")) +
                  ": another change landed first; make it again");
    }
    json::Value body =
        json::Object{{"publishers", *keys}, {"threshold", *threshold}, {"signatures", *sj}};
    auto r = Admin(data_dir, "POST", "/publishers", json::Serialize(body));
    if (!r) return Fail(r.status().message());
    std::cout << "publisher set changed\n";
    return 0;
  }
  auto m =
      protocol::ParseManifest(file->find("manifest") ? *file->find("manifest") : json::Value());
  if (!m) return Fail(m.status().message());
  // The files, from where `create` found them, checked against the manifest.
  const json::Value* src = file->find("sources");
  const std::string* plugins = src ? src->find_string("plugins") : nullptr;
  const std::string* front = src ? src->find_string("front") : nullptr;
  auto found = release::ScanAppFiles(plugins ? *plugins : "", front ? *front : "");
  if (!found) return Fail(found.status().message());
  std::map<std::string, std::string> source_of;  // sha256 -> path
  for (const auto& f : *found) source_of[f.entry.sha256] = f.source;
  store::BlobStore blobs(data_dir + "/" + node::kBlobsDir);
  int64_t bytes = 0;
  for (const protocol::FileEntry& f : m->files) {
    auto it = source_of.find(f.sha256);
    if (it == source_of.end()) {
      return Fail(f.path + " (" + f.sha256.substr(0, 12) +
                  ") is no longer in the source directories: "
                  "they changed since `release create`");
    }
    auto data = files::ReadFile(it->second, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
    if (!data) return Fail(data.status().message());
    auto put = blobs.Put(*data);
    if (!put) return Fail("cannot store " + f.path + ": " + put.status().message());
    if (*put != f.sha256) return Fail(it->second + " changed while publishing");
    bytes += f.size;
  }
  std::cout << "stored " << m->files.size() << " file(s), " << bytes << " bytes, in " << data_dir
            << "/" << node::kBlobsDir << "\n";
  json::Value body = json::Object{{"manifest", m->ToJson()}, {"signatures", *sj}};
  auto r = Admin(data_dir, "POST", "/releases", json::Serialize(body));
  if (!r) return Fail(r.status().message());
  std::cout << "published release " << m->version << " (code " << m->CodeHash().substr(0, 16)
            << "); the network fetches it from this node and its peers\n";
  if (a.Has("no-wait")) return 0;
  int64_t timeout_ms = 0;
  ParseDuration(a.Get("timeout"), &timeout_ms);
  return Follow(data_dir, m->version, timeout_ms);
}

int ReleaseStatus(const Values& a) {
  auto r = Admin(DataDir(a), "GET", "/releases");
  if (!r) return Fail(r.status().message());
  if (a.Has("json")) {
    std::cout << json::Serialize(*r) << "\n";
    return 0;
  }
  const json::Value* ro = r->find("rollout");
  const json::Value* me = r->find("this_node");
  auto str = [](const json::Value* o, const char* k) -> std::string {
    if (!o) return "?";
    if (const std::string* s = o->find_string(k)) return *s;
    if (const int64_t* i = o->find_int(k)) return std::to_string(*i);
    if (const json::Value* b = o->find(k); b && b->is_bool()) return b->as_bool() ? "yes" : "no";
    return "-";
  };
  if (!ro || ro->is_null()) {
    std::cout
        << "no release yet: the network runs release 0 (the files its founder started with)\n";
  } else {
    std::cout << "release " << str(ro, "version") << (str(ro, "halted") == "yes" ? " HALTED" : "")
              << (str(ro, "expired") == "yes" ? " EXPIRED" : "") << ": " << str(ro, "healthy")
              << " healthy, " << str(ro, "failures") << " failed (halts at "
              << str(ro, "max_failures") << ")\n";
    if (const json::Value* st = ro->find("stages"); st && st->is_array()) {
      for (const auto& s : st->as_array()) {
        std::cout << "  stage " << str(&s, "stage") << ": " << str(&s, "members") << " member(s), "
                  << (str(&s, "started") == "yes" ? "started" : "not started") << "\n";
      }
    }
    std::cout << "\n  "
              << "node" << std::string(14, ' ') << "stage  version  health   why\n";
    const json::Value* nodes = r->find("nodes");
    for (const auto& n : nodes && nodes->is_array() ? nodes->as_array() : json::Array{}) {
      std::string key = str(&n, "key").substr(0, 16);
      std::cout << "  " << key << "  " << str(&n, "stage") << "      " << str(&n, "version")
                << "        " << str(&n, "health") << "  " << str(&n, "why") << "\n";
    }
  }
  if (me) {
    std::cout << "\nthis node: " << str(me, "phase")
              << (str(me, "detail").empty() ? "" : " (" + str(me, "detail") + ")");
    if (const json::Value* run = me->find("running"); run && run->is_object()) {
      std::cout << ", running "
                << (str(run, "version") == "0" ? std::string("its local files")
                                               : "release " + str(run, "version"));
    }
    std::cout << "\n";
  }
  return 0;
}

int ReleaseRotate(const Values& a) {
  if (!a.Has("output") || !a.Has("publisher-key") || !a.Has("threshold")) {
    return Fail(
        "usage: peerstack release rotate --publisher-key LIST --threshold N [--data-dir DIR] -o "
        "FILE",
        2);
  }
  std::vector<std::string> keys;
  for (const std::string& k : node::SplitList(a.Get("publisher-key"))) {
    if (k.size() == 64 && crypto::HexDecode(k)) {
      std::string lower = k;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (std::find(keys.begin(), keys.end(), lower) == keys.end()) keys.push_back(lower);
      continue;
    }
    auto key = store::LoadKey(k);
    if (!key) return Fail("--publisher-key " + k + ": " + key.status().message());
    if (std::find(keys.begin(), keys.end(), Hex(key->public_key())) == keys.end())
      keys.push_back(Hex(key->public_key()));
  }
  int64_t threshold = 0;
  if (!ParseInt(a.Get("threshold"), 1, static_cast<int64_t>(keys.size()), &threshold)) {
    return Fail("--threshold: 1 to the number of keys", 2);
  }
  auto st = Admin(DataDir(a), "GET", "/status");
  if (!st) return Fail(st.status().message());
  auto seq = Admin(DataDir(a), "GET", "/publishers");
  if (!seq) return Fail(seq.status().message());
  const std::string* network =
      st->find("network") ? st->find("network")->find_string("id") : nullptr;
  const int64_t* next = seq->find_int("next_seq");
  if (!network || !next) return Fail("the node has no network");
  json::Array list(keys.begin(), keys.end());
  const json::Value file =
      json::Object{{"kind", "publishers"},   {"network", *network}, {"publishers", std::move(list)},
                   {"threshold", threshold}, {"seq", *next},        {"signatures", json::Array{}}};
  if (auto s = WriteJsonFile(a.Get("output"), file); !s.ok()) return Fail(s.message());
  std::cout << "wrote " << a.Get("output") << ": " << keys.size() << " publisher(s), threshold "
            << threshold
            << "; sign it with the current publisher keys, then `peerstack release publish "
            << a.Get("output") << "`\n";
  return 0;
}

int Fail(const std::string& message, int code) {
  std::cerr << "peerstack: " << message << "\n";
  return code;
}

Result<json::Value> Admin(const std::string& data_dir, const std::string& method,
                          const std::string& path, const std::string& body) {
  // A node holds its data dir's lock while it runs: if we can take it, the ports.json there is
  // a killed node's, and its ports may belong to something else by now.
  if (const int fd = ::open((data_dir + "/" + node::kLockFile).c_str(), O_RDONLY | O_CLOEXEC);
      fd >= 0) {
    const bool free = ::flock(fd, LOCK_SH | LOCK_NB) == 0;
    ::close(fd);
    if (free) return Status::Error("no_node", "no node is running with data dir " + data_dir);
  }
  auto ports_text = files::ReadFile(data_dir + "/" + node::kPortsFile, 4096);
  if (!ports_text)
    return Status::Error("no_node",
                         "no node is running with data dir " + data_dir + " (no ports.json)");
  auto ports = json::Parse(*ports_text);
  const int64_t* admin = ports ? ports->find_int("admin") : nullptr;
  if (!admin) return Status::Error("no_node", data_dir + "/ports.json is malformed");
  auto token = files::ReadFile(data_dir + "/" + node::kTokenFile, 4096);
  if (!token) return Status::Error("no_node", "cannot read " + data_dir + "/" + node::kTokenFile);
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  http::ClientRequest req;
  req.method = method;
  req.url = "http://127.0.0.1:" + std::to_string(*admin) + path;
  req.headers.push_back({"authorization", "Bearer " + t});
  if (!body.empty()) req.headers.push_back({"content-type", "application/json"});
  req.body = body;
  req.timeout = std::chrono::milliseconds(15000);
  auto resp = http::Fetch(req);
  if (!resp)
    return Status::Error("no_node",
                         "cannot reach the node's admin listener: " + resp.status().message());
  auto v = json::Parse(resp->body);
  if (resp->status >= 300) {
    const json::Value* err = v ? v->find("error") : nullptr;
    const std::string* msg = err ? err->find_string("message") : nullptr;
    return Status::Error("refused", "the node answered " + std::to_string(resp->status) + ": " +
                                        (msg ? *msg : resp->body.substr(0, 300)));
  }
  if (!v) return Status::Error("refused", "the node sent malformed JSON");
  return v;
}

int Keygen(const Values& a) {
  if (a.positional.size() != 1)
    return Fail("keygen needs one FILE (see peerstack keygen --help)", 2);
  const std::string& path = a.positional[0];
  if (files::Exists(path)) return Fail(path + " exists; not overwriting a key");
  bool created = false;
  auto key = store::LoadOrCreateNodeKey(path, &created);
  if (!key) return Fail(key.status().message());
  std::cout << "wrote " << path << " (0600)\npublic_key " << Hex(key->public_key()) << "\n";
  return 0;
}

int Invite(const Values& a) {
  int64_t ttl_ms = 0;
  ParseDuration(a.Get("expires"), &ttl_ms);  // checked with the flag
  json::Object body{{"expires_in", ttl_ms / 1000}};
  if (a.Has("note")) body.emplace("note", a.Get("note"));
  auto r = Admin(DataDir(a), "POST", "/invitations", json::Serialize(json::Value(std::move(body))));
  if (!r) return Fail(r.status().message());
  if (a.Has("json")) {
    std::cout << json::Serialize(*r) << "\n";
    return 0;
  }
  const std::string* link = r->find_string("link");
  const std::string* token = r->find_string("token");
  const int64_t* expires = r->find_int("expires");
  if (!link || !token || !expires) return Fail("the node's answer is malformed");
  std::cout << "invitation for one node, valid until " << log::UtcTime(*expires) << "\n"
            << "  link:  " << *link << "\n"
            << "  a friend: curl -o app.run '" << *link << "' && chmod +x app.run && ./app.run\n"
            << "  token: " << *token << "\n";
  return 0;
}

}  // namespace peerstack::cli
