// The release fetcher's own speed against a real node, for bench/rollout/run.sh: fetches one
// blob N times with core/release's BlobFetcher (over transport::Transport, as a node does),
// each time into an empty store, and prints per round the exchange time (request sent to last
// byte read) and the whole fetch (then hash + temp file + fsync + rename), in ms.
//
//   fetch_bench URL_OF_NODE SHA256 SIZE ROUNDS
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>

#include "base/clock.h"
#include "release/fetcher.h"
#include "store/blob_store.h"
#include "transport/transport.h"

int main(int argc, char** argv) {
  using namespace peerstack;
  if (argc != 5) {
    std::fprintf(stderr, "usage: fetch_bench URL SHA256 SIZE ROUNDS\n");
    return 2;
  }
  const std::string url = argv[1], sha = argv[2];
  const int64_t size = std::atoll(argv[3]);
  const int rounds = std::atoi(argv[4]);
  SystemClock clock;
  transport::TransportOptions to;
  to.clock = &clock;
  transport::Transport transport(std::move(to));
  transport.Start();
  char tmpl[] = "/tmp/peerstack-fetch-bench.XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  int status = 0;
  for (int i = 0; i < rounds; ++i) {
    const std::string blobs_dir = dir + "/" + std::to_string(i);
    store::BlobStore blobs(blobs_dir);
    release::FetcherOptions fo;
    fo.transport = &transport;
    fo.blobs = &blobs;
    fo.clock = &clock;
    fo.wake = [&] {
      std::lock_guard<std::mutex> lock(mu);
      woken = true;
      cv.notify_all();
    };
    release::BlobFetcher fetcher(std::move(fo));
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::seconds(10);
    bool done = false;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      done = fetcher.Pump({{sha, size}}, {url});
      if (done) break;
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_until(lock, deadline, [&] { return woken; });
      woken = false;
    }
    const double whole = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const release::FetcherStats st = fetcher.stats();
    if (!done || st.fetched != 1) {
      std::fprintf(stderr, "round %d: not fetched (%s)\n", i, st.errors.empty() ? "timeout" : st.errors.back().c_str());
      status = 1;
      break;
    }
    std::printf("%.3f %.3f\n", st.last_transfer_ms, whole);
    std::filesystem::remove_all(blobs_dir);
  }
  transport.Stop();
  std::filesystem::remove_all(dir);
  return status;
}
