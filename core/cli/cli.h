// The `peerstack` command line (docs/operations.md, "Commands"): every command and flag,
// defined once in cli.cpp on CLI11 with the conventions of command_line.h.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "cli/command_line.h"
#include "node/config.h"

namespace peerstack::cli {

// Every command and its flags; `peerstack run`'s are bound to *run.
void Define(CommandLine* cl, node::Config* run);

// Every command's flags as the Markdown tables of docs/operations.md (`peerstack help
// --markdown`).
std::string FlagTables(CommandLine* cl);

// Runs the command line on args (without the program name) and returns the exit code: 0
// success or help, 1 a runtime error, 2 bad usage, 3 (a /download file) damaged or untrusted.
int Main(std::vector<std::string> args);

// `peerstack run`'s flags (args without "run") into *config, as Main reads them: flag >
// environment > --config file > default, then CheckConfig. For tests.
Status ParseRunConfig(const std::vector<std::string>& args, const GetEnv& env,
                      node::Config* config);

}  // namespace peerstack::cli
