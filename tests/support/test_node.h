// A real `peerstack run` in a temp dir on port 0: start, stop, ports, admin token, and
// JSON requests. Used by every integration test that needs a node.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "json/json.h"
#include "support/test_support.h"

namespace peerstack::test {

// Paths of things the build made (set by CMake).
std::string BuiltPlugin(const std::string& name);    // build/plugins/lib<name>.so
std::string FixturePlugin(const std::string& name);  // build/tests/fixtures/plugins/lib<name>.so
void CopyFile(const std::string& from, const std::string& to);

// An app folder at root: root/plugins (file name -> path of a built plugin) and root/front
// (path -> content). Returns root.
std::string MakeApp(const std::string& root, const std::map<std::string, std::string>& plugins,
                    const std::map<std::string, std::string>& front);
// Runs the built `peerstack` with args; its exit status, its output in *out.
int Cli(const std::vector<std::string>& args, std::string* out);
// What a publisher runs: `release create` (app's files, create_args) into file, `release
// sign` with each key, `release publish --no-wait` through the node of data_dir. The exit
// status of the first command that failed (0 when all passed), its output in *out.
int PublishApp(const std::string& app, const std::string& data_dir,
               const std::vector<std::string>& keys, const std::string& file,
               const std::vector<std::string>& create_args, std::string* out);

class TestNode {
 public:
  // dir: the node's home; data dir is dir/data, log dir/node.log.
  TestNode(std::string dir, std::vector<std::string> extra_args = {},
           std::map<std::string, std::string> env = {});
  ~TestNode();

  // Starts the node and waits (20 s at most) for ports.json; false (with the log in *why).
  bool Start(std::string* why = nullptr);
  std::optional<int> Stop(int sig, std::chrono::milliseconds timeout = 10s);
  Process* process() { return process_.get(); }

  uint16_t public_port() const { return public_port_; }
  uint16_t admin_port() const { return admin_port_; }
  std::string data_dir() const { return dir_ + "/data"; }
  std::string Token() const;
  std::string Log() const { return ReadFileOrEmpty(dir_ + "/node.log"); }
  std::string AuthHeader() const { return "Authorization: Bearer " + Token(); }

  // GET on the public or admin port (admin requests carry the token); the parsed body, or
  // null when the answer is not 2xx JSON.
  json::Value GetJson(const std::string& path, bool admin = false) const;
  json::Value Status() const { return GetJson("/status", true); }
  std::optional<RawResponse> Request(const std::string& method, const std::string& path,
                                     const std::string& body = "", bool admin = false) const;

 private:
  std::string dir_;
  std::vector<std::string> extra_args_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Process> process_;
  uint16_t public_port_ = 0;
  uint16_t admin_port_ = 0;
};

// The flags of a node that answers on a fixed port (so it can restart at the same URL) and
// runs the app of `plugins` and `front`, joining `join` when it is not empty, then `extra`.
std::vector<std::string> NodeArgs(uint16_t port, const std::string& plugins,
                                  const std::string& front, const std::string& join = "",
                                  const std::vector<std::string>& extra = {});

}  // namespace peerstack::test
