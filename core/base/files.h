// File helpers shared by every module that persists something: whole-file reads with a size
// cap, and crash-safe writes (temp file, fsync, rename, fsync of the directory) with a mode.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "base/result.h"

namespace peerstack::files {

// Reads a whole regular file of at most max_bytes.
Result<std::string> ReadFile(const std::string& path, size_t max_bytes);

// Replaces path atomically with data: after a crash at any instant the file holds either the
// old or the new content, never a mix. The file is created with `mode` (e.g. 0600).
Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode);

// Creates a directory and its parents (mode 0700 for the ones it creates).
Status MakeDirs(const std::string& path);

bool Exists(const std::string& path);

}  // namespace peerstack::files
