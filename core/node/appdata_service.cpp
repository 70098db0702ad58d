#include "node/appdata_service.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "base/log.h"
#include "crypto/encoding.h"

namespace peerstack::node {

struct AppDataService::Impl {
  AppDataOptions o;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread ticker;
  size_t events_seen = static_cast<size_t>(-1);  // ledger size of the last history given
  // What went out: messages queued, and their bytes (the body and the headers this service
  // sets; the request line and Beast's own headers are about 100 bytes more each).
  std::atomic<uint64_t> messages_sent{0}, bytes_sent{0};

  // Seals a message as protocol/envelope.h does: the body is already canonical JSON, so the
  // envelope's canonical bytes are built around it without parsing it again.
  void Send(const std::vector<appdata::Outgoing>& out) {
    if (out.empty()) return;
    const std::string self = o.network->self_url();
    const auto& pub = o.key->public_key();
    const std::string key_hex = crypto::HexEncode(pub.data(), pub.size());
    std::string last_body, last_type,
        sig_hex;  // a push goes to every peer with one body: signed once
    for (const appdata::Outgoing& m : out) {
      std::string body = "{\"body\":" + m.body + ",\"from\":";
      json::AppendQuoted(body, self);
      body += "}";
      if (body != last_body || m.type != last_type) {
        const crypto::Signature sig = o.key->SignWithDomain("p2p/" + m.type, body);
        sig_hex = crypto::HexEncode(sig.data(), sig.size());
        last_body = body;
        last_type = m.type;
      }
      transport::Message tm;
      tm.peer = m.to;
      tm.path = "/p2p/" + m.type;
      tm.body = std::move(body);
      tm.headers = {{"content-type", "application/json"},
                    {"x-peerstack-key", key_hex},
                    {"x-peerstack-signature", sig_hex}};
      tm.droppable = true;
      if (m.type == "appsync") tm.supersedes = "appsync";
      size_t bytes = tm.body.size() + tm.path.size();
      for (const http::Header& h : tm.headers) bytes += h.name.size() + h.value.size() + 4;
      if (!o.transport->Send(std::move(tm))) {
        PS_LOG(kDebug, "appdata") << m.type << " to " << m.to << " not queued (its queue is full)";
        continue;
      }
      messages_sent.fetch_add(1, std::memory_order_relaxed);
      bytes_sent.fetch_add(bytes, std::memory_order_relaxed);
    }
  }

  void Refresh() {
    const bool changed = o.network->View(false).events != events_seen;
    NetworkService::AppView view = o.network->View(changed);
    if (view.authority) {
      events_seen = view.events;
      o.replica->SetAuthority(std::move(*view.authority), std::move(view.members));
    } else {
      o.replica->SetPeers(std::move(view.members));
    }
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      cv.wait_for(lock, std::chrono::milliseconds(o.tick_ms));
      if (stopping) break;
      lock.unlock();
      Refresh();
      std::vector<appdata::Outgoing> out;
      o.replica->Tick(&out);
      Send(out);
      lock.lock();
    }
  }
};

AppDataService::AppDataService(AppDataOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->o = std::move(options);
}

AppDataService::~AppDataService() { Stop(); }

void AppDataService::Start() {
  impl_->Refresh();
  impl_->ticker = std::thread([impl = impl_] { impl->Loop(); });
}

void AppDataService::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->ticker.joinable()) impl_->ticker.join();
}

Status AppDataService::Receive(const std::string& key, const std::string& url,
                               const std::string& type, const json::Value& body) {
  std::vector<appdata::Outgoing> out;
  Status s = impl_->o.replica->Receive(key, url, type, body, &out);
  impl_->Send(out);
  return s;
}

json::Value AppDataService::StatusJson() const {
  json::Value v = impl_->o.replica->StatusJson();
  v.as_object()["messages_sent"] = impl_->messages_sent.load();
  v.as_object()["bytes_sent"] = impl_->bytes_sent.load();
  return v;
}

}  // namespace peerstack::node
