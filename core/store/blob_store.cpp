#include "store/blob_store.h"

#include <algorithm>

#include "base/files.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::store {

Result<std::string> BlobStore::Put(const std::string& data) {
  return PutHashed(data, crypto::Sha256Hex(data));
}

Result<std::string> BlobStore::PutHashed(const std::string& data, const std::string& hash) {
  if (!crypto::IsSha256Hex(hash))
    return Status::Error("invalid_argument", "not a sha256 hex digest");
  if (auto s = files::MakeDirs(dir_); !s.ok()) return s;
  const std::string path = dir_ + "/" + hash;
  if (files::Exists(path)) return hash;
  if (auto s = files::WriteFileAtomic(path, data, 0444); !s.ok()) return s;
  return hash;
}

Result<std::string> BlobStore::PathOf(const std::string& hash) const {
  if (!crypto::IsSha256Hex(hash))
    return Status::Error("invalid_argument", "not a sha256 hex digest");
  std::string path = dir_ + "/" + hash;
  if (!files::Exists(path)) return Status::Error("not_found", "no blob " + hash);
  return path;
}

Result<std::string> BlobStore::Get(const std::string& hash, size_t max_bytes) const {
  auto path = PathOf(hash);
  if (!path) return path.status();
  auto data = files::ReadFile(*path, max_bytes);
  if (!data) return data.status();
  if (crypto::Sha256Hex(*data) != hash) {
    return Status::Error("corrupt", "blob " + hash + " does not match its hash");
  }
  return data;
}

}  // namespace peerstack::store
