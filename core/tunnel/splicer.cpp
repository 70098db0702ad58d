#include "tunnel/splicer.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "base/log.h"

namespace peerstack::tunnel {

using Clock = std::chrono::steady_clock;

// ---- ByteRate ---------------------------------------------------------------------------

struct ByteRate::Impl {
  std::mutex mu;
  double rate;
  double tokens;
  Clock::time_point last = Clock::now();
};

ByteRate::ByteRate(uint64_t per_second) : impl_(std::make_shared<Impl>()) {
  impl_->rate = static_cast<double>(std::max<uint64_t>(per_second, 1));
  impl_->tokens = impl_->rate;  // a second's worth of burst
}

std::chrono::microseconds ByteRate::Take(size_t n) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const auto now = Clock::now();
  impl_->tokens = std::min(
      impl_->rate,
      impl_->tokens + std::chrono::duration<double>(now - impl_->last).count() * impl_->rate);
  impl_->last = now;
  impl_->tokens -= static_cast<double>(n);
  if (impl_->tokens >= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(static_cast<int64_t>(-impl_->tokens / impl_->rate * 1e6) + 1);
}

// ---- Splicer ----------------------------------------------------------------------------

namespace {

constexpr size_t kReadSize = 64 * 1024;
constexpr int kReadsPerEvent = 8;

struct Pair;
struct Side {
  Pair* pair;
  int i;
};

struct Pair {
  int fd[2];
  std::string pending[2];         // read from side i, not yet written to side 1-i
  bool eof[2] = {false, false};   // side i sent FIN
  bool shut[2] = {false, false};  // we shut down writing to side i
  bool registered[2] = {true, true};
  uint32_t interest[2] = {0, 0};
  Clock::time_point paused_until{};
  Clock::time_point last = Clock::now();
  std::shared_ptr<ByteRate> rate;
  std::function<void()> on_close;
  bool closed = false;  // closed in this batch of events; freed after it
  Side side[2];

  bool DirectionDone(int i) const { return eof[i] && pending[i].empty(); }
  bool Done() const { return DirectionDone(0) && DirectionDone(1); }
};

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

}  // namespace

struct Splicer::Impl {
  std::chrono::milliseconds idle;
  int ep = -1;
  int wake = -1;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> count{0};
  std::atomic<uint64_t> bytes{0};  // copied, both directions
  std::mutex mu;                   // incoming
  std::vector<Pair*> incoming;
  std::unordered_set<Pair*> pairs;  // the loop thread's
  std::vector<Pair*> closed;        // freed after the current batch: later events may name them
  size_t paused = 0;                // pairs waiting for their byte rate
  std::vector<char> scratch = std::vector<char>(kReadSize);
  std::thread thread;

  void Loop() {
    epoll_event events[128];
    auto last_sweep = Clock::now();
    while (!stopping) {
      const int n = ::epoll_wait(ep, events, 128, Timeout());
      if (n < 0 && errno != EINTR) {
        PS_LOG(kError, "relay") << "epoll_wait failed: errno " << errno;
        return;
      }
      for (int k = 0; k < n; ++k) {
        auto* side = static_cast<Side*>(events[k].data.ptr);
        if (side == nullptr) {
          TakeIncoming();
          continue;
        }
        Pair* p = side->pair;
        if (p->closed) continue;  // closed earlier in this batch
        if (!Handle(p, side->i, events[k].events)) Close(p);
      }
      FreeClosed();
      const auto now = Clock::now();
      ResumePaused(now);
      if (now - last_sweep >= SweepEvery()) {
        last_sweep = now;
        std::vector<Pair*> idle_pairs;
        for (Pair* p : pairs) {
          if (now - p->last > idle) idle_pairs.push_back(p);
        }
        for (Pair* p : idle_pairs) Close(p);
        FreeClosed();
      }
    }
  }

  std::chrono::milliseconds SweepEvery() const {
    return std::min<std::chrono::milliseconds>(idle, std::chrono::seconds(1));
  }

  int Timeout() const {
    auto wait = SweepEvery();
    if (paused == 0) return static_cast<int>(wait.count());
    const auto now = Clock::now();
    for (const Pair* p : pairs) {
      if (p->paused_until > now) {
        wait = std::min(
            wait, std::chrono::duration_cast<std::chrono::milliseconds>(p->paused_until - now) +
                      std::chrono::milliseconds(1));
      }
    }
    return static_cast<int>(wait.count());
  }

  void TakeIncoming() {
    uint64_t value;
    while (::read(wake, &value, sizeof value) > 0) {
    }
    std::vector<Pair*> added;
    {
      std::lock_guard<std::mutex> lock(mu);
      added.swap(incoming);
    }
    for (Pair* p : added) {
      pairs.insert(p);
      bool ok = true;
      for (int i = 0; i < 2; ++i) {
        ::fcntl(p->fd[i], F_SETFL, ::fcntl(p->fd[i], F_GETFL) | O_NONBLOCK);
        const int one = 1;
        ::setsockopt(p->fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        p->side[i] = Side{p, i};
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &p->side[i];
        p->interest[i] = EPOLLIN;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[i], &ev) != 0) {
          p->registered[i] = false;
          ok = false;
        }
      }
      if (!ok) Close(p);
    }
  }

