#include "plugins/executor.h"

#include "base/log.h"

namespace peerstack::plugins {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Task {
  std::function<void()> run;
  std::function<void()> on_timeout;
  int64_t deadline_ms = 0;
  bool timed_out = false;  // on_timeout ran or is about to
};

struct Worker {
  std::thread thread;
  std::shared_ptr<Task> current;
  bool stuck = false;   // its call passed the deadline; a replacement was started
  bool exited = false;  // left its loop; join it
};

}  // namespace

struct Executor::State {
  Options options;
  std::mutex mu;
  std::condition_variable work_cv;
  std::condition_variable watchdog_cv;
  std::deque<std::shared_ptr<Task>> queue;
  std::vector<std::shared_ptr<Worker>> workers;
  bool stopping = false;

  void StartWorkerLocked(const std::shared_ptr<State>& self) {
    auto worker = std::make_shared<Worker>();
    worker->thread = std::thread([self, worker] { self->WorkerLoop(worker); });
    workers.push_back(std::move(worker));
  }

  size_t LiveLocked() const {
    size_t live = 0;
    for (const auto& w : workers) live += (!w->stuck && !w->exited) ? 1 : 0;
    return live;
  }

  void WorkerLoop(const std::shared_ptr<Worker>& self) {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      work_cv.wait(lock, [&] { return stopping || !queue.empty() || self->stuck; });
      if (self->stuck) {
        // Replaced while stuck in a call: leave unless the pool is short of workers.
        if (stopping || LiveLocked() >= options.workers) break;
        self->stuck = false;
        continue;
      }
      if (queue.empty()) break;  // stopping
      std::shared_ptr<Task> task = std::move(queue.front());
      queue.pop_front();
      if (task->timed_out) continue;
      self->current = task;
      lock.unlock();
      task->run();
      lock.lock();
      self->current.reset();
    }
    self->exited = true;
  }

  // Every 50 ms: time out overdue queued tasks and running calls; replace stuck workers.
  void WatchdogLoop(const std::shared_ptr<State>& self) {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      watchdog_cv.wait_for(lock, std::chrono::milliseconds(50));
      if (stopping) break;
      const int64_t now = NowMs();
      std::vector<std::shared_ptr<Task>> expired;
      for (auto it = queue.begin(); it != queue.end();) {
        if ((*it)->deadline_ms <= now) {
          (*it)->timed_out = true;
          expired.push_back(std::move(*it));
          it = queue.erase(it);
        } else {
          ++it;
        }
      }
      size_t replacements = 0;
      for (const auto& w : workers) {
        if (w->current && !w->current->timed_out && w->current->deadline_ms <= now) {
          w->current->timed_out = true;
          w->stuck = true;
          expired.push_back(w->current);
          ++replacements;
        }
      }
      for (size_t i = 0; i < replacements && workers.size() < options.max_workers; ++i) {
        StartWorkerLocked(self);
      }
      for (auto it = workers.begin(); it != workers.end();) {
        if ((*it)->exited) {
          (*it)->thread.join();
          it = workers.erase(it);
        } else {
          ++it;
        }
      }
      if (replacements > 0) work_cv.notify_all();  // stuck ones re-check when they return
      if (expired.empty()) continue;
      lock.unlock();
      for (const auto& t : expired) t->on_timeout();
      lock.lock();
    }
  }
};

Executor::Executor(Options options) : state_(std::make_shared<State>()) {
  state_->options = options;
  std::lock_guard<std::mutex> lock(state_->mu);
  for (size_t i = 0; i < options.workers; ++i) state_->StartWorkerLocked(state_);
  watchdog_ = std::thread([s = state_] { s->WatchdogLoop(s); });
}

Executor::~Executor() { Stop(); }

bool Executor::Submit(std::function<void()> run, std::function<void()> on_timeout) {
  auto task = std::make_shared<Task>();
  task->run = std::move(run);
  task->on_timeout = std::move(on_timeout);
  task->deadline_ms = NowMs() + state_->options.timeout.count();
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopping || state_->queue.size() >= state_->options.max_queued) return false;
    state_->queue.push_back(std::move(task));
  }
  state_->work_cv.notify_one();
  return true;
}

void Executor::Stop() {
  std::vector<std::shared_ptr<Task>> pending;
  std::vector<std::shared_ptr<Worker>> idle;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopping) return;
    state_->stopping = true;
    pending.assign(state_->queue.begin(), state_->queue.end());
    state_->queue.clear();
    for (auto& w : state_->workers) {
      if (w->current) {
        // In a call that may never return: let it go. It holds the shared state.
        PS_LOG(kWarn, "plugins") << "a plugin call is still running at shutdown; leaving it";
        w->thread.detach();
      } else {
        idle.push_back(w);
      }
    }
    state_->workers.clear();
  }
  state_->work_cv.notify_all();
  state_->watchdog_cv.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  for (const auto& t : pending) t->on_timeout();
  for (auto& w : idle) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace peerstack::plugins
