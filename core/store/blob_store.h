// Blobs (plugin files, bundles) on disk named by their sha256: written to a temp file,
// fsynced and renamed, so a blob is either absent or complete. Files are read-only (0444)
// once stored: a content-addressed path never changes under a reader.
#pragma once

#include <string>

#include "base/result.h"

namespace peerstack::store {

class BlobStore {
 public:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}

  // Stores data; returns its hex sha256. Storing the same bytes twice is a no-op.
  Result<std::string> Put(const std::string& data);
  // The same, for bytes the caller has just hashed to sha256 (not hashed again).
  Result<std::string> PutHashed(const std::string& data, const std::string& sha256);
  // The path of a stored blob, or "not_found". hash must be 64 lower-case hex digits.
  Result<std::string> PathOf(const std::string& hash) const;
  // Reads a blob back and checks its hash ("corrupt" if the bytes changed on disk).
  Result<std::string> Get(const std::string& hash, size_t max_bytes) const;

 private:
  std::string dir_;
};

}  // namespace peerstack::store
