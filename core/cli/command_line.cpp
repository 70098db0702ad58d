#include "cli/command_line.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

namespace peerstack::cli {
namespace {

constexpr size_t kColumn = 30;  // help: where the descriptions start
constexpr size_t kWidth = 100;  // help: the widest line

bool IsHelpFlag(const CLI::Option* opt) {
  return opt->check_lname("help") || opt->check_lname("help-all");
}

// A flag takes no value (CLI11 2.1 gives flags a type size of 1 and an expected count of 0).
bool IsFlag(const CLI::Option* opt) { return opt->get_expected_max() == 0; }

bool IsPositional(const CLI::Option* opt) {
  return opt->get_lnames().empty() && opt->get_snames().empty();
}

// "N" of "N:0-65535": the value's name; the rest are the validators' descriptions.
std::string TypeOf(const CLI::Option* opt) {
  const std::string t = opt->get_type_name();
  return t.substr(0, t.find(':'));
}
std::string RangeOf(const CLI::Option* opt) {
  const std::string t = opt->get_type_name();
  const size_t colon = t.find(':');
  return colon == std::string::npos ? "" : t.substr(colon + 1);
}

// Each line of text wrapped at width columns.
std::string Wrap(const std::string& text, size_t width) {
  std::string out;
  std::istringstream lines(text);
  std::string one;
  bool first = true;
  while (std::getline(lines, one)) {
    if (!first) out += "\n";
    first = false;
    std::istringstream words(one);
    std::string word, line;
    while (words >> word) {
      if (!line.empty() && line.size() + 1 + word.size() > width) {
        out += line + "\n";
        line.clear();
      }
      line += (line.empty() ? "" : " ") + word;
    }
    out += line;
  }
  return out;
}

// Help as an operator reads it: `--port N   public listener (0-65535; default 8080; env
// PEERSTACK_PORT)`, wrapped to 100 columns.
class Formatter : public CLI::Formatter {
 public:
  explicit Formatter(CommandLine* cl) : cl_(cl) {
    column_width(kColumn);
    label("Positionals", "Arguments");
    label("OPTIONS", "FLAGS");
    label("SUBCOMMAND", "COMMAND");
  }
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (IsFlag(opt)) return "";
    return " " + TypeOf(opt);
  }
  std::string make_option_desc(const CLI::Option* opt) const override {
    std::string desc = opt->get_description();
    std::vector<std::string> notes;
    if (const std::string r = RangeOf(opt); !r.empty()) notes.push_back(r);
    if (!opt->get_default_str().empty()) notes.push_back("default " + opt->get_default_str());
    if (!IsPositional(opt) && !IsHelpFlag(opt)) {
      std::string env;
      for (const std::string& e : cl_->EnvOf(opt)) env += (env.empty() ? "env " : " or ") + e;
      if (!env.empty()) notes.push_back(env);
    }
    std::string all;
    for (const std::string& n : notes) all += (all.empty() ? "" : "; ") + n;
    if (!all.empty()) desc += " (" + all + ")";
    return Wrap(desc, kWidth - kColumn);
  }
  std::string make_subcommand(const CLI::App* sub) const override {
    std::string name = "  " + sub->get_name();
    name.resize(std::max(name.size() + 1, kColumn), ' ');
    std::string desc = Wrap(sub->get_description(), kWidth - kColumn);
    for (size_t p = 0; (p = desc.find('\n', p)) != std::string::npos; p += kColumn + 1)
      desc.insert(p + 1, std::string(kColumn, ' '));
    if (name.size() > kColumn) name += "\n" + std::string(kColumn, ' ');
    return name + desc + "\n";
  }
  std::string make_description(const CLI::App* app) const override {
    const std::string d = app->get_description();
    return d.empty() ? "" : Wrap(d, kWidth) + "\n\n";
  }
  std::string make_footer(const CLI::App* app) const override {
    const std::string f = app->get_footer();
    return f.empty() ? "" : Wrap(f, kWidth) + "\n";
  }

