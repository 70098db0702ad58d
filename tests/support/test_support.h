// Test helpers: a temp dir removed on destruction, a child process that is always reaped
// (SIGKILL by PID in the destructor if the test did not stop it), a raw TCP client for
// byte-exact HTTP tests, and waiting on conditions with a deadline (never sleeping blindly).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace peerstack::test {

using namespace std::chrono_literals;

// Polls cond every few milliseconds until it is true or the deadline passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& data);
std::string ReadFileOrEmpty(const std::string& path);

// A child process; its output goes to log_path.
class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args,
          const std::string& log_path, const std::map<std::string, std::string>& env = {});
  ~Process();  // SIGKILL + reap if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends sig and waits for exit; returns the exit status (or -signal), nullopt on timeout.
  std::optional<int> Stop(int sig, std::chrono::milliseconds timeout);
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // Resident set size in kB from /proc, 0 if unknown.
  long RssKb() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_;
};

// The path of the built peerstack binary (set by CMake).
std::string PeerstackBinary();

// Runs a command to completion, capturing stdout+stderr; returns the exit status.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               const std::map<std::string, std::string>& env = {});

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A blocking TCP client for byte-exact HTTP: what is sent is exactly what the test wrote.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);
  struct Fd {
    int fd;
  };
  explicit RawConnection(Fd connected) : fd_(connected.fd) {}  // an already connected socket
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return fd_ >= 0; }

  bool Send(const std::string& data);
  // Reads one response (Content-Length framed). nullopt on timeout, close or garbage.
  std::optional<RawResponse> ReadResponse(std::chrono::milliseconds timeout = 5000ms,
                                          bool head_request = false);
  // True when the server closes the connection (EOF or reset) within the timeout; bytes that
  // arrive meanwhile are appended to *extra.
  bool WaitClosed(std::chrono::milliseconds timeout, std::string* extra = nullptr);

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buf_;
};

// One request on a fresh connection.
std::optional<RawResponse> HttpGet(uint16_t port, const std::string& path,
                                   const std::vector<std::string>& extra_headers = {});

}  // namespace peerstack::test

namespace peerstack::test {
// A TCP port on 127.0.0.1 that nothing listens on right now, below the ephemeral range (so
// no node on --port 0 and no outgoing connection takes it before the test binds it).
uint16_t FreePort();
}  // namespace peerstack::test
