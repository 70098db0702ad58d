// Admission control for answers that cost us or someone else (a reply sent to a URL the
// sender names, an outgoing fetch): at most `per_key` admissions per key in `key_window_ms`,
// and at most `total_per_second` in all. Sans clock (the caller passes the time, so the
// simulator drives it too) and not thread-safe (the caller's lock guards it). Keys are
// forgotten when their window is over; beyond `max_keys` remembered keys, new ones are
// refused rather than the memory growing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace peerstack {

class RateLimit {
 public:
  RateLimit(int per_key, int64_t key_window_ms, int total_per_second, size_t max_keys = 4096)
      : per_key_(per_key),
        key_window_ms_(key_window_ms),
        total_(total_per_second),
        max_keys_(max_keys) {}

  // True (and counted) when one more for `key` at `now_ms` is within both limits.
  bool Admit(const std::string& key, int64_t now_ms);

 private:
  struct Window {
    int64_t start;
    int count;
  };
  int per_key_;
  int64_t key_window_ms_;
  int total_;
  size_t max_keys_;
  std::map<std::string, Window> keys_;
  int64_t second_start_ = INT64_MIN;
  int in_second_ = 0;
};

}  // namespace peerstack
