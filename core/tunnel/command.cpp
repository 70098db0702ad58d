// `command`: an external tunnel program whose printed URL is the node's public URL.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "base/log.h"
#include "tunnel/tunnel.h"

namespace peerstack::tunnel {
namespace {

class CommandProvider final : public Provider {
 public:
  CommandProvider(std::string command, std::string pattern, uint16_t port,
                  std::chrono::milliseconds start_timeout)
      : command_(std::move(command)),
        pattern_(pattern.empty() ? std::string(R"(https?://[^\s"'<>]+)") : std::move(pattern)),
        start_timeout_(start_timeout) {
    for (size_t at; (at = command_.find("{port}")) != std::string::npos;) {
      command_.replace(at, 6, std::to_string(port));
    }
  }
  ~CommandProvider() override { Close(); }

  std::string name() const override { return "command"; }

  Result<std::string> Open() override {
    Close();
    std::regex re;
    try {
      re = std::regex(pattern_);
    } catch (const std::regex_error&) {
      return Status::Error("bad_pattern", "the URL pattern is not a valid regex: " + pattern_);
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Status::Error("io_error", "pipe failed");
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return Status::Error("spawn_failed", "cannot run the tunnel command");
    }
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. Its own process group (stopped whole),
      // and it dies with the node even when the node is killed with SIGKILL.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      const int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      const char* argv[] = {"/bin/sh", "-c", command_.c_str(), nullptr};
      ::execv("/bin/sh", const_cast<char**>(argv));
      ::_exit(127);
    }
    ::close(fds[1]);
    pid_ = pid;
    out_fd_ = fds[0];
    // Read its output until a URL appears, it exits, or the time is up.
    const auto deadline = std::chrono::steady_clock::now() + start_timeout_;
    std::string buffer;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) continue;
      char chunk[1024];
      const ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
      if (n <= 0) break;  // the program closed its output: it is gone or silent for good
      buffer.append(chunk, static_cast<size_t>(n));
      if (buffer.size() > 65536) buffer.erase(0, buffer.size() - 65536);
      std::smatch m;
      if (std::regex_search(buffer, m, re)) {
        std::string url = m[m.size() > 1 ? 1 : 0].str();
        while (!url.empty() && (url.back() == '/' || url.back() == '.' || url.back() == ','))
          url.pop_back();
        PS_LOG(kInfo, "tunnel") << "command tunnel up at " << url;
        return url;
      }
    }
    Close();
    return Status::Error("no_url", "the tunnel command printed no URL within " +
                                       std::to_string(start_timeout_.count()) + " ms");
  }

  bool Alive() override {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      PS_LOG(kWarn, "tunnel") << "the tunnel command exited";
      return false;
    }
    DrainOutput();
    return true;
  }

  void Close() override {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) {
        ::usleep(20000);  // up to 1 s for a clean exit, then SIGKILL
      }
      if (::waitpid(pid_, &status, WNOHANG) == 0) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    if (out_fd_ >= 0) {
      ::close(out_fd_);
      out_fd_ = -1;
    }
  }

 private:
  // Keeps the program from blocking on a full pipe.
  void DrainOutput() {
    if (out_fd_ < 0) return;
    pollfd p{out_fd_, POLLIN, 0};
    char chunk[4096];
    while (::poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
      if (::read(out_fd_, chunk, sizeof chunk) <= 0) break;
    }
  }

  std::string command_;
  std::string pattern_;
  std::chrono::milliseconds start_timeout_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
};

}  // namespace

ProviderPtr MakeCommandProvider(std::string command, std::string url_pattern, uint16_t local_port,
                                std::chrono::milliseconds start_timeout) {
  return std::make_unique<CommandProvider>(std::move(command), std::move(url_pattern), local_port,
                                           start_timeout);
}

}  // namespace peerstack::tunnel
