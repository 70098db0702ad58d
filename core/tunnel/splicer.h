// Copies bytes both ways between pairs of TCP sockets on one epoll thread (the relay's data
// path, on the relay server and on the relayed node). Non-blocking, with backpressure: a side
// is read only while the bytes read from it before have all been written to the other side,
// so memory per pair is bounded by one read (64 KiB) per direction. A half-close is passed
// on (EOF on one side -> shutdown(SHUT_WR) on the other); the pair closes when both
// directions have ended, on any error, or after `idle` without traffic.
//
// One thread for all pairs: under load each epoll_wait returns many ready sockets, so the
// relay does not pay a thread switch per message (the thread-per-side version spent half its
// CPU switching; see docs/benchmarks.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace peerstack::tunnel {

// Bytes per second shared by every pair that holds it, both directions. A read may overdraw
// the bucket; the pair's reads then pause until the debt is paid back.
class ByteRate {
 public:
  explicit ByteRate(uint64_t per_second);
  // Takes n bytes; returns how long reads must pause (zero when within the rate).
  std::chrono::microseconds Take(size_t n);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

class Splicer {
 public:
  explicit Splicer(std::chrono::milliseconds idle = std::chrono::minutes(2));
  ~Splicer();  // closes every pair (on_close runs for each)
  Splicer(const Splicer&) = delete;
  Splicer& operator=(const Splicer&) = delete;

  // Takes ownership of both sockets (any thread). on_close runs on the splicer's thread once
  // both are closed. `rate` may be null (no limit).
  void Add(int a, int b, std::shared_ptr<ByteRate> rate = nullptr,
           std::function<void()> on_close = nullptr);
  size_t pairs() const;
  uint64_t bytes() const;  // copied so far, both directions

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerstack::tunnel
