#include "protocol/release.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "protocol/join.h"

namespace peerstack::protocol {
namespace {

constexpr char kManifestDomain[] = "release-manifest";

Status Bad(std::string message) { return Status::Error("bad_manifest", std::move(message)); }

bool Has(const json::Value& v, std::initializer_list<const char*> keys) {
  if (!v.is_object() || v.as_object().size() != keys.size()) return false;
  for (const char* k : keys) {
    if (!v.find(k)) return false;
  }
  return true;
}

}  // namespace

bool ValidReleasePath(const std::string& role, const std::string& path) {
  if (path.empty() || path.size() > kMaxReleasePath || path.front() == '/' || path.back() == '/') {
    return false;
  }
  for (char c : path) {
    if (c < 0x21 || c > 0x7e || c == '\\') return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view seg(path.data() + start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  if (role == "plugin") {
    return path.find('/') == std::string::npos && path.size() > 3 &&
           path.compare(path.size() - 3, 3, ".so") == 0 && path[0] != '.';
  }
  return role == "front";
}

std::string CodeHashOf(std::vector<FileEntry> files) {
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) {
    return std::tie(a.role, a.path) < std::tie(b.role, b.path);
  });
  std::string all;
  for (const FileEntry& f : files) {
    all += f.role + " " + f.path + " " + f.sha256 + " " + std::to_string(f.size) + "\n";
  }
  return crypto::Sha256Hex(all);
}

json::Value ToJson(const RolloutPolicy& p) {
  return json::Object{{"healthy_percent", p.healthy_percent},
                      {"max_error_percent", p.max_error_percent},
                      {"max_failures", p.max_failures},
                      {"soak_ms", p.soak_ms},
                      {"stages", p.stages}};
}

Result<RolloutPolicy> ParseRolloutPolicy(const json::Value& v) {
  if (!Has(v, {"healthy_percent", "max_error_percent", "max_failures", "soak_ms", "stages"})) {
    return Bad(
        "a rollout policy has healthy_percent, max_error_percent, max_failures, soak_ms, stages");
  }
  const int64_t* hp = v.find_int("healthy_percent");
  const int64_t* ep = v.find_int("max_error_percent");
  const int64_t* mf = v.find_int("max_failures");
  const int64_t* soak = v.find_int("soak_ms");
  const int64_t* stages = v.find_int("stages");
  if (!hp || !ep || !mf || !soak || !stages) return Bad("rollout policy fields are integers");
  if (*stages < 1 || *stages > 16) return Bad("rollout stages must be 1 to 16");
  if (*soak < 0 || *soak > 86400000) return Bad("rollout soak_ms must be 0 to one day");
  if (*hp < 1 || *hp > 100) return Bad("rollout healthy_percent must be 1 to 100");
  if (*ep < 1 || *ep > 100) return Bad("rollout max_error_percent must be 1 to 100");
  if (*mf < 1 || *mf > 1000000) return Bad("rollout max_failures must be at least 1");
  return RolloutPolicy{*stages, *soak, *hp, *mf, *ep};
}

json::Value Manifest::ToJson() const {
  json::Array list;
  for (const FileEntry& f : files) {
    list.push_back(
        json::Object{{"path", f.path}, {"role", f.role}, {"sha256", f.sha256}, {"size", f.size}});
  }
  return json::Object{{"created", created_ms},
                      {"expires", expires_ms},
                      {"files", std::move(list)},
                      {"network", network},
                      {"rollout", protocol::ToJson(rollout)},
                      {"version", version}};
}

std::string Manifest::CodeHash() const { return CodeHashOf(files); }

int64_t Manifest::TotalBytes() const {
  int64_t total = 0;
  for (const FileEntry& f : files) total += f.size;
  return total;
}

Result<Manifest> ParseManifest(const json::Value& v) {
  if (!Has(v, {"created", "expires", "files", "network", "rollout", "version"})) {
    return Bad("a manifest has created, expires, files, network, rollout, version");
  }
  const int64_t* version = v.find_int("version");
  const int64_t* created = v.find_int("created");
  const int64_t* expires = v.find_int("expires");
  const std::string* network = v.find_string("network");
  const json::Value* files = v.find("files");
  if (!version || !created || !expires || !network || !files->is_array()) {
    return Bad("manifest fields of the wrong type");
  }
  if (*version < 1) return Bad("manifest version must be at least 1");
  if (*expires <= *created) return Bad("manifest expires before it was created");
  if (!crypto::IsSha256Hex(*network)) return Bad("manifest network is not a network id");
  if (files->as_array().size() > kMaxReleaseFiles) {
    return Bad("manifest lists more than " + std::to_string(kMaxReleaseFiles) + " files");
  }
  auto rollout = ParseRolloutPolicy(*v.find("rollout"));
  if (!rollout) return rollout.status();
  Manifest m;
  m.network = *network;
  m.version = *version;
  m.created_ms = *created;
  m.expires_ms = *expires;
  m.rollout = *rollout;
  int64_t total = 0;
  for (const json::Value& f : files->as_array()) {
    if (!Has(f, {"path", "role", "sha256", "size"})) {
      return Bad("a file entry has path, role, sha256 and size");
    }
    const std::string* role = f.find_string("role");
    const std::string* path = f.find_string("path");
    const std::string* sha = f.find_string("sha256");
    const int64_t* size = f.find_int("size");
    if (!role || !path || !sha || !size) return Bad("file entry fields of the wrong type");
    if (*role != "plugin" && *role != "front") return Bad("file role must be plugin or front");
    if (!ValidReleasePath(*role, *path))
      return Bad("unsafe or invalid path '" + path->substr(0, 64) + "'");
    if (!crypto::IsSha256Hex(*sha))
      return Bad("sha256 of " + *path + " is not 64 lower-case hex digits");
    if (*size < 0 || *size > kMaxReleaseFileBytes) return Bad("size of " + *path + " out of range");
    total += *size;
    if (total > kMaxReleaseBytes)
      return Bad("release larger than " + std::to_string(kMaxReleaseBytes >> 20) + " MiB");
    FileEntry e{*role, *path, *sha, *size};
    if (!m.files.empty() &&
        std::tie(e.role, e.path) <= std::tie(m.files.back().role, m.files.back().path)) {
      return Bad("files must be sorted by role and path, each once");
    }
    m.files.push_back(std::move(e));
  }
  // A frontend file may not also be a directory of another ("a" and "a/b").
  std::set<std::string> front;
  for (const FileEntry& f : m.files) {
    if (f.role == "front") front.insert(f.path);
  }
  for (const std::string& p : front) {
    for (size_t slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1)) {
      if (front.count(p.substr(0, slash)))
        return Bad("'" + p.substr(0, slash) + "' is both a file and a directory");
    }
  }
  return m;
}

