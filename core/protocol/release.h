// Releases (DESIGN.md sections 5 and 6, after TUF): a manifest lists every plugin with its
// version and sha256, carries a rising version (no rollback) and an expiry, and is signed by
// a threshold of the network's publishers (domain "release-manifest"). A release event puts
// it in the ledger; the code hash joiners must present is then the manifest's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::protocol {

struct PluginEntry {
  std::string name;
  std::string version;
  std::string sha256;
};

struct Manifest {
  int64_t version = 0;
  int64_t expires_ms = 0;
  std::vector<PluginEntry> plugins;  // sorted by name

  json::Value ToJson() const;
  // sha256 over "name sha256\n" lines sorted by name: what a node with exactly these
  // plugins presents as its code hash.
  std::string CodeHash() const;
};

Result<Manifest> ParseManifest(const json::Value& v);

struct PublisherSignature {
  std::string publisher;  // hex key
  std::string sig;
};

PublisherSignature SignManifest(const crypto::SigningKey& key, const Manifest& m);
Status VerifyManifestSignature(const PublisherSignature& s, const Manifest& m,
                               crypto::VerifyCache* cache = nullptr);

// The code hash of a plugin set given as (name, sha256) pairs; the same function the
// manifest uses.
std::string CodeHashOf(std::vector<std::pair<std::string, std::string>> name_sha);

}  // namespace peerstack::protocol