 private:
  CommandLine* cl_;
};

std::vector<CLI::App*> Chain(CLI::App* cmd) {
  std::vector<CLI::App*> chain;
  for (CLI::App* a = cmd; a != nullptr; a = a->get_parent()) chain.push_back(a);
  return chain;
}

CLI::Option* FindFlag(CLI::App* cmd, const std::string& name) {
  for (CLI::App* a : Chain(cmd)) {
    for (CLI::Option* opt : a->get_options()) {
      if (!IsHelpFlag(opt) && opt->check_lname(name)) return opt;
    }
  }
  return nullptr;
}

// Gives opt the values as if they had been typed, and runs its checks and callback.
void Apply(CLI::Option* opt, const std::vector<std::string>& values) {
  opt->add_result(values);
  opt->run_callback();
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

void Collect(CLI::App* app, std::vector<CLI::App*>* out) {
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    bool own_flags = false;
    for (const CLI::Option* opt : sub->get_options()) own_flags |= !IsHelpFlag(opt);
    const bool leaf = sub->get_subcommands([](CLI::App*) { return true; }).empty();
    if (own_flags || leaf) out->push_back(sub);
    Collect(sub, out);
  }
}

}  // namespace

CommandLine::CommandLine(const std::string& name, const std::string& description)
    : root_(description, name) {
  root_.formatter(std::make_shared<Formatter>(this));
  // "Flags:", not CLI11's "Options:" (help2man would gather every command's in one section).
  root_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->group("Flags");
  root_.set_help_flag("-h,--help", "print this help and exit");
}

CLI::App* CommandLine::Add(CLI::App* parent, const std::string& name,
                           const std::string& description) {
  CLI::App* cmd = parent->add_subcommand(name, description);
  cmd->group("Commands");
  cmd->set_help_flag("-h,--help", "print this help and exit");
  return cmd;
}

void CommandLine::WithConfig(CLI::App* cmd) {
  std::string section = PathOf(cmd);
  std::replace(section.begin(), section.end(), ' ', '.');
  config_[cmd] = cmd->add_option("--config", "read flags from this file (KEY = VALUE lines)")
                     ->type_name("FILE");
  cmd->footer(
      "A flag's value comes from the flag, else its environment variable, else the --config file "
      "(a [" +
      section +
      "] section, then the top of the file: `port = 8090`, `dev = true`), else its default.");
}

void CommandLine::Env(CLI::Option* opt, std::vector<std::string> names) { env_[opt] = names; }

const std::vector<std::string>& CommandLine::EnvOf(const CLI::Option* opt) {
  AssignEnvNames();
  static const std::vector<std::string> kNone;
  auto it = env_.find(opt);
  return it == env_.end() ? kNone : it->second;
}

