// Join-to-converged latency with real peerstack processes on loopback. For each N, a network
// of N-1 nodes is built (joins 8 at a time, each batch waited for) and left to settle (until
// no node has a checkpoint due: with the daemon's defaults, a network holding 32 events or more
// makes one after 10 s of quiet, as an established network has), then the clock starts, node N
// is launched with --join, and it stops when every node's admin /status reports N members with one
// state hash (each node polled until it shows N members, then no more: the time is when the
// last one did). Repeated on fresh networks; prints p50, p90 and max per N.
//   join_bench [--reps R] [N ...]      (default: R=5, N = 3 5 10)
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "support/test_node.h"

using namespace peerstack;
using Clock = std::chrono::steady_clock;

namespace {

struct Net {
  test::TempDir dir;
  std::vector<std::unique_ptr<test::TestNode>> nodes;
  std::vector<uint16_t> ports;

  bool Add(bool join) {
    const size_t i = nodes.size();
    ports.push_back(test::FreePort());
    const std::string home = dir.Sub("n" + std::to_string(i));
    ::mkdir(home.c_str(), 0755);
    std::vector<std::string> args{"--port",      std::to_string(ports.back()),
                                  "--plugins",   dir.Sub("plugins"),
                                  "--log-level", "warn"};
    if (join) args.insert(args.end(), {"--join", "http://127.0.0.1:" + std::to_string(ports[0])});
    nodes.push_back(std::make_unique<test::TestNode>(home, args));
    return nodes.back()->Start();
  }

  // Polls only the nodes that do not show `members` yet (a node that does keeps showing it,
  // the state being final), so that one slow round over every node does not add to the
  // figure; true once all show it with one state hash. `at` becomes when the last did.
  bool ConvergedAt(size_t members, std::vector<std::string>* hashes, Clock::time_point* at) const {
    hashes->resize(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!(*hashes)[i].empty()) continue;
      const json::Value st = nodes[i]->Status();
      const json::Value* net = st.is_object() ? st.find("network") : nullptr;
      if (!net || *net->find_int("members") != static_cast<int64_t>(members)) return false;
      (*hashes)[i] = *net->find_string("state_hash");
      *at = Clock::now();
    }
    for (const std::string& h : *hashes) {
      if (h != hashes->front()) {
        hashes->assign(nodes.size(), "");  // not one state yet: look again
        return false;
      }
    }
    return true;
  }

  // Every node holds fewer events above its checkpoint than make one due when quiet.
  bool Settled() const {
    for (const auto& n : nodes) {
      const json::Value st = n->Status();
      const json::Value* net = st.is_object() ? st.find("network") : nullptr;
      const json::Value* c = net ? net->find("checkpoint") : nullptr;
      const int64_t* above = c ? c->find_int("events_above") : nullptr;
      const int64_t* quiet = c ? c->find_int("quiet_events") : nullptr;
      if (!above || !quiet || *above >= *quiet) return false;
    }
    return true;
  }

  bool Converged(size_t members) const {
    std::string hash;
    for (const auto& n : nodes) {
      const json::Value st = n->Status();
      if (!st.is_object()) return false;
      const json::Value* net = st.find("network");
      if (*net->find_int("members") != static_cast<int64_t>(members)) return false;
      const std::string h = *net->find_string("state_hash");
      if (!hash.empty() && h != hash) return false;
      hash = h;
    }
    return true;
  }
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  std::vector<size_t> sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      sizes.push_back(static_cast<size_t>(std::atol(argv[i])));
    }
  }
  if (sizes.empty()) sizes = {3, 5, 10};
  std::printf(
      "| N | p50 ms | p90 ms | max ms | admitted p50 ms | runs |\n|---|---|---|---|---|---|\n");
  for (size_t n : sizes) {
    std::vector<double> ms, admitted_ms;
    for (int r = 0; r < reps; ++r) {
      Net net;
      ::mkdir(net.dir.Sub("plugins").c_str(), 0755);
      // The network before the measured join: its nodes join 8 at a time (concurrent joins
      // are what the protocol handles anyway), each batch waited for.
      bool ok = net.Add(false);
      for (size_t i = 1; ok && i + 1 < n;) {
        for (size_t batch = 0; ok && batch < 8 && i + 1 < n; ++batch, ++i) ok = net.Add(true);
        ok = ok && test::WaitFor([&] { return net.Converged(i); }, std::chrono::seconds(60));
      }
      ok = ok && test::WaitFor([&] { return net.Settled() && net.Converged(n - 1); },
                               std::chrono::seconds(90));
      if (!ok) {
        std::fprintf(stderr, "N=%zu: could not build the network\n", n);
        return 1;
      }
      const auto start = Clock::now();
      // First the joiner itself holding N members (admitted), then every node.
      auto admitted = [&] {
        const json::Value st = net.nodes.back()->Status();
        const json::Value* nw = st.is_object() ? st.find("network") : nullptr;
        const int64_t* m = nw ? nw->find_int("members") : nullptr;
        return m && *m == static_cast<int64_t>(n);
      };
      if (!net.Add(true) || !test::WaitFor(admitted, std::chrono::seconds(30))) {
        std::fprintf(stderr, "N=%zu: the joiner was not admitted\n", n);
        return 1;
      }
      admitted_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      std::vector<std::string> hashes;
      Clock::time_point last = Clock::now();
      if (!test::WaitFor([&] { return net.ConvergedAt(n, &hashes, &last); },
                         std::chrono::seconds(30))) {
        std::fprintf(stderr, "N=%zu: the last join did not converge\n", n);
        return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(last - start).count());
    }
    std::printf("| %zu | %.0f | %.0f | %.0f | %.0f | %d |\n", n, Percentile(ms, 0.5),
                Percentile(ms, 0.9), *std::max_element(ms.begin(), ms.end()),
                Percentile(admitted_ms, 0.5), reps);
    std::fflush(stdout);
  }
  return 0;
}
