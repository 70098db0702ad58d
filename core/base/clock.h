// Time, injected. Code that decides by time (deadlines, backoff, expiry, freshness) takes a
// `const Clock&` from the composition root instead of reading the system clock, so tests and
// the simulator drive it with a FakeClock. Thread-safe: SystemClock has no state; FakeClock's
// readings and Advance() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace peerstack {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds (deadlines, timeouts, rates): never goes back.
  virtual int64_t SteadyMs() const = 0;
  // Milliseconds since the Unix epoch (timestamps that other nodes read: events, expiry).
  virtual int64_t WallMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t SteadyMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t WallMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Wall time starts at a fixed, plausible date.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ms = 1'800'000'000'000) : wall_offset_(wall_ms) {}
  int64_t SteadyMs() const override { return steady_.load(); }
  int64_t WallMs() const override { return wall_offset_ + steady_.load(); }
  void Advance(int64_t ms) { steady_ += ms; }

 private:
  std::atomic<int64_t> steady_{0};
  int64_t wall_offset_;
};

}  // namespace peerstack
