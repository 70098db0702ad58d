// The shared start and end of the benchmark servers (bench/*/..._server.cpp): quiet logs,
// SIGPIPE ignored, SIGTERM and SIGINT blocked in every thread (call first, before any thread
// starts) so that the main thread can wait for them and stop cleanly.
#pragma once

#include <pthread.h>
#include <signal.h>

#include "base/log.h"

namespace peerstack::bench {

inline sigset_t PrepareServerProcess() {
  log::SetLevel(log::Level::kWarn);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

inline void WaitForStop(const sigset_t& stop) {
  int sig = 0;
  sigwait(&stop, &sig);
}

}  // namespace peerstack::bench
