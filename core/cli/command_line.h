// The conventions every `peerstack` command follows, on CLI11 (docs/operations.md, "Commands"):
// each flag is defined once, with its help, default and range; each has an environment variable
// (PEERSTACK_<FLAG>, or the names given with Env); commands that read a data dir take
// `--config FILE` (CLI11's TOML/INI format). A value comes from the first of: the flag, its
// environment variable, the config file (a `[command]` section before the top level), the
// default. `--help`/`-h` on every command; help is text an operator reads and help2man turns
// into a man page; FlagTable is the same definition as the Markdown in docs/operations.md.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace peerstack::cli {

using GetEnv = std::function<const char*(const char*)>;

// A parsed command's flags as text (the long name without dashes -> the value, lists joined by
// ','): those given somewhere, and the defaults of the others (for commands whose flags are
// not bound to variables, a default is a value); its positional arguments.
struct Values {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  bool Has(const std::string& name) const { return flags.count(name) != 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
};

class CommandLine {
 public:
  CommandLine(const std::string& name, const std::string& description);
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  CLI::App* root() { return &root_; }
  // A command under parent (root() for a top-level one).
  CLI::App* Add(CLI::App* parent, const std::string& name, const std::string& description);
  // `--config FILE` (env PEERSTACK_CONFIG) for cmd.
  void WithConfig(CLI::App* cmd);
  // opt's environment variables in place of PEERSTACK_<FLAG>; the first one set is used.
  void Env(CLI::Option* opt, std::vector<std::string> names);
  const std::vector<std::string>& EnvOf(const CLI::Option* opt);

  // Parses args (without the program name). The command reached (root() when none was named),
  // or Status "help" whose message is the help text to print (exit 0), or "bad_flag" with a
  // message naming the flag, variable or file line at fault (exit 2).
  Result<CLI::App*> Parse(const std::vector<std::string>& args, const GetEnv& env);
  // The parsed command's values (after Parse).
  static Values ValuesOf(const CLI::App* cmd);

  std::string Help(const CLI::App* cmd);
  // "run", "release create": cmd's path below the root.
  static std::string PathOf(const CLI::App* cmd);
  // Every command with flags of its own or no subcommands, depth first, in definition order.
  std::vector<CLI::App*> Commands();
  // cmd's flags as a Markdown table: | flag | environment | default | meaning |.
  std::string FlagTable(const CLI::App* cmd);

 private:
  void AssignEnvNames();
  static std::string DefaultEnv(const CLI::Option* opt);  // PEERSTACK_<FLAG>
  std::string Explain(CLI::App* cmd, const CLI::ParseError& e);
  Status Layer(CLI::App* cmd, const GetEnv& env);

  CLI::App root_;
  std::map<const CLI::Option*, std::vector<std::string>> env_;
  std::map<const CLI::App*, CLI::Option*> config_;
  bool env_assigned_ = false;
};

// Validators whose description (shown in help, in the tables) and message say the range.
// A whole number from lo to hi.
CLI::Validator Between(int64_t lo, int64_t hi);
// A duration with a unit ("30d", "12h", "90m", "45s", "500ms"; plain digits are milliseconds
// unless unit_needed) from min_ms to max_ms.
CLI::Validator Duration(int64_t min_ms, int64_t max_ms, bool unit_needed = false);
bool ParseDuration(const std::string& text, int64_t* ms);
// One of the words.
CLI::Validator OneOf(std::vector<std::string> words);

}  // namespace peerstack::cli
