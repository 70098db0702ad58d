// The commands behind the flags cli.cpp defines (docs/operations.md, "Commands";
// docs/releases.md): each takes its parsed, checked values and returns the exit code.
#pragma once

#include <string>

#include "base/result.h"
#include "cli/command_line.h"
#include "json/json.h"

namespace peerstack::cli {

// One request to the admin listener of the node running with data_dir (its ports.json and
// admin.token): the parsed JSON answer, or "no_node" (not running, unreachable) or
// "refused" (an error status, with the node's message).
Result<json::Value> Admin(const std::string& data_dir, const std::string& method,
                          const std::string& path, const std::string& body = "");

// Prints "peerstack: message" on stderr; returns code (the exit code).
int Fail(const std::string& message, int code = 1);

int Keygen(const Values& values);
// `peerstack invite`: an invitation from the running member (admin POST /invitations).
int Invite(const Values& values);
int ReleaseCreate(const Values& values);
int ReleaseSign(const Values& values);
int ReleasePublish(const Values& values);
int ReleaseStatus(const Values& values);
int ReleaseRotate(const Values& values);
// `peerstack init DIR [--name NAME]`: a new app's starting point (docs/plugin-sdk.md, "Start a
// new app").
int Init(const Values& values);

}  // namespace peerstack::cli
