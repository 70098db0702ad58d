// The node's Ed25519 key on disk: one file holding the hex seed, mode 0600, created once and
// reused. A key file readable by group or others is refused (like ssh), not silently used.
#pragma once

#include <string>

#include "base/result.h"
#include "crypto/ed25519.h"

namespace peerstack::store {

// Loads the key at path, or creates it when the file does not exist (*created says which).
Result<crypto::SigningKey> LoadOrCreateNodeKey(const std::string& path, bool* created);

// Loads the key at path; "not_found" when there is no such file.
Result<crypto::SigningKey> LoadKey(const std::string& path);
// Loads or creates a secret token file (hex, mode 0600), e.g. the admin bearer token.
Result<std::string> LoadOrCreateToken(const std::string& path);

}  // namespace peerstack::store
