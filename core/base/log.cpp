#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace peerstack::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_write_mutex;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kError:
      return "ERROR";
    case Level::kOff:
      return "OFF";
  }
  return "?";
}

}  // namespace

bool ParseLevel(std::string_view text, Level* out) {
  static constexpr std::pair<std::string_view, Level> kNames[] = {{"debug", Level::kDebug},
                                                                  {"info", Level::kInfo},
                                                                  {"warn", Level::kWarn},
                                                                  {"error", Level::kError},
                                                                  {"off", Level::kOff}};
  for (const auto& [name, level] : kNames) {
    if (text == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string UtcTime(int64_t ms_since_epoch) {
  const std::time_t secs = static_cast<std::time_t>(ms_since_epoch / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", stamp, static_cast<int>(ms_since_epoch % 1000));
  return out;
}

bool ToJournal() {
  static const bool journal = [] {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr || *env == '\0') return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    // Only when stderr is still that stream (not redirected by whoever started us).
    return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
  }();
  return journal;
}

void Write(Level level, std::string_view module, std::string_view message) {
  using namespace std::chrono;
  if (ToJournal()) {
    static constexpr int kPriority[] = {7, 6, 4, 3, 3};
    std::lock_guard<std::mutex> lock(g_write_mutex);
    std::fprintf(stderr, "<%d>%-5s %.*s: %.*s\n", kPriority[static_cast<int>(level)],
                 LevelName(level), static_cast<int>(module.size()), module.data(),
                 static_cast<int>(message.size()), message.data());
    std::fflush(stderr);
    return;
  }
  const std::string stamp =
      UtcTime(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  std::lock_guard<std::mutex> lock(g_write_mutex);
  std::fprintf(stderr, "%s %-5s %.*s: %.*s\n", stamp.c_str(), LevelName(level),
               static_cast<int>(module.size()), module.data(), static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
}

}  // namespace peerstack::log
