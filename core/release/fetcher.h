// Fetches blobs (the files of a release) from peers by hash, on the transport's event loop
// (transport/transport.h): GET <peer>/p2p/blob/<sha256>, at most the listed size, within a
// deadline of base_timeout + size / min_rate (a peer that trickles is dropped when it passes),
// at most `parallel` at once. The bytes are hashed before anything else touches them; a blob
// that is longer, shorter or another one than asked is refused and the next peer is asked.
// Verified bytes go to the blob store (temp file, fsync, rename), so a blob is whole or absent.
//
// Not thread-safe: Pump() and the getters run on the owner's thread (the release manager's
// worker). Fetch answers arrive on the transport's loop, are queued (at most `parallel`), and
// wake the owner through `wake`; Pump() verifies and stores them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "store/blob_store.h"
#include "transport/transport.h"

namespace peerstack::release {

struct BlobRequest {
  std::string sha256;
  int64_t size = 0;
};

struct FetcherOptions {
  transport::Transport* transport = nullptr;  // not owned
  store::BlobStore* blobs = nullptr;          // not owned
  const Clock* clock = nullptr;               // not owned
  int64_t min_rate_bytes_per_s = 256 * 1024;
  int64_t base_timeout_ms = 2000;
  size_t parallel = 4;
  int64_t retry_after_ms = 500;  // once every peer failed for a blob, wait this long
  std::function<void()> wake;    // an answer is waiting for Pump(); called on the loop thread
};

struct FetcherStats {
  size_t missing = 0;  // of the last wanted set, not stored yet
  size_t in_flight = 0;
  uint64_t fetched = 0;  // blobs stored
  uint64_t fetched_bytes = 0;
  uint64_t refused = 0;  // answers refused (bad hash, size, status, timeout)
  // The last blob fetched: its size, the exchange's time (request sent to last byte read, on
  // the transport's loop) and the time to hash and store it (temp file, fsync, rename).
  int64_t last_bytes = 0;
  double last_transfer_ms = 0;
  double last_store_ms = 0;
  std::vector<std::string> errors;  // the last few, "peer: why"
};

class BlobFetcher {
 public:
  explicit BlobFetcher(FetcherOptions options);
  ~BlobFetcher();
  BlobFetcher(const BlobFetcher&) = delete;
  BlobFetcher& operator=(const BlobFetcher&) = delete;

  // Handles the answers that arrived, then starts fetches for what `wanted` still lacks, each
  // from the first peer (in the order given) that has not failed it yet. True when every
  // wanted blob is stored.
  bool Pump(const std::vector<BlobRequest>& wanted, const std::vector<std::string>& peers);
  bool Have(const std::string& sha256) const;
  FetcherStats stats() const;

 private:
  struct Arrival {
    std::string sha256, peer;
    int64_t size = 0;
    Result<http::ClientResponse> response;
    double transfer_ms = 0;
  };
  void Handle(Arrival a);
  void Start(const BlobRequest& b, const std::string& peer);
  void Error(const std::string& peer, const std::string& why);

  FetcherOptions o_;
  struct Inbox {
    std::mutex mu;
    std::deque<Arrival> arrivals;
    bool closed = false;
  };
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::set<std::string> in_flight_;                     // sha256
  std::map<std::string, std::set<std::string>> tried_;  // sha256 -> peers that failed it
  std::map<std::string, int64_t> retry_at_;             // sha256 -> steady ms
  FetcherStats stats_;
};

}  // namespace peerstack::release
