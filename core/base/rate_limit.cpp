#include "base/rate_limit.h"

namespace peerstack {

bool RateLimit::Admit(const std::string& key, int64_t now_ms) {
  if (second_start_ == INT64_MIN || now_ms - second_start_ >= 1000) {
    second_start_ = now_ms;
    in_second_ = 0;
    for (auto it = keys_.begin(); it != keys_.end();) {  // forget finished windows
      it = now_ms - it->second.start >= key_window_ms_ ? keys_.erase(it) : std::next(it);
    }
  }
  auto it = keys_.find(key);
  if (it != keys_.end() && now_ms - it->second.start >= key_window_ms_) {
    keys_.erase(it);
    it = keys_.end();
  }
  if (in_second_ >= total_) return false;
  if (it != keys_.end() && it->second.count >= per_key_) return false;
  if (it == keys_.end() && keys_.size() >= max_keys_) return false;
  ++in_second_;
  if (it == keys_.end()) {
    keys_.emplace(key, Window{now_ms, 1});
  } else {
    ++it->second.count;
  }
  return true;
}

}  // namespace peerstack
