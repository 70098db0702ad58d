#include "http/static_files.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "base/files.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::http {
namespace {

struct CachedFile {
  std::string body;
  std::string etag;
  std::string mime;
  ino_t inode = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  int64_t checked_at_ms = 0;
};

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// True when the If-None-Match header lists etag (weak comparison, or "*").
bool EtagMatches(const std::string& header, const std::string& etag) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string::npos) end = header.size();
    std::string_view item(header.data() + pos, end - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item == etag) return true;
    pos = end + 1;
  }
  return false;
}

bool HasPrefix(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string MimeTypeFor(std::string_view name) {
  static const std::unordered_map<std::string_view, std::string_view> kTypes = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"wasm", "application/wasm"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"pdf", "application/pdf"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},
      {"webmanifest", "application/manifest+json"},
  };
  const size_t slash = name.find_last_of('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const size_t dot = base.find_last_of('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(base.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = kTypes.find(ext);
  return std::string(it == kTypes.end() ? "application/octet-stream" : it->second);
}

struct StaticFiles::Impl {
  StaticFilesOptions options;
  SystemClock system_clock;  // when options.clock is null
  std::string real_root;     // realpath of the root, without trailing slash
  mutable std::shared_mutex mu;
  mutable std::unordered_map<std::string, std::shared_ptr<const CachedFile>> cache;

  // Loads (or revalidates) the file at a decoded, checked relative path ("/a/b.js").
  // nullptr when absent, a directory, outside the root, or unreadable.
  std::shared_ptr<const CachedFile> Load(const std::string& rel) const {
    const int64_t now = (options.clock ? options.clock : &system_clock)->SteadyMs();
    {
      std::shared_lock<std::shared_mutex> lock(mu);
      auto it = cache.find(rel);
      if (it != cache.end() && now - it->second->checked_at_ms < 1000) return it->second;
    }
    const std::string full = real_root + rel;
    char resolved[PATH_MAX];
    if (::realpath(full.c_str(), resolved) == nullptr) return Forget(rel);
    const std::string_view res(resolved);
    if (!(res.size() > real_root.size() && HasPrefix(res, real_root) &&
          res[real_root.size()] == '/')) {
      return Forget(rel);  // a symlink that leaves the root
    }
    struct stat st {};
    if (::stat(resolved, &st) != 0 || !S_ISREG(st.st_mode)) return Forget(rel);
    {
      std::unique_lock<std::shared_mutex> lock(mu);
      auto it = cache.find(rel);
      if (it != cache.end() && it->second->inode == st.st_ino && it->second->size == st.st_size &&
          it->second->mtime_ns == MtimeNs(st)) {
        auto refreshed = std::make_shared<CachedFile>(*it->second);
        refreshed->checked_at_ms = now;
        it->second = refreshed;
        return refreshed;
      }
    }
    auto data = files::ReadFile(resolved, options.max_file_bytes);
    if (!data) return Forget(rel);
    auto file = std::make_shared<CachedFile>();
    const crypto::Digest digest = crypto::Sha256(*data);
    file->etag = "\"" + crypto::HexEncode(digest.data(), 16) + "\"";
    file->mime = MimeTypeFor(rel);
    file->body = std::move(data).value();
    file->inode = st.st_ino;
    file->size = st.st_size;
    file->mtime_ns = MtimeNs(st);
    file->checked_at_ms = now;
    if (file->body.size() <= options.max_cached_file_bytes) {
      std::unique_lock<std::shared_mutex> lock(mu);
      if (cache.size() > 4096) cache.clear();
      cache[rel] = file;
    }
    return file;
  }

  std::shared_ptr<const CachedFile> Forget(const std::string& rel) const {
    std::unique_lock<std::shared_mutex> lock(mu);
    cache.erase(rel);
    return nullptr;
  }
};

StaticFiles::StaticFiles(StaticFilesOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  char resolved[PATH_MAX];
  if (::realpath(impl_->options.root.c_str(), resolved) != nullptr) {
    impl_->real_root = resolved;
  } else {
    impl_->real_root = impl_->options.root;
  }
  while (impl_->real_root.size() > 1 && impl_->real_root.back() == '/') {
    impl_->real_root.pop_back();
  }
}

StaticFiles::~StaticFiles() = default;

Response StaticFiles::Handle(const Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = JsonError(405, "method_not_allowed", "static files answer GET and HEAD");
    r.set("allow", "GET, HEAD");
    return r;
  }
  std::string decoded;
  if (!PercentDecode(request.path, &decoded) || decoded.empty() || decoded.front() != '/') {
    return JsonError(400, "bad_path", "malformed path");
  }
  // Check every segment of the decoded path: no "..", ".", NUL or backslash.
  size_t start = 1;
  while (start <= decoded.size()) {
    size_t end = decoded.find('/', start);
    if (end == std::string::npos) end = decoded.size();
    const std::string_view seg(decoded.data() + start, end - start);
    if (seg == ".." || seg == "." || seg.find('\0') != std::string_view::npos ||
        seg.find('\\') != std::string_view::npos) {
      return JsonError(400, "bad_path", "path segments may not be '.', '..' or contain NUL");
    }
    start = end + 1;
  }
  std::string rel = decoded;
  if (rel.back() == '/') rel += "index.html";
  auto file = impl_->Load(rel);
  if (!file && decoded.back() != '/') {
    // A directory without trailing slash: its index.
    file = impl_->Load(rel + "/index.html");
  }
  if (!file && impl_->options.spa_fallback) {
    bool excluded = false;
    for (const auto& p : impl_->options.excluded_prefixes) excluded |= HasPrefix(decoded, p);
    const size_t slash = decoded.find_last_of('/');
    const bool has_extension = decoded.find('.', slash) != std::string::npos;
    if (!excluded && !has_extension) file = impl_->Load("/index.html");
  }
  if (!file) return JsonError(404, "not_found", "no such file");

  Response r;
  r.set("etag", file->etag);
  r.set("cache-control", "no-cache");
  r.set("x-content-type-options", "nosniff");
  const std::string* inm = request.header("if-none-match");
  if (inm && EtagMatches(*inm, file->etag)) {
    r.status = 304;
    return r;
  }
  r.set("content-type", file->mime);
  r.body = file->body;
  return r;
}

}  // namespace peerstack::http
