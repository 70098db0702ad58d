// The command line's conventions (core/cli/command_line.h) and the definitions of every
// command's flags (core/cli/cli.cpp): defaults, ranges, environment, the config file, the
// precedence between them, and the flag tables of docs/operations.md.
#include <gtest/gtest.h>

#include <map>

#include "cli/cli.h"
#include "support/test_support.h"

namespace peerstack::cli {
namespace {

using node::Config;

struct FakeEnv {
  std::map<std::string, std::string> vars;
  GetEnv fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(RunConfig, HasTheContractDefaults) {
  Config c;
  ASSERT_TRUE(ParseRunConfig({}, FakeEnv{}.fn(), &c).ok());
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.admin_port, 8081);
  EXPECT_EQ(c.data_dir, ".peerstack");
  EXPECT_EQ(c.tunnel, "direct,upnp,relay");
  EXPECT_EQ(c.relay_port, -1);
  EXPECT_EQ(c.log_level, log::Level::kInfo);
  EXPECT_FALSE(c.dev);
}

TEST(RunConfig, FlagsOverrideEnvironment) {
  FakeEnv env{{{"PEERSTACK_PORT", "9000"},
               {"PEERSTACK_ADMIN_PORT", "9001"},
               {"PEERSTACK_DATA_DIR", "/env"},
               {"NETWORK_NODE_URL", "http://seed:8080"},
               {"PEERSTACK_DEV", "false"},
               {"PEERSTACK_LOG_LEVEL", "warn"}}};
  Config c;
  ASSERT_TRUE(ParseRunConfig({"--port", "0", "--data-dir=/flag", "--dev"}, env.fn(), &c).ok());
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.admin_port, 9001);
  EXPECT_EQ(c.data_dir, "/flag");
  EXPECT_EQ(c.join_url, "http://seed:8080");
  EXPECT_TRUE(c.dev);
  EXPECT_EQ(c.log_level, log::Level::kWarn);
  // PEERSTACK_JOIN is --join's own name and comes first; a flag given twice: the last.
  env.vars["PEERSTACK_JOIN"] = "http://other:8080";
  Config d;
  ASSERT_TRUE(ParseRunConfig({"--threads", "2", "--threads", "3"}, env.fn(), &d).ok());
  EXPECT_EQ(d.join_url, "http://other:8080");
  EXPECT_EQ(d.threads, 3u);
  EXPECT_FALSE(d.dev);
}

TEST(RunConfig, ExplainsBadInput) {
  Config c;
  auto s = ParseRunConfig({"--port", "70000"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("--port: must be a number 0-65535, got '70000'"), std::string::npos)
      << s.message();
  s = ParseRunConfig({"--bogus", "1"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("unknown flag --bogus"), std::string::npos) << s.message();
  s = ParseRunConfig({"--port"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("--port needs a value"), std::string::npos) << s.message();
  Config d;
  s = ParseRunConfig({"--port", "9", "--admin-port", "9"}, FakeEnv{}.fn(), &d);
  EXPECT_FALSE(s.ok());
  FakeEnv env{{{"PEERSTACK_PORT", "x"}}};
  Config e;
  s = ParseRunConfig({}, env.fn(), &e);
  EXPECT_NE(s.message().find("PEERSTACK_PORT='x': --port"), std::string::npos) << s.message();
  Config f;
  EXPECT_FALSE(ParseRunConfig({"--log-level", "loud"}, FakeEnv{}.fn(), &f).ok());
  Config g;
  s = ParseRunConfig({"--tunnel", "direct,ngrok"}, FakeEnv{}.fn(), &g);
  EXPECT_NE(s.message().find("unknown provider 'ngrok'"), std::string::npos);
  EXPECT_FALSE(ParseRunConfig({"--tunnel", ","}, FakeEnv{}.fn(), &g).ok());
  EXPECT_FALSE(ParseRunConfig({"--upnp-lease", "0"}, FakeEnv{}.fn(), &g).ok());
  EXPECT_NE(ParseRunConfig({"--upnp-lease", "19"}, FakeEnv{}.fn(), &g).message().find("20-604800"),
            std::string::npos);
  ASSERT_TRUE(
      ParseRunConfig({"--tunnel", "upnp,relay", "--upnp-lease", "120"}, FakeEnv{}.fn(), &g).ok());
  EXPECT_EQ(g.tunnel, "upnp,relay");
  EXPECT_EQ(g.upnp_lease_s, 120);
  Config h;
  ASSERT_TRUE(
      ParseRunConfig({"--relay-connections", "8", "--relay-rate", "65536"}, FakeEnv{}.fn(), &h)
          .ok());
  EXPECT_EQ(h.relay_connections, 8u);
  EXPECT_EQ(h.relay_rate, 65536u);
  EXPECT_NE(
      ParseRunConfig({"--relay-connections", "0"}, FakeEnv{}.fn(), &h).message().find("1-4096"),
      std::string::npos);
  EXPECT_FALSE(ParseRunConfig({"--relay-rate", "10"}, FakeEnv{}.fn(), &h).ok());
  Config k;
  EXPECT_FALSE(ParseRunConfig({"--publisher-threshold", "2"}, FakeEnv{}.fn(), &k).ok());
  ASSERT_TRUE(
      ParseRunConfig({"--publisher-key", "node,ab", "--publisher-key", "cd",
                      "--publisher-threshold", "3", "--invite", "http://x:1/download?invite=7b22"},
                     FakeEnv{}.fn(), &k)
          .ok());
  EXPECT_EQ(k.publishers, (std::vector<std::string>{"node", "ab", "cd"}));
  EXPECT_EQ(k.invite, "7b22");
}

TEST(RunConfig, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  test::TempDir dir;
  const std::string file = dir.Sub("peerstack.conf");
  test::WriteFile(file,
                  "# a node's settings\n"
                  "port = 9100\n"
                  "admin-port = 9101\n"
                  "bind = \"127.0.0.1\"\n"
                  "threads = 5\n"
                  "json = true          # status's flag: other commands ignore it\n"
                  "dev = true\n"
                  "publisher-key = [\"node\", \"ab\"]\n"
                  "[run]\n"
                  "threads = 3\n"
                  "[release.create]\n"
                  "stages = 4\n");
  FakeEnv env{{{"PEERSTACK_CONFIG", file}, {"PEERSTACK_ADMIN_PORT", "9201"}}};
  Config c;
  auto s = ParseRunConfig({"--bind", "0.0.0.0"}, env.fn(), &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.bind, "0.0.0.0");   // the flag
  EXPECT_EQ(c.admin_port, 9201);  // the environment, over the file
  EXPECT_EQ(c.port, 9100);        // the file, over the default
  EXPECT_EQ(c.threads, 3u);       // the file's [run] section, over its top
  EXPECT_TRUE(c.dev);
  EXPECT_EQ(c.publishers, (std::vector<std::string>{"node", "ab"}));
  EXPECT_EQ(c.upnp_lease_s, 3600);  // the default
  Config d;
  ASSERT_TRUE(ParseRunConfig({"--config", file, "--port", "9300"}, FakeEnv{}.fn(), &d).ok());
  EXPECT_EQ(d.port, 9300);
  EXPECT_EQ(d.admin_port, 9101);
}

TEST(RunConfig, ABadConfigFileIsNamedAndRefused) {
  test::TempDir dir;
  auto parse = [&](const std::string& text) {
    test::WriteFile(dir.Sub("c.conf"), text);
    Config c;
    return ParseRunConfig({"--config", dir.Sub("c.conf")}, FakeEnv{}.fn(), &c).message();
  };
  EXPECT_NE(parse("prot = 9100\n").find("c.conf: prot: no command has a flag --prot"),
            std::string::npos)
      << parse("prot = 9100\n");
  EXPECT_NE(parse("port = 99999\n").find("c.conf: port: --port: must be a number 0-65535"),
            std::string::npos)
      << parse("port = 99999\n");
  EXPECT_NE(parse("[run]\njson = true\n").find("`peerstack run` has no flag --json"),
            std::string::npos);
  EXPECT_NE(parse("[release.create]\nport = 1\n").find("`peerstack release create` has no flag"),
            std::string::npos);
  EXPECT_NE(parse("[frobnicate]\nport = 1\n").find("no command 'frobnicate'"), std::string::npos);
  Config c;
  EXPECT_NE(ParseRunConfig({"--config", dir.Sub("missing.conf")}, FakeEnv{}.fn(), &c)
                .message()
                .find("missing.conf"),
            std::string::npos);
}

TEST(CommandLine, EveryFlagOfEveryCommandHasAnEnvironmentVariableAndHelp) {
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  size_t flags = 0;
  for (CLI::App* cmd : cl.Commands()) {
    if (cmd->get_name() == "help") continue;
    for (const CLI::Option* opt : cmd->get_options()) {
      if (opt->get_lnames().empty() || opt->check_lname("help")) continue;
      ++flags;
      EXPECT_FALSE(cl.EnvOf(opt).empty()) << CommandLine::PathOf(cmd) << " " << opt->get_name();
      EXPECT_FALSE(opt->get_description().empty()) << opt->get_name();
    }
  }
  EXPECT_GT(flags, 50u);
}

TEST(CommandLine, AReleaseCommandsValuesComeFromFlagsEnvironmentAndDefaults) {
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  FakeEnv env{{{"PEERSTACK_STAGES", "3"}, {"PEERSTACK_RELEASE_VERSION", "7"}}};
  auto cmd = cl.Parse({"release", "create", "--plugins", "p", "-o", "r.json"}, env.fn());
  ASSERT_TRUE(cmd.ok()) << cmd.status().message();
  EXPECT_EQ(CommandLine::PathOf(*cmd), "release create");
  const Values v = CommandLine::ValuesOf(*cmd);
  EXPECT_EQ(v.Get("plugins"), "p");
  EXPECT_EQ(v.Get("output"), "r.json");
  EXPECT_EQ(v.Get("stages"), "3");
  EXPECT_EQ(v.Get("version"), "7");
  EXPECT_EQ(v.Get("expires"), "30d");  // the default
  EXPECT_FALSE(v.Has("front"));
  auto bad = cl.Parse({"release", "create", "--expires", "30"}, FakeEnv{}.fn());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--expires: must be a duration"), std::string::npos);
}

TEST(CommandLine, AFlagGivenTwiceIsTheLastAndFalseIsFalse) {
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  auto cmd = cl.Parse(
      {"release", "create", "-o", "a.json", "-o", "b.json", "--stages", "3", "--stages", "4"},
      FakeEnv{}.fn());
  ASSERT_TRUE(cmd.ok()) << cmd.status().message();
  EXPECT_EQ(CommandLine::ValuesOf(*cmd).Get("output"), "b.json");
  EXPECT_EQ(CommandLine::ValuesOf(*cmd).Get("stages"), "4");
  FakeEnv env{{{"PEERSTACK_JSON", "0"}, {"PEERSTACK_NO_WAIT", "false"}}};
  CommandLine cl2("peerstack", "");
  Define(&cl2, &run);
  auto status = cl2.Parse({"status"}, env.fn());
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(CommandLine::ValuesOf(*status).Has("json"));
  CommandLine cl3("peerstack", "");
  Define(&cl3, &run);
  auto on = cl3.Parse({"status", "--json"}, FakeEnv{}.fn());
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(CommandLine::ValuesOf(*on).Has("json"));
  CommandLine cl4("peerstack", "");
  Define(&cl4, &run);
  FakeEnv junk{{{"PEERSTACK_JSON", "maybe"}}};
  auto bad = cl4.Parse({"status"}, junk.fn());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "bad_flag");
}

TEST(CommandLine, ErrorsNameTheArgumentAtFault) {
  Config c;
  auto s = ParseRunConfig({"--port", "9000", "--portal", "1"}, FakeEnv{}.fn(), &c);
  EXPECT_NE(s.message().find("unknown flag --portal"), std::string::npos) << s.message();
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  auto r = cl.Parse({"keygen", "k1", "k2"}, FakeEnv{}.fn());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unexpected argument 'k2'"), std::string::npos)
      << r.status().message();
  int64_t ms = 0;
  EXPECT_FALSE(ParseDuration("213503982335d", &ms));  // would overflow
  EXPECT_TRUE(ParseDuration("90m", &ms));
  EXPECT_EQ(ms, 90 * 60000);
}

TEST(CommandLine, AConfigFileKeepsFlagsOfTwoMeaningsApart) {
  test::TempDir dir;
  const std::string file = dir.Sub("c.conf");
  test::WriteFile(file, "tunnel = [\"direct\", \"relay\"]\npublisher-key = [\"node\"]\n");
  Config c;
  auto s = ParseRunConfig({"--config", file}, FakeEnv{}.fn(), &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.tunnel, "direct,relay");
  // The node's publisher keys are not `release rotate`'s new set: that needs its section.
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  auto rotate = cl.Parse({"release", "rotate", "--config", file}, FakeEnv{}.fn());
  ASSERT_FALSE(rotate.ok());
  EXPECT_NE(rotate.status().message().find("[release.rotate] section"), std::string::npos)
      << rotate.status().message();
  test::WriteFile(file, "[release.rotate]\npublisher-key = \"ab,cd\"\n");
  CommandLine cl2("peerstack", "");
  Define(&cl2, &run);
  auto ok = cl2.Parse({"release", "rotate", "--config", file}, FakeEnv{}.fn());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(CommandLine::ValuesOf(*ok).Get("publisher-key"), "ab,cd");
}

TEST(CommandLine, HelpIsAStatusWithTheCommandsText) {
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  auto r = cl.Parse({"invite", "--help"}, FakeEnv{}.fn());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "help");
  EXPECT_NE(r.status().message().find("Usage: peerstack invite"), std::string::npos);
  EXPECT_NE(r.status().message().find("(1s-90d; default 7d; env"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("PEERSTACK_INVITE_EXPIRES)"), std::string::npos);
}

// docs/operations.md carries `peerstack help --markdown`'s tables as they are: a flag added,
// renamed or given another default fails here until the docs say so.
TEST(CommandLine, TheDocsFlagTablesAreTheDefinitions) {
  CommandLine cl("peerstack", "");
  Config run;
  Define(&cl, &run);
  const std::string docs = test::ReadFileOrEmpty(PEERSTACK_SOURCE_DIR "/docs/operations.md");
  const std::string begin = "<!-- flags: `peerstack help --markdown` writes what follows -->\n";
  const std::string end = "<!-- /flags -->";
  const size_t a = docs.find(begin), b = docs.find(end);
  ASSERT_NE(a, std::string::npos) << "docs/operations.md lost its flag tables' markers";
  ASSERT_NE(b, std::string::npos);
  const std::string in_docs = docs.substr(a + begin.size(), b - a - begin.size());
  const std::string defined = FlagTables(&cl);
  size_t at = 0;  // where they part
  while (at < in_docs.size() && at < defined.size() && in_docs[at] == defined[at]) ++at;
  EXPECT_TRUE(in_docs == defined)
      << "docs/operations.md's flag tables differ from the definitions from here:\n  docs: "
      << in_docs.substr(at, 160) << "\n  code: " << defined.substr(at, 160)
      << "\npaste the output of `build/core/peerstack help --markdown` between the markers";
}

}  // namespace
}  // namespace peerstack::cli
