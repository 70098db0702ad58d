// The files of an app on disk: a plugins directory (its *.so files) and a frontend directory
// (every regular file below it), each hashed, as manifest entries. The same scan makes a
// release (`peerstack release create`) and tells a node what code it was started with, so
// both compute the same code hash (protocol::CodeHashOf) for the same files.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "protocol/release.h"

namespace peerstack::release {

struct AppFile {
  protocol::FileEntry entry;
  std::string source;  // where it was read
};

// Files whose names start with '.' and symbolic links are skipped; so are entries a manifest
// could not list (unsafe names), with a warning in the log. Sorted by (role, path). A missing
// directory contributes nothing. Errors: "too_large" (past the manifest's limits), "io_error".
Result<std::vector<AppFile>> ScanAppFiles(const std::string& plugins_dir,
                                          const std::string& front_dir);

std::vector<protocol::FileEntry> EntriesOf(const std::vector<AppFile>& files);

}  // namespace peerstack::release
