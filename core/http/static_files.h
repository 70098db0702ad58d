// Serves a directory of static files (the frontend) safely:
//   - GET and HEAD only; MIME types by extension; strong ETags with 304 on If-None-Match.
//   - The path is percent-decoded once; "." and ".." segments, NUL, backslashes and bad
//     escapes are refused with 400; a file reached through a symlink that leaves the root is
//     refused with 404. Nothing outside the root is ever read.
//   - SPA fallback: a missing path whose last segment has no extension, and that is not under
//     an excluded prefix (/api/, /p2p/), gets the root's index.html, so client-side routes
//     work on reload. Missing assets ("/x.js") stay 404.
// Small files are cached in memory and revalidated against the disk at most once a second.
// Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "http/message.h"
#include "http/url.h"

namespace peerstack::http {

struct StaticFilesOptions {
  std::string root;
  bool spa_fallback = true;
  std::vector<std::string> excluded_prefixes = {"/api/", "/p2p/"};
  size_t max_cached_file_bytes = 1 << 20;
  size_t max_file_bytes = 256u << 20;
  const Clock* clock = nullptr;  // when to revalidate a cached file; null: the system clock
};

class StaticFiles {
 public:
  explicit StaticFiles(StaticFilesOptions options);
  ~StaticFiles();
  StaticFiles(const StaticFiles&) = delete;
  StaticFiles& operator=(const StaticFiles&) = delete;

  Response Handle(const Request& request) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Content-Type for a file name ("application/octet-stream" when unknown).
std::string MimeTypeFor(std::string_view file_name);

}  // namespace peerstack::http
