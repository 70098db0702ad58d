#include "store/key_file.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "base/files.h"
#include "crypto/encoding.h"
#include "crypto/random.h"

namespace peerstack::store {
namespace {

constexpr size_t kMaxSecretFile = 4096;

// Reads a 0600 secret file and strips trailing white space.
Result<std::string> ReadSecret(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Error("not_found", path);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Error("insecure_file", path + " has mode " + mode +
                                              "; it must not be readable by others "
                                              "(chmod 600 " +
                                              path + ")");
  }
  auto data = files::ReadFile(path, kMaxSecretFile);
  if (!data) return data.status();
  std::string s = std::move(data).value();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<crypto::SigningKey> LoadOrCreateNodeKey(const std::string& path, bool* created) {
  *created = false;
  if (!files::Exists(path)) {
    auto key = crypto::SigningKey::Generate();
    const auto& seed = key.seed();
    if (auto s =
            files::WriteFileAtomic(path, crypto::HexEncode(seed.data(), seed.size()) + "\n", 0600);
        !s.ok()) {
      return s;
    }
    *created = true;
    return key;
  }
  auto text = ReadSecret(path);
  if (!text) return text.status();
  auto bytes = crypto::HexDecode(*text);
  if (!bytes || bytes->size() != crypto::kSeedSize) {
    return Status::Error("bad_key_file", path + " does not hold a 32-byte hex Ed25519 seed");
  }
  crypto::Seed seed{};
  std::memcpy(seed.data(), bytes->data(), seed.size());
  return crypto::SigningKey::FromSeed(seed);
}

Result<std::string> LoadOrCreateToken(const std::string& path) {
  if (!files::Exists(path)) {
    std::string token = crypto::RandomHex(32);
    if (auto s = files::WriteFileAtomic(path, token + "\n", 0600); !s.ok()) return s;
    return token;
  }
  auto text = ReadSecret(path);
  if (!text) return text.status();
  if (text->size() < 32) {
    return Status::Error("bad_token_file", path + " holds a token shorter than 32 characters");
  }
  return text;
}

Result<crypto::SigningKey> LoadKey(const std::string& path) {
  if (!files::Exists(path)) return Status::Error("not_found", "no key file " + path);
  bool created = false;
  return LoadOrCreateNodeKey(path, &created);
}

}  // namespace peerstack::store
