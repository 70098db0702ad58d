#include "support/test_node.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace peerstack::test {

std::string BuiltPlugin(const std::string& name) {
  return std::string(PEERSTACK_BUILD_DIR) + "/plugins/lib" + name + ".so";
}

std::string FixturePlugin(const std::string& name) {
  return std::string(PEERSTACK_BUILD_DIR) + "/tests/fixtures/plugins/lib" + name + ".so";
}

void CopyFile(const std::string& from, const std::string& to) {
  // Copy to a temp name and rename: the destination changes atomically, like a deploy.
  const std::string tmp = to + ".partial";
  std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(tmp, to);
}

std::string MakeApp(const std::string& root, const std::map<std::string, std::string>& plugins,
                    const std::map<std::string, std::string>& front) {
  std::filesystem::create_directories(root + "/plugins");
  std::filesystem::create_directories(root + "/front");
  for (const auto& [file, from] : plugins) CopyFile(from, root + "/plugins/" + file);
  for (const auto& [path, content] : front) {
    std::filesystem::create_directories(
        std::filesystem::path(root + "/front/" + path).parent_path());
    WriteFile(root + "/front/" + path, content);
  }
  return root;
}

int Cli(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv{PeerstackBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out);
}

int PublishApp(const std::string& app, const std::string& data_dir,
               const std::vector<std::string>& keys, const std::string& file,
               const std::vector<std::string>& create_args, std::string* out) {
  std::vector<std::string> create{
      "release", "create", "--plugins", app + "/plugins", "--front", app + "/front", "--data-dir",
      data_dir,  "-o",     file};
  create.insert(create.end(), create_args.begin(), create_args.end());
  if (int rc = Cli(create, out); rc != 0) return rc;
  for (const std::string& k : keys) {
    if (int rc = Cli({"release", "sign", file, "--key", k}, out); rc != 0) return rc;
  }
  return Cli({"release", "publish", file, "--data-dir", data_dir, "--no-wait"}, out);
}

TestNode::TestNode(std::string dir, std::vector<std::string> extra_args,
                   std::map<std::string, std::string> env)
    : dir_(std::move(dir)), extra_args_(std::move(extra_args)), env_(std::move(env)) {}

TestNode::~TestNode() = default;

bool TestNode::Start(std::string* why) {
  ::unlink((data_dir() + "/ports.json").c_str());
  std::vector<std::string> args{"run", "--data-dir", data_dir(), "--admin-port",
                                "0",   "--bind",     "127.0.0.1"};
  if (std::find(extra_args_.begin(), extra_args_.end(), "--port") == extra_args_.end()) {
    args.insert(args.end(), {"--port", "0"});
  }
  // Tests found open networks unless they say otherwise (the default, invitations, has its
  // own tests): most are about something else.
  if (std::find(extra_args_.begin(), extra_args_.end(), "--admission") == extra_args_.end()) {
    args.insert(args.end(), {"--admission", "open"});
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<Process>(PeerstackBinary(), args, dir_ + "/node.log", env_);
  const bool ready = WaitFor(
      [&] { return !ReadFileOrEmpty(data_dir() + "/ports.json").empty() || !process_->running(); },
      20s);
  auto ports = json::Parse(ReadFileOrEmpty(data_dir() + "/ports.json"));
  if (!ready || !ports.ok()) {
    if (why) *why = "node did not start:\n" + Log();
    return false;
  }
  public_port_ = static_cast<uint16_t>(*ports->find_int("public"));
  admin_port_ = static_cast<uint16_t>(*ports->find_int("admin"));
  return true;
}

std::optional<int> TestNode::Stop(int sig, std::chrono::milliseconds timeout) {
  if (!process_) return std::nullopt;
  return process_->Stop(sig, timeout);
}

std::string TestNode::Token() const {
  std::string t = ReadFileOrEmpty(data_dir() + "/admin.token");
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t;
}

std::optional<RawResponse> TestNode::Request(const std::string& method, const std::string& path,
                                             const std::string& body, bool admin) const {
  RawConnection c(admin ? admin_port_ : public_port_);
  if (!c.connected()) return std::nullopt;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (admin) req += AuthHeader() + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (!c.Send(req)) return std::nullopt;
  return c.ReadResponse(15s, method == "HEAD");
}

json::Value TestNode::GetJson(const std::string& path, bool admin) const {
  auto r = Request("GET", path, "", admin);
  if (!r || r->status < 200 || r->status > 299) return nullptr;
  auto v = json::Parse(r->body);
  return v.ok() ? *v : json::Value(nullptr);
}

std::vector<std::string> NodeArgs(uint16_t port, const std::string& plugins,
                                  const std::string& front, const std::string& join,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--port", std::to_string(port), "--plugins", plugins, "--front",
                                front};
  if (!join.empty()) args.insert(args.end(), {"--join", join});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace peerstack::test
