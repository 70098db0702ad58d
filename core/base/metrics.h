// Metrics in the Prometheus text format (version 0.0.4): each module keeps its own figures
// (counters, gauges, an AtomicHistogram) and writes them into one Writer, which renders the
// page GET /metrics answers (docs/operations.md, "Metrics"). Names and units follow Prometheus'
// conventions: `peerstack_` prefix, base units (seconds, bytes), `_total` on counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace peerstack::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A histogram that many threads observe into without a lock; buckets are upper bounds in
// seconds, +Inf implied.
class AtomicHistogram {
 public:
  static constexpr size_t kMaxBuckets = 12;
  explicit AtomicHistogram(std::vector<double> bounds);
  void Observe(double seconds);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::array<std::atomic<uint64_t>, kMaxBuckets + 1> counts_{};
  std::atomic<uint64_t> sum_us_{0};
};

class Writer {
 public:
  // Starts a family: its HELP and TYPE lines ("counter", "gauge", "histogram"), once each.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, double value);
  // Family + one sample.
  void Gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  void Counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  // The samples of a histogram family already started with Family(name, "histogram", ...).
  void Histogram(std::string_view name, const AtomicHistogram::Snapshot& h,
                 const Labels& labels = {});
  const std::string& text() const { return out_; }

 private:
  std::string out_;
  std::vector<std::string> families_;
};

// What the process itself uses: resident memory and open file descriptors (from /proc).
void WriteProcess(Writer& w);

}  // namespace peerstack::metrics