PublisherSignature SignManifest(const crypto::SigningKey& key, const Manifest& m) {
  const auto sig = key.SignWithDomain(kManifestDomain, json::Serialize(m.ToJson()));
  return {crypto::HexEncode(key.public_key().data(), 32),
          crypto::HexEncode(sig.data(), sig.size())};
}

Status VerifyManifestSignature(const PublisherSignature& s, const Manifest& m,
                               crypto::VerifyCache* cache) {
  return VerifyHexSignature(s.publisher, kManifestDomain, json::Serialize(m.ToJson()), s.sig,
                            cache);
}

json::Value ToJson(const std::vector<PublisherSignature>& sigs) {
  json::Array list;
  for (const auto& s : sigs)
    list.push_back(json::Object{{"publisher", s.publisher}, {"sig", s.sig}});
  return list;
}

Result<std::vector<PublisherSignature>> ParseSignatures(const json::Value& v) {
  if (!v.is_array() || v.as_array().size() > 64) return Bad("signatures are a list of at most 64");
  std::vector<PublisherSignature> out;
  for (const json::Value& s : v.as_array()) {
    const std::string* pub = s.find_string("publisher");
    const std::string* sig = s.find_string("sig");
    if (!Has(s, {"publisher", "sig"}) || !pub || !sig || pub->size() != 64 || sig->size() != 128) {
      return Bad("a signature has publisher (64 hex) and sig (128 hex)");
    }
    out.push_back({*pub, *sig});
  }
  return out;
}

std::string PublisherSetPayload(const std::string& network, const std::vector<std::string>& keys,
                                int64_t threshold, int64_t seq) {
  json::Array list(keys.begin(), keys.end());
  return json::Serialize(json::Object{{"network", network},
                                      {"publishers", std::move(list)},
                                      {"seq", seq},
                                      {"threshold", threshold}});
}

}  // namespace peerstack::protocol