std::string CommandLine::DefaultEnv(const CLI::Option* opt) {
  std::string env = "PEERSTACK_";
  for (char c : opt->get_lnames().front())
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

void CommandLine::AssignEnvNames() {
  if (env_assigned_) return;
  env_assigned_ = true;
  std::vector<CLI::App*> apps{&root_};
  Collect(&root_, &apps);
  for (CLI::App* app : apps) {
    for (CLI::Option* opt : app->get_options()) {
      if (IsHelpFlag(opt) || IsPositional(opt) || env_.count(opt) || opt->get_lnames().empty())
        continue;
      env_[opt] = {DefaultEnv(opt)};
    }
  }
}

std::string CommandLine::PathOf(const CLI::App* cmd) {
  std::string path;
  for (const CLI::App* a = cmd; a != nullptr && a->get_parent() != nullptr; a = a->get_parent())
    path = a->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

// CLI11's errors in the words of the rest of peerstack, with where to read more.
std::string CommandLine::Explain(CLI::App* cmd, const CLI::ParseError& e) {
  const std::string path = PathOf(cmd);
  const std::string see = " (see peerstack " + (path.empty() ? "" : path + " ") + "--help)";
  const std::string m = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    // "The following arguments were not expected: Y X", last first (parse reads a reversed
    // list): a flag among them, else the first.
    const size_t colon = m.rfind(": ");
    std::istringstream words(colon == std::string::npos ? "" : m.substr(colon + 2));
    std::vector<std::string> extras;
    for (std::string w; words >> w;) extras.insert(extras.begin(), w);
    for (const std::string& x : extras) {
      if (x.size() > 1 && x[0] == '-') return "unknown flag " + x.substr(0, x.find('=')) + see;
    }
    if (!extras.empty()) {
      return (cmd == &root_ ? "unknown command '" : "unexpected argument '") + extras.front() +
             "'" + see;
    }
    return m + see;
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && m.find("missing") != std::string::npos)
    return m.substr(0, m.find(':')) + " needs a value";
  if (dynamic_cast<const CLI::RequiredError*>(&e) && m.find("ubcommand") != std::string::npos) {
    std::string names;
    for (const CLI::App* sub : cmd->get_subcommands([](CLI::App*) { return true; }))
      names += (names.empty() ? "" : ", ") + sub->get_name();
    return "peerstack " + path + " needs a command: " + names + see;
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e)) return "peerstack " + path + ": " + m + see;
  return m;
}

Result<CLI::App*> CommandLine::Parse(const std::vector<std::string>& args, const GetEnv& env) {
  AssignEnvNames();
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  CLI::App* cmd = &root_;
  try {
    root_.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    while (!cmd->get_subcommands().empty()) cmd = cmd->get_subcommands().front();
    return Status::Error("help", Help(cmd));
  } catch (const CLI::ParseError& e) {
    while (!cmd->get_subcommands().empty()) cmd = cmd->get_subcommands().front();
    return Status::Error("bad_flag", Explain(cmd, e));
  }
  while (!cmd->get_subcommands().empty()) cmd = cmd->get_subcommands().front();
  if (auto s = Layer(cmd, env); !s.ok()) return s;
  // A flag's value, from wherever it came, must read as true or false.
  for (CLI::App* app : Chain(cmd)) {
    for (CLI::Option* opt : app->get_options()) {
      if (!IsFlag(opt) || opt->count() == 0 || IsHelpFlag(opt)) continue;
      try {
        (void)opt->as<bool>();
      } catch (const CLI::Error&) {
        return Status::Error("bad_flag", opt->get_name() + ": true or false, got '" +
                                             opt->reduced_results().back() + "'");
      }
    }
  }
  return cmd;
}

