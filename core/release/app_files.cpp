#include "release/app_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <tuple>

#include "base/files.h"
#include "base/log.h"
#include "crypto/sha256.h"

namespace peerstack::release {
namespace {

struct Found {
  std::string role, path, source;
};

void Walk(const std::string& root, const std::string& rel, int depth, std::vector<Found>* out) {
  if (depth > 32) return;
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    const std::string path = rel.empty() ? name : rel + "/" + name;
    struct stat st {};
    if (::lstat((root + "/" + path).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      Walk(root, path, depth + 1, out);
    } else if (S_ISREG(st.st_mode)) {
      out->push_back({"front", path, root + "/" + path});
    }
  }
  ::closedir(d);
}

}  // namespace

Result<std::vector<AppFile>> ScanAppFiles(const std::string& plugins_dir,
                                          const std::string& front_dir) {
  std::vector<Found> found;
  if (!plugins_dir.empty()) {
    if (DIR* d = ::opendir(plugins_dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() < 4 || name[0] == '.' || name.compare(name.size() - 3, 3, ".so") != 0)
          continue;
        struct stat st {};
        const std::string path = plugins_dir + "/" + name;
        if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
          found.push_back({"plugin", name, path});
      }
      ::closedir(d);
    }
  }
  if (!front_dir.empty()) Walk(front_dir, "", 0, &found);
  std::vector<AppFile> out;
  int64_t total = 0;
  for (const Found& f : found) {
    if (!protocol::ValidReleasePath(f.role, f.path)) {
      PS_LOG(kWarn, "release") << "skipping " << f.source << ": a release cannot list this name";
      continue;
    }
    if (out.size() >= protocol::kMaxReleaseFiles) {
      return Status::Error("too_large",
                           "more than " + std::to_string(protocol::kMaxReleaseFiles) + " files");
    }
    auto bytes = files::ReadFile(f.source, static_cast<size_t>(protocol::kMaxReleaseFileBytes));
    if (!bytes)
      return Status::Error(bytes.status().code(), f.source + ": " + bytes.status().message());
    total += static_cast<int64_t>(bytes->size());
    if (total > protocol::kMaxReleaseBytes)
      return Status::Error("too_large", "the app is larger than 512 MiB");
    out.push_back({{f.role, f.path, crypto::Sha256Hex(*bytes), static_cast<int64_t>(bytes->size())},
                   f.source});
  }
  std::sort(out.begin(), out.end(), [](const AppFile& a, const AppFile& b) {
    return std::tie(a.entry.role, a.entry.path) < std::tie(b.entry.role, b.entry.path);
  });
  return out;
}

std::vector<protocol::FileEntry> EntriesOf(const std::vector<AppFile>& files) {
  std::vector<protocol::FileEntry> out;
  out.reserve(files.size());
  for (const AppFile& f : files) out.push_back(f.entry);
  return out;
}

}  // namespace peerstack::release
