#include "release/fetcher.h"

#include <chrono>

#include "base/log.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::release {

BlobFetcher::BlobFetcher(FetcherOptions options) : o_(std::move(options)) {}

BlobFetcher::~BlobFetcher() {
  std::lock_guard<std::mutex> lock(inbox_->mu);
  inbox_->closed = true;  // answers still on their way are dropped
}

bool BlobFetcher::Have(const std::string& sha256) const { return o_.blobs->PathOf(sha256).ok(); }

FetcherStats BlobFetcher::stats() const {
  FetcherStats s = stats_;
  s.in_flight = in_flight_.size();
  return s;
}

void BlobFetcher::Error(const std::string& peer, const std::string& why) {
  ++stats_.refused;
  PS_LOG(kWarn, "release") << "blob from " << peer << " refused: " << why;
  stats_.errors.push_back(peer + ": " + why);
  if (stats_.errors.size() > 8) stats_.errors.erase(stats_.errors.begin());
}

void BlobFetcher::Handle(Arrival a) {
  in_flight_.erase(a.sha256);
  auto fail = [&](const std::string& why) {
    tried_[a.sha256].insert(a.peer);
    Error(a.peer, a.sha256.substr(0, 12) + ": " + why);
  };
  if (!a.response)
    return fail(a.response.status().code() == "timeout"
                    ? "too slow (below the minimum rate, or silent)"
                    : a.response.status().message());
  const http::ClientResponse& r = *a.response;
  if (r.status != 200) return fail("answered " + std::to_string(r.status));
  if (static_cast<int64_t>(r.body.size()) != a.size) {
    return fail(std::to_string(r.body.size()) + " bytes, the release lists " +
                std::to_string(a.size));
  }
  // The hash first: nothing else reads bytes that are not the ones the release lists.
  const auto store_start = std::chrono::steady_clock::now();
  if (!crypto::ConstantTimeEqual(crypto::Sha256Hex(r.body), a.sha256)) {
    return fail("the bytes do not hash to the listed sha256");
  }
  auto stored = o_.blobs->PutHashed(r.body, a.sha256);
  if (!stored) {
    // Not the peer's fault (a full disk): try again later, from the same peer.
    PS_LOG(kError, "release") << "cannot store blob " << a.sha256 << ": "
                              << stored.status().ToString();
    stats_.errors.push_back("store: " + stored.status().message());
    if (stats_.errors.size() > 8) stats_.errors.erase(stats_.errors.begin());
    retry_at_[a.sha256] = o_.clock->SteadyMs() + o_.retry_after_ms;
    return;
  }
  ++stats_.fetched;
  stats_.fetched_bytes += r.body.size();
  stats_.last_bytes = static_cast<int64_t>(r.body.size());
  stats_.last_transfer_ms = a.transfer_ms;
  stats_.last_store_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - store_start)
          .count();
  tried_.erase(a.sha256);
  PS_LOG(kInfo, "release") << "fetched blob " << a.sha256.substr(0, 12) << " (" << r.body.size()
                           << " bytes) from " << a.peer << " in " << a.transfer_ms
                           << " ms, stored in " << stats_.last_store_ms << " ms";
}

void BlobFetcher::Start(const BlobRequest& b, const std::string& peer) {
  http::ClientRequest req;
  req.method = "GET";
  req.url = peer + "/p2p/blob/" + b.sha256;
  req.max_response_bytes = static_cast<size_t>(b.size);
  const int64_t rate = std::max<int64_t>(1, o_.min_rate_bytes_per_s);
  req.timeout = std::chrono::milliseconds(o_.base_timeout_ms + b.size * 1000 / rate);
  in_flight_.insert(b.sha256);
  std::weak_ptr<Inbox> inbox = inbox_;
  const auto start = std::chrono::steady_clock::now();
  o_.transport->Fetch(std::move(req), [inbox, sha = b.sha256, peer, size = b.size, start,
                                       wake = o_.wake](Result<http::ClientResponse> r) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    auto box = inbox.lock();
    if (!box) return;
    {
      std::lock_guard<std::mutex> lock(box->mu);
      if (box->closed) return;
      box->arrivals.push_back({sha, peer, size, std::move(r), ms});
    }
    if (wake) wake();
  });
}

bool BlobFetcher::Pump(const std::vector<BlobRequest>& wanted,
                       const std::vector<std::string>& peers) {
  std::deque<Arrival> arrived;
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    arrived.swap(inbox_->arrivals);
  }
  for (Arrival& a : arrived) Handle(std::move(a));
  const int64_t now = o_.clock->SteadyMs();
  size_t missing = 0;
  for (const BlobRequest& b : wanted) {
    if (Have(b.sha256)) continue;
    ++missing;
    if (in_flight_.count(b.sha256) || in_flight_.size() >= o_.parallel) continue;
    if (auto it = retry_at_.find(b.sha256); it != retry_at_.end()) {
      if (now < it->second) continue;
      retry_at_.erase(it);
    }
    const std::set<std::string>& tried = tried_[b.sha256];
    const std::string* next = nullptr;
    for (const std::string& p : peers) {
      if (!tried.count(p)) {
        next = &p;
        break;
      }
    }
    if (!next) {
      // Every peer failed this blob: start over after a pause (a peer may have it by then).
      tried_.erase(b.sha256);
      retry_at_[b.sha256] = now + o_.retry_after_ms;
      continue;
    }
    Start(b, *next);
  }
  stats_.missing = missing;
  return missing == 0;
}

}  // namespace peerstack::release