Status CommandLine::Layer(CLI::App* cmd, const GetEnv& env) {
  const std::vector<CLI::App*> chain = Chain(cmd);
  // The environment, under the flags.
  for (CLI::App* app : chain) {
    for (CLI::Option* opt : app->get_options()) {
      if (opt->count() > 0 || IsHelpFlag(opt)) continue;
      for (const std::string& name : EnvOf(opt)) {
        const char* v = env(name.c_str());
        if (v == nullptr || *v == '\0') continue;
        try {
          Apply(opt, {v});
        } catch (const CLI::Error& e) {
          return Status::Error("bad_flag", name + "=" + Quote(v) + ": " + e.what());
        }
        break;
      }
    }
  }
  // The config file, under the environment: the command's section first, then the top.
  auto config = config_.find(cmd);
  if (config == config_.end() || config->second->count() == 0) return Status::Ok();
  const std::string file = config->second->as<std::string>();
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(file);
  } catch (const CLI::Error& e) {
    return Status::Error("bad_flag", "--config " + file + ": " + e.what());
  }
  std::string section = PathOf(cmd);
  std::replace(section.begin(), section.end(), ' ', '.');
  std::vector<CLI::App*> all{&root_};
  Collect(&root_, &all);
  for (const bool own_section : {true, false}) {
    for (const CLI::ConfigItem& item : items) {
      if (item.name == "++" || item.name == "--") continue;
      std::string parents;
      for (const std::string& p : item.parents) parents += (parents.empty() ? "" : ".") + p;
      if (own_section != (parents == section)) continue;
      std::string name = item.name;
      std::replace(name.begin(), name.end(), '_', '-');
      const std::string where = "--config " + file + ": " + item.fullname();
      CLI::App* owner = nullptr;
      if (!parents.empty()) {
        for (CLI::App* a : all) {
          std::string p = PathOf(a);
          std::replace(p.begin(), p.end(), ' ', '.');
          if (p == parents) owner = a;
        }
        if (owner == nullptr)
          return Status::Error("bad_flag", where + ": no command " + Quote(parents));
      }
      if (owner != nullptr && owner != cmd) {
        if (!FindFlag(owner, name)) {
          return Status::Error("bad_flag",
                               where + ": `peerstack " + PathOf(owner) + "` has no flag --" + name);
        }
        continue;  // another command's section
      }
      CLI::Option* opt = FindFlag(cmd, name);
      if (opt == nullptr) {
        if (owner == cmd) {
          return Status::Error("bad_flag",
                               where + ": `peerstack " + PathOf(cmd) + "` has no flag --" + name);
        }
        bool known = false;  // a top-level key another command takes
        for (CLI::App* a : all) known |= FindFlag(a, name) != nullptr;
        if (!known) return Status::Error("bad_flag", where + ": no command has a flag --" + name);
        continue;
      }
      if (opt->count() > 0 || opt == config->second) continue;
      // A flag whose variable names its command (another command's flag has its name and
      // another meaning) is read from that command's section only.
      if (const auto& names = EnvOf(opt);
          !own_section && (names.empty() || names.front() != DefaultEnv(opt))) {
        return Status::Error("bad_flag", where + ": other commands take --" + name +
                                             " with another meaning: put it in a [" + section +
                                             "] section");
      }
      std::vector<std::string> inputs = item.inputs;
      if (inputs.size() > 1 && opt->get_items_expected_max() <= 1) {  // ["a", "b"] for a list
        std::string joined;
        for (const std::string& i : inputs) joined += (joined.empty() ? "" : ",") + i;
        inputs = {joined};
      }
      try {
        Apply(opt, inputs);
      } catch (const CLI::Error& e) {
        return Status::Error("bad_flag", where + ": " + e.what());
      }
    }
  }
  return Status::Ok();
}

Values CommandLine::ValuesOf(const CLI::App* cmd) {
  Values v;
  for (const CLI::Option* opt : cmd->get_options()) {
    if (IsHelpFlag(opt)) continue;
    if (opt->count() == 0) {  // its default
      if (!IsPositional(opt) && !IsFlag(opt) && !opt->get_default_str().empty()) {
        v.flags[opt->get_lnames().front()] = opt->get_default_str();
      }
      continue;
    }
    if (IsPositional(opt)) {
      for (const std::string& r : opt->results()) v.positional.push_back(r);
      continue;
    }
    const std::string name =
        opt->get_lnames().empty() ? opt->get_snames().front() : opt->get_lnames().front();
    if (IsFlag(opt)) {
      if (opt->as<bool>()) v.flags[name] = "1";
      continue;
    }
    std::string joined;  // the values left by the option's policy (one, unless a list)
    for (const std::string& r : opt->reduced_results()) joined += (joined.empty() ? "" : ",") + r;
    v.flags[name] = joined;
  }
  return v;
}

std::string CommandLine::Help(const CLI::App* cmd) {
  std::string prefix;
  for (const CLI::App* a = cmd->get_parent(); a != nullptr; a = a->get_parent())
    prefix = a->get_name() + (prefix.empty() ? "" : " " + prefix);
  return cmd->get_formatter()->make_help(
      cmd, prefix.empty() ? cmd->get_name() : prefix + " " + cmd->get_name(),
      CLI::AppFormatMode::Normal);
}

