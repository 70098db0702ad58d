#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "tunnel/tunnel.h"

namespace peerstack::tunnel {

struct Manager::Impl {
  ManagerOptions o;
  mutable std::mutex mu;  // st
  State st;
  size_t current = SIZE_MAX;  // index of the provider in use (manager thread only)
  std::thread thread;
  std::mutex wait_mu;
  std::condition_variable cv;
  bool stopping = false;
  bool check_now = false;

  void Fail(const std::string& provider, const std::string& why) {
    PS_LOG(kWarn, "tunnel") << provider << ": " << why;
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [p, w] : st.failures) {
      if (p == provider) {
        w = why;
        return;
      }
    }
    st.failures.emplace_back(provider, why);
  }

  // Opens and verifies providers [0, limit) in order; switches to the first that works.
  bool TryFrom(size_t limit) {
    for (size_t i = 0; i < limit && i < o.providers.size(); ++i) {
      Provider& p = *o.providers[i];
      auto url = p.Open();
      if (!url) {
        Fail(p.name(), url.status().message());
        continue;
      }
      if (const Reach r = o.verify(*url); r != Reach::kConfirmed) {
        Fail(p.name(), r == Reach::kRefuted ? "the node does not answer with its key at " + *url
                                            : "no peer could check " + *url + " now");
        if (i != current) p.Close();
        continue;
      }
      Switch(i, *url);
      return true;
    }
    return false;
  }

  void Switch(size_t i, const std::string& url) {
    if (current != SIZE_MAX && current != i) o.providers[current]->Close();
    const bool changed = current != i || st.url != url;
    current = i;
    {
      std::lock_guard<std::mutex> lock(mu);
      st.provider = o.providers[i]->name();
      st.url = url;
    }
    if (changed) {
      PS_LOG(kInfo, "tunnel") << "reachable through " << o.providers[i]->name() << " at " << url;
      if (o.on_change) o.on_change(url, o.providers[i]->name());
    }
  }

  void Loop() {
    auto next_better = std::chrono::steady_clock::now() + o.retry_better_interval;
    // While unreachable, the attempts back off: check_interval, doubling up to 6x (5 s .. 30 s
    // by default), so a node whose relays are all down does not hammer them.
    auto wait = o.check_interval;
    std::unique_lock<std::mutex> lock(wait_mu);
    while (!stopping) {
      const bool woken = cv.wait_for(lock, wait, [this] { return stopping || check_now; });
      if (woken) wait = o.check_interval;  // asked to check now: from the start
      check_now = false;
      if (stopping) break;
      lock.unlock();
      if (current == SIZE_MAX) {
        if (TryFrom(o.providers.size())) {
          wait = o.check_interval;
        } else {
          wait = std::min(wait * 2, o.check_interval * 6);
          PS_LOG(kInfo, "tunnel") << "still unreachable; next attempt in " << wait.count() << " ms";
        }
      } else {
        Provider& p = *o.providers[current];
        std::string url;
        {
          std::lock_guard<std::mutex> state_lock(mu);
          url = st.url;
        }
        if (!p.Alive() || o.verify(url) == Reach::kRefuted) {
          Fail(p.name(), "the path stopped working");
          p.Close();
          current = SIZE_MAX;
          {
            std::lock_guard<std::mutex> state_lock(mu);
            st.provider.clear();
            st.url.clear();
          }
          if (!TryFrom(o.providers.size())) wait = std::min(wait * 2, o.check_interval * 6);
        } else if (current > 0 && std::chrono::steady_clock::now() >= next_better) {
          next_better = std::chrono::steady_clock::now() + o.retry_better_interval;
          TryFrom(current);  // a better one may work again
        }
      }
      lock.lock();
    }
  }
};

Manager::Manager(ManagerOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->o = std::move(options);
}

Manager::~Manager() { Stop(); }

void Manager::Start() {
  if (!impl_->TryFrom(impl_->o.providers.size())) {
    PS_LOG(kError, "tunnel") << "no provider made this node reachable; retrying in "
                             << impl_->o.check_interval.count() << " ms, then less often (up to "
                             << impl_->o.check_interval.count() * 6 << " ms apart)";
  }
  impl_->thread = std::thread([impl = impl_] { impl->Loop(); });
}

void Manager::CheckNow() {
  {
    std::lock_guard<std::mutex> lock(impl_->wait_mu);
    impl_->check_now = true;
  }
  impl_->cv.notify_all();
}

void Manager::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->wait_mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  for (auto& p : impl_->o.providers) p->Close();
}

State Manager::state() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->st;
}

}  // namespace peerstack::tunnel
