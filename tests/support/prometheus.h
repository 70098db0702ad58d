// A strict reader of the Prometheus text exposition format (0.0.4), for tests of GET /metrics:
// the grammar (names, labels and their escapes, values), TYPE before samples and once per
// family, a family's samples together, counters named *_total, histograms with increasing `le`
// buckets, cumulative counts and a +Inf bucket equal to _count.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace peerstack::test {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromPage {
  std::map<std::string, std::string> types;  // family -> type
  std::vector<PromSample> samples;
  // The first sample named name whose labels include these; nullptr if none.
  const PromSample* Find(const std::string& name,
                         const std::map<std::string, std::string>& labels = {}) const;
};

// Parses text; on a violation returns false with the line and what is wrong in *error.
bool ParsePrometheus(const std::string& text, PromPage* page, std::string* error);

}  // namespace peerstack::test
