// The one logger: a line per event, "TIME LEVEL module: message", to stderr. Under systemd
// (stderr is the journal: JOURNAL_STREAM names its device and inode) a line is
// "<P>LEVEL module: message" instead: P the syslog priority journald reads (7 debug, 6 info,
// 4 warn, 3 error), no time (the journal adds its own).
// Thread-safe; the level is process-wide and set once at start-up by the command line.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace peerstack::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warn", "error", "off"; false on anything else.
bool ParseLevel(std::string_view text, Level* out);
void SetLevel(Level level);
bool Enabled(Level level);
void Write(Level level, std::string_view module, std::string_view message);
// Whether stderr is the journal, as JOURNAL_STREAM ("DEVICE:INODE") and fstat(2) say; read once.
bool ToJournal();
// A wall-clock time (ms since the epoch) as the log writes it: 2026-12-01T23:58:24.123Z.
std::string UtcTime(int64_t ms_since_epoch);

// Builds the message only when the level is enabled:
//   PS_LOG(kInfo, "http") << "listening on " << port;
class Line {
 public:
  Line(Level level, std::string_view module) : level_(level), module_(module) {}
  ~Line() { Write(level_, module_, stream_.str()); }
  template <typename T>
  Line& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  Level level_;
  std::string_view module_;
  std::ostringstream stream_;
};

}  // namespace peerstack::log

#define PS_LOG(level, module)                                       \
  if (!::peerstack::log::Enabled(::peerstack::log::Level::level)) { \
  } else                                                            \
    ::peerstack::log::Line(::peerstack::log::Level::level, module)
