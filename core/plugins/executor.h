// Runs plugin calls on a pool of worker threads with a deadline each. A call still queued
// or running at its deadline gets its on_timeout run (once) by the watchdog; a worker stuck
// in a call past its deadline is replaced (up to a cap), so calls that never return cost
// a thread each but do not starve the others. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace peerstack::plugins {

class Executor {
 public:
  struct Options {
    size_t workers = 4;        // threads kept running
    size_t max_workers = 32;   // including replacements for stuck ones
    size_t max_queued = 4096;  // beyond: Submit returns false
    std::chrono::milliseconds timeout{10000};
  };

  explicit Executor(Options options);
  ~Executor();  // Stop()
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues run. If it has not finished by now + timeout, on_timeout runs on the watchdog
  // thread (run may still complete later; both then happened). False when the queue is full
  // or the executor is stopped (neither function runs).
  bool Submit(std::function<void()> run, std::function<void()> on_timeout);

  // Stops taking work, times out what is queued, joins idle workers; workers stuck in a
  // call are detached (their call may finish later).
  void Stop();

 private:
  // Shared with the threads, so a worker stuck in a call that returns after the executor is
  // gone still finds valid state.
  struct State;
  std::shared_ptr<State> state_;
  std::thread watchdog_;
};

}  // namespace peerstack::plugins
