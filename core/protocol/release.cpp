#include "protocol/release.h"

#include <algorithm>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "protocol/join.h"

namespace peerstack::protocol {
namespace {

constexpr char kManifestDomain[] = "release-manifest";

Status Bad(std::string message) { return Status::Error("bad_manifest", std::move(message)); }

}  // namespace

std::string CodeHashOf(std::vector<std::pair<std::string, std::string>> name_sha) {
  std::sort(name_sha.begin(), name_sha.end());
  std::string all;
  for (const auto& [name, sha] : name_sha) all += name + " " + sha + "\n";
  return crypto::Sha256Hex(all);
}

json::Value Manifest::ToJson() const {
  json::Array list;
  for (const PluginEntry& p : plugins) {
    list.push_back(json::Object{{"name", p.name}, {"sha256", p.sha256}, {"version", p.version}});
  }
  return json::Object{{"expires", expires_ms}, {"plugins", std::move(list)}, {"version", version}};
}

std::string Manifest::CodeHash() const {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const PluginEntry& p : plugins) pairs.emplace_back(p.name, p.sha256);
  return CodeHashOf(std::move(pairs));
}

Result<Manifest> ParseManifest(const json::Value& v) {
  if (!v.is_object() || v.as_object().size() != 3) return Bad("a manifest has expires, plugins, version");
  const int64_t* version = v.find_int("version");
  const int64_t* expires = v.find_int("expires");
  const json::Value* plugins = v.find("plugins");
  if (!version || !expires || !plugins || !plugins->is_array() || *version < 1) {
    return Bad("manifest fields missing or of the wrong type");
  }
  Manifest m;
  m.version = *version;
  m.expires_ms = *expires;
  std::string previous;
  for (const json::Value& p : plugins->as_array()) {
    const std::string* name = p.find_string("name");
    const std::string* ver = p.find_string("version");
    const std::string* sha = p.find_string("sha256");
    if (!name || !ver || !sha || p.as_object().size() != 3 || sha->size() != 64 ||
        !crypto::HexDecode(*sha)) {
      return Bad("a plugin entry has name, sha256 (64 hex) and version");
    }
    if (!m.plugins.empty() && *name <= previous) return Bad("plugins must be sorted by name, once each");
    previous = *name;
    m.plugins.push_back({*name, *ver, *sha});
  }
  return m;
}

PublisherSignature SignManifest(const crypto::SigningKey& key, const Manifest& m) {
  const auto sig = key.SignWithDomain(kManifestDomain, json::Serialize(m.ToJson()));
  return {crypto::HexEncode(key.public_key().data(), 32), crypto::HexEncode(sig.data(), sig.size())};
}

Status VerifyManifestSignature(const PublisherSignature& s, const Manifest& m,
                               crypto::VerifyCache* cache) {
  return VerifyHexSignature(s.publisher, kManifestDomain, json::Serialize(m.ToJson()), s.sig, cache);
}

}  // namespace peerstack::protocol