  // Returns false when the pair must close.
  bool Handle(Pair* p, int i, uint32_t ev) {
    const int j = 1 - i;
    if (ev & EPOLLERR) return false;
    p->last = Clock::now();
    // Writable (or hung up): flush what side j sent towards side i.
    if ((ev & (EPOLLOUT | EPOLLHUP)) && !p->pending[j].empty()) {
      if (!Flush(p, j)) return false;
    }
    // Readable: copy while it flows (a few reads, then level-triggered epoll comes back), so
    // a large answer costs fewer wake-ups; a small one costs one read.
    // (A hang-up is read even while the byte rate pauses the pair: it would report itself in
    // a loop otherwise.)
    for (int reads = 0;
         reads < kReadsPerEvent && (ev & (EPOLLIN | EPOLLHUP)) && !p->eof[i] &&
         p->pending[i].empty() && (p->paused_until == Clock::time_point{} || (ev & EPOLLHUP));
         ++reads) {
      const ssize_t n = ::recv(p->fd[i], scratch.data(), scratch.size(), 0);
      if (n == 0) {
        p->eof[i] = true;
      } else if (n < 0) {
        if (!WouldBlock()) return false;
        break;
      } else {
        if (p->rate) {
          const auto pause = p->rate->Take(static_cast<size_t>(n));
          if (pause.count() > 0) {
            if (p->paused_until == Clock::time_point{}) ++paused;
            p->paused_until = p->last + pause;
          }
        }
        p->pending[i].assign(scratch.data(), static_cast<size_t>(n));
        if (!Flush(p, i)) return false;
        if (static_cast<size_t>(n) < scratch.size()) break;  // drained for now
      }
    }
    for (int s = 0; s < 2; ++s) {
      if (p->DirectionDone(s) && !p->shut[1 - s]) {
        ::shutdown(p->fd[1 - s], SHUT_WR);  // pass the half-close on
        p->shut[1 - s] = true;
      }
    }
    if (p->Done()) return false;
    Update(p, 0);
    Update(p, 1);
    return true;
  }

  // Writes pending[from] to the other side; false on a write error.
  bool Flush(Pair* p, int from) {
    std::string& buf = p->pending[from];
    size_t done = 0;
    while (done < buf.size()) {
      const ssize_t n = ::send(p->fd[1 - from], buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (WouldBlock()) break;
        return false;
      }
      done += static_cast<size_t>(n);
    }
    buf.erase(0, done);
    bytes.fetch_add(done, std::memory_order_relaxed);
    return true;
  }

  void Update(Pair* p, int i) {
    const int j = 1 - i;
    uint32_t want = 0;
    if (!p->eof[i] && p->pending[i].empty() && p->paused_until == Clock::time_point{})
      want |= EPOLLIN;
    if (!p->pending[j].empty()) want |= EPOLLOUT;
    epoll_event e{};
    e.events = want;
    e.data.ptr = &p->side[i];
    if (want == 0 && p->eof[i]) {
      // Nothing to do with this socket for now: out of the set, so that its hang-up does not
      // report itself in a loop. Back in when there is something to write to it.
      if (p->registered[i]) ::epoll_ctl(ep, EPOLL_CTL_DEL, p->fd[i], nullptr);
      p->registered[i] = false;
      p->interest[i] = 0;
      return;
    }
    if (!p->registered[i]) {
      if (::epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[i], &e) == 0) p->registered[i] = true;
      p->interest[i] = want;
      return;
    }
    if (want == p->interest[i]) return;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, p->fd[i], &e);
    p->interest[i] = want;
  }

  void ResumePaused(Clock::time_point now) {
    if (paused == 0) return;
    for (Pair* p : pairs) {
      if (p->paused_until != Clock::time_point{} && p->paused_until <= now) {
        p->paused_until = Clock::time_point{};
        --paused;
        Update(p, 0);
        Update(p, 1);
      }
    }
  }

  void Close(Pair* p) {
    if (p->paused_until != Clock::time_point{}) --paused;
    for (int i = 0; i < 2; ++i) ::close(p->fd[i]);  // also leaves the epoll set
    pairs.erase(p);
    --count;
    p->closed = true;
    closed.push_back(p);
    if (p->on_close) p->on_close();
  }

  void FreeClosed() {
    for (Pair* p : closed) delete p;
    closed.clear();
  }
};

Splicer::Splicer(std::chrono::milliseconds idle) : impl_(std::make_unique<Impl>()) {
  impl_->idle = idle;
  impl_->ep = ::epoll_create1(EPOLL_CLOEXEC);
  impl_->wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  ::epoll_ctl(impl_->ep, EPOLL_CTL_ADD, impl_->wake, &ev);
  impl_->thread = std::thread([impl = impl_.get()] {
    ::pthread_setname_np(::pthread_self(), "ps-splice");  // for top, perf and the relay bench
    impl->Loop();
  });
}

Splicer::~Splicer() {
  impl_->stopping = true;
  const uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(impl_->wake, &one, sizeof one);
  impl_->thread.join();
  impl_->TakeIncoming();
  while (!impl_->pairs.empty()) impl_->Close(*impl_->pairs.begin());
  impl_->FreeClosed();
  ::close(impl_->wake);
  ::close(impl_->ep);
}

void Splicer::Add(int a, int b, std::shared_ptr<ByteRate> rate, std::function<void()> on_close) {
  auto* p = new Pair;
  p->fd[0] = a;
  p->fd[1] = b;
  p->rate = std::move(rate);
  p->on_close = std::move(on_close);
  ++impl_->count;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->incoming.push_back(p);
  }
  const uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(impl_->wake, &one, sizeof one);
}

size_t Splicer::pairs() const { return impl_->count; }
uint64_t Splicer::bytes() const { return impl_->bytes.load(std::memory_order_relaxed); }

}  // namespace peerstack::tunnel
