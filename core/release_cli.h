// The publisher's commands (docs/releases.md): `peerstack keygen FILE` and
// `peerstack release create|sign|publish|status|rotate`. Each returns the exit code.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "json/json.h"

namespace peerstack::cli {

// One request to the admin listener of the node running with data_dir (its ports.json and
// admin.token): the parsed JSON answer, or "no_node" (not running, unreachable) or
// "refused" (an error status, with the node's message).
Result<json::Value> Admin(const std::string& data_dir, const std::string& method,
                          const std::string& path, const std::string& body = "");

// Prints "peerstack: message" on stderr; returns code (the exit code).
int Fail(const std::string& message, int code = 1);

int Keygen(const std::vector<std::string>& args);
int Release(const std::vector<std::string>& args);
// `peerstack invite`: an invitation from the running member (admin POST /invitations).
int Invite(const std::vector<std::string>& args);

}  // namespace peerstack::cli