std::vector<CLI::App*> CommandLine::Commands() {
  std::vector<CLI::App*> out;
  Collect(&root_, &out);
  return out;
}

std::string CommandLine::FlagTable(const CLI::App* cmd) {
  auto cell = [](std::string s) {
    for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
    return s;
  };
  std::string out;
  for (const CLI::Option* opt : cmd->get_options()) {
    if (IsHelpFlag(opt)) continue;
    std::string names;
    if (IsPositional(opt)) {
      names = opt->get_name();
    } else {
      for (const std::string& s : opt->get_snames()) names += "-" + s + ", ";
      for (const std::string& l : opt->get_lnames()) names += "--" + l + ", ";
      names.resize(names.size() - 2);
      if (!TypeOf(opt).empty() && !IsFlag(opt)) names += " " + TypeOf(opt);
    }
    std::string env;
    for (const std::string& e : EnvOf(opt)) env += (env.empty() ? "`" : ", `") + e + "`";
    std::string meaning = opt->get_description();
    if (const std::string r = RangeOf(opt); !r.empty()) meaning += " (" + r + ")";
    if (IsPositional(opt))
      meaning += opt->get_required() ? " (an argument)" : " (an optional argument)";
    const std::string def = opt->get_default_str();
    out += "| `" + cell(names) + "` | " + env + " | " + (def.empty() ? "" : "`" + cell(def) + "`") +
           " | " + cell(meaning) + " |\n";
  }
  return out.empty()
             ? "No flags.\n"
             : "| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n" + out;
}

bool ParseDuration(const std::string& text, int64_t* ms) {
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  int64_t n = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || r.ec != std::errc() || n < 0 || n > (int64_t{1} << 40)) return false;
  const std::string unit(r.ptr, text.data() + text.size());
  if (unit.empty()) {
    *ms = n;
    return true;
  }
  for (const auto& [u, f] : kUnits) {
    if (unit == u) {
      if (n > INT64_MAX / f) return false;
      *ms = n * f;
      return true;
    }
  }
  return false;
}

CLI::Validator Between(int64_t lo, int64_t hi) {
  const std::string range = std::to_string(lo) + "-" + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        int64_t n = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), n);
        if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || n < lo ||
            n > hi) {
          return "must be a number " + range + ", got " + Quote(text);
        }
        return "";
      },
      range);
}

CLI::Validator Duration(int64_t min_ms, int64_t max_ms, bool unit_needed) {
  auto show = [](int64_t ms) {
    if (ms % 86400000 == 0 && ms > 0) return std::to_string(ms / 86400000) + "d";
    if (ms % 3600000 == 0 && ms > 0) return std::to_string(ms / 3600000) + "h";
    if (ms % 60000 == 0 && ms > 0) return std::to_string(ms / 60000) + "m";
    if (ms % 1000 == 0 && ms > 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
  };
  const std::string range = show(min_ms) + "-" + show(max_ms);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        int64_t ms = 0;
        const bool digits = text.find_first_not_of("0123456789") == std::string::npos;
        if (!ParseDuration(text, &ms) || (unit_needed && digits) || ms < min_ms || ms > max_ms) {
          return "must be a duration " + range +
                 " with its unit (30d, 12h, 90m, 45s, 500ms), got " + Quote(text);
        }
        return "";
      },
      range);
}

CLI::Validator OneOf(std::vector<std::string> words) {
  std::string list;
  for (const std::string& w : words) list += (list.empty() ? "" : "|") + w;
  return CLI::Validator(
      [words, list](std::string& text) -> std::string {
        if (std::find(words.begin(), words.end(), text) != words.end()) return "";
        return "must be one of " + list + ", got " + Quote(text);
      },
      list);
}

}  // namespace peerstack::cli
