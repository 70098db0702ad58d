#include "base/metrics.h"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace peerstack::metrics {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[32];  // the shortest text that reads back as v, whatever the process's locale
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// A label value: backslash, double quote and newline escaped.
std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string LabelText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    out += (i ? "," : "") + labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  return out + "}";
}

}  // namespace

AtomicHistogram::AtomicHistogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  if (bounds_.size() > kMaxBuckets) bounds_.resize(kMaxBuckets);
}

void AtomicHistogram::Observe(double seconds) {
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e6), std::memory_order_relaxed);
}

AtomicHistogram::Snapshot AtomicHistogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

void Writer::Family(std::string_view name, std::string_view type, std::string_view help) {
  if (std::find(families_.begin(), families_.end(), name) != families_.end()) return;
  families_.emplace_back(name);
  std::string h;
  for (char c : help)
    h += c == '\n' ? std::string("\\n") : c == '\\' ? std::string("\\\\") : std::string(1, c);
  out_ += "# HELP " + std::string(name) + " " + h + "\n# TYPE " + std::string(name) + " " +
          std::string(type) + "\n";
}

void Writer::Sample(std::string_view name, const Labels& labels, double value) {
  out_ += std::string(name) + LabelText(labels) + " " + Number(value) + "\n";
}

void Writer::Gauge(std::string_view name, std::string_view help, double value,
                   const Labels& labels) {
  Family(name, "gauge", help);
  Sample(name, labels, value);
}

void Writer::Counter(std::string_view name, std::string_view help, double value,
                     const Labels& labels) {
  Family(name, "counter", help);
  Sample(name, labels, value);
}

void Writer::Histogram(std::string_view name, const AtomicHistogram::Snapshot& h,
                       const Labels& labels) {
  const std::string n(name);
  for (size_t i = 0; i <= h.bounds.size(); ++i) {
    Labels with = labels;
    with.emplace_back("le", i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf");
    Sample(n + "_bucket", with, static_cast<double>(h.cumulative[i]));
  }
  Sample(n + "_sum", labels, h.sum);
  Sample(n + "_count", labels, static_cast<double>(h.count));
}

void WriteProcess(Writer& w) {
  std::ifstream status("/proc/self/status");
  std::string line;
  double rss = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) * 1024;  // "kB"
  }
  double fds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d)) fds += e->d_name[0] != '.';
    ::closedir(d);
    fds -= 1;  // the directory's own descriptor
  }
  w.Gauge("peerstack_process_resident_memory_bytes", "Resident memory of the node's process.", rss);
  w.Gauge("peerstack_process_open_fds", "Open file descriptors of the node's process.", fds);
}

}  // namespace peerstack::metrics
