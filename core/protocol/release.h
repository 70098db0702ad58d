// Releases (docs/releases.md, docs/protocol.md; after TUF): one manifest lists every file of
// the app, plugins and frontend alike, with its role, path, sha256 and size, so a node can
// never mix files of two releases. It names the network it is for (a publisher key used in
// two networks cannot have its signature replayed from one to the other), carries a version
// that only rises (no rollback), created and expiry times (no freeze), and the rollout
// policy. It is signed by at least the threshold of the network's publisher keys (domain
// "release-manifest", over the manifest's canonical JSON); a release event carries it into
// the ledger.
//
// The code a node presents when joining is CodeHashOf() its files: the same function over a
// release's list or over the files a node was started with (release 0, which genesis records).
// Pure values and checks, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::protocol {

// Limits on what a manifest may list (an event is at most 256 KiB on the wire).
inline constexpr size_t kMaxReleaseFiles = 1000;
inline constexpr int64_t kMaxReleaseFileBytes = int64_t{64} << 20;
inline constexpr int64_t kMaxReleaseBytes = int64_t{512} << 20;
inline constexpr size_t kMaxReleasePath = 240;

// One file of the app. role "plugin": a shared library loaded by the plugin host, path its
// file name (no '/'); role "front": a frontend file, path relative to the frontend root.
struct FileEntry {
  std::string role;
  std::string path;
  std::string sha256;  // 64 lower-case hex
  int64_t size = 0;
  bool operator==(const FileEntry&) const = default;
};

// How a release spreads (docs/releases.md, "Staged rollout"). Stage k of `stages` starts once
// `healthy_percent` of the members in every earlier stage report healthy and the last of
// those reports is `soak_ms` old; `max_failures` failure reports halt the rollout everywhere.
// A node reports a failure when the new version does not start, or when more than
// `max_error_percent` of at least 20 plugin calls fail within soak_ms (10 s at least) of the
// switch.
struct RolloutPolicy {
  int64_t stages = 1;              // 1..16
  int64_t soak_ms = 0;             // 0..1 day
  int64_t healthy_percent = 100;   // 1..100
  int64_t max_failures = 1;        // >= 1
  int64_t max_error_percent = 20;  // 1..100
  bool operator==(const RolloutPolicy&) const = default;
};

struct Manifest {
  std::string network;  // the network id it is for
  int64_t version = 0;  // >= 1, above the release in force
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::vector<FileEntry> files;  // sorted by (role, path), each once
  RolloutPolicy rollout;

  json::Value ToJson() const;
  // CodeHashOf(files): what a node running exactly this release presents.
  std::string CodeHash() const;
  int64_t TotalBytes() const;
};

// Strict: exactly the fields above, sorted unique safe paths, sizes within the limits.
Result<Manifest> ParseManifest(const json::Value& v);
Result<RolloutPolicy> ParseRolloutPolicy(const json::Value& v);
json::Value ToJson(const RolloutPolicy& p);

// A path a manifest may name for a role: not empty, at most kMaxReleasePath bytes, printable
// ASCII without backslash, no empty, "." or ".." segment, no leading '/'; a plugin's has no
// '/' at all and ends in ".so".
bool ValidReleasePath(const std::string& role, const std::string& path);

struct PublisherSignature {
  std::string publisher;  // hex key
  std::string sig;
};

PublisherSignature SignManifest(const crypto::SigningKey& key, const Manifest& m);
Status VerifyManifestSignature(const PublisherSignature& s, const Manifest& m,
                               crypto::VerifyCache* cache = nullptr);
json::Value ToJson(const std::vector<PublisherSignature>& sigs);
// [{publisher, sig}], each with 64 + 128 hex digits.
Result<std::vector<PublisherSignature>> ParseSignatures(const json::Value& v);

// sha256 over "role path sha256 size\n" lines sorted by (role, path).
std::string CodeHashOf(std::vector<FileEntry> files);

// A change of the publisher set (rotation after a lost key): the new keys and threshold, a
// rising sequence, signed by the threshold of the set in force (domain "publisher-set").
std::string PublisherSetPayload(const std::string& network, const std::vector<std::string>& keys,
                                int64_t threshold, int64_t seq);

}  // namespace peerstack::protocol
