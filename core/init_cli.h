// `peerstack init DIR [--name NAME]`: a new app's starting point (docs/plugin-sdk.md, "Start a
// new app"). Returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace peerstack::cli {

int Init(const std::vector<std::string>& args);

}  // namespace peerstack::cli
