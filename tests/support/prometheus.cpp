#include "support/prometheus.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace peerstack::test {
namespace {

bool NameChar(char c, bool first, bool colon) {
  const bool alpha =
      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

bool ReadName(const std::string& s, size_t* i, bool colon, std::string* out) {
  const size_t start = *i;
  while (*i < s.size() && NameChar(s[*i], *i == start, colon)) ++*i;
  *out = s.substr(start, *i - start);
  return !out->empty();
}

bool ReadValue(const std::string& text, double* v) {
  if (text == "+Inf") return *v = INFINITY, true;
  if (text == "-Inf") return *v = -INFINITY, true;
  if (text == "NaN") return *v = NAN, true;
  char* end = nullptr;
  *v = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

// The family a sample belongs to: histograms' _bucket, _sum and _count belong to the base name.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx(suffix);
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      const std::string base = name.substr(0, name.size() - sfx.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

}  // namespace

const PromSample* PromPage::Find(const std::string& name,
                                 const std::map<std::string, std::string>& labels) const {
  for (const PromSample& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      all &= it != s.labels.end() && it->second == v;
    }
    if (all) return &s;
  }
  return nullptr;
}

bool ParsePrometheus(const std::string& text, PromPage* page, std::string* error) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  std::set<std::string> done;  // families whose samples ended
  std::string current;         // the family of the last sample
  auto fail = [&](const std::string& why) {
    *error = "line " + std::to_string(n) + ": " + why + ": " + line;
    return false;
  };
  if (!text.empty() && text.back() != '\n') {
    *error = "the page does not end with a newline";
    return false;
  }
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // a comment
      size_t i = 0;
      std::string parsed;
      if (!ReadName(name, &i, true, &parsed) || i != name.size()) return fail("bad metric name");
      if (kind == "TYPE") {
        std::string type;
        words >> type;
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped")
          return fail("unknown type");
        if (page->types.count(name)) return fail("a second TYPE for " + name);
        if (done.count(name) || current == name) return fail("TYPE after samples of " + name);
        if (type == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
          return fail("a counter's name should end in _total");
        page->types[name] = type;
      }
      continue;
    }
    PromSample s;
    size_t i = 0;
    if (!ReadName(line, &i, true, &s.name)) return fail("bad metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string label;
        if (!ReadName(line, &i, false, &label)) return fail("bad label name");
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
          return fail("a label needs =\"value\"");
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size()) return fail("a dangling escape");
            const char e = line[i + 1];
            if (e == 'n')
              value += '\n';
            else if (e == '\\' || e == '"')
              value += e;
            else
              return fail("an unknown escape");
            i += 2;
          } else {
            value += line[i++];
          }
        }
        if (i >= line.size()) return fail("an unterminated label value");
        ++i;
        if (s.labels.count(label)) return fail("label " + label + " twice");
        s.labels[label] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return fail("an unterminated label set");
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') return fail("a space before the value");
    std::istringstream rest(line.substr(i + 1));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (!ReadValue(value, &s.value)) return fail("bad value");
    if (!extra.empty()) return fail("more than a value and a timestamp");
    const std::string family = FamilyOf(s.name, page->types);
    if (!page->types.count(family)) return fail("a sample without a TYPE");
    if (family != current) {
      if (done.count(family)) return fail("samples of " + family + " are not together");
      if (!current.empty()) done.insert(current);
      current = family;
    }
    page->samples.push_back(std::move(s));
  }
  // Histograms: increasing bounds, cumulative counts, +Inf = _count, per label set.
  for (const auto& [family, type] : page->types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> series;
    std::map<std::map<std::string, std::string>, double> counts;
    for (const PromSample& s : page->samples) {
      auto labels = s.labels;
      if (s.name == family + "_bucket") {
        auto le = labels.find("le");
        double bound = 0;
        if (le == labels.end() || !ReadValue(le->second, &bound)) {
          *error = family + ": a bucket without a readable le";
          return false;
        }
        labels.erase("le");
        series[labels].push_back({bound, s.value});
      } else if (s.name == family + "_count") {
        counts[labels] = s.value;
      }
    }
    for (const auto& [labels, buckets] : series) {
      for (size_t k = 1; k < buckets.size(); ++k) {
        if (!(buckets[k].first > buckets[k - 1].first) ||
            buckets[k].second < buckets[k - 1].second) {
          *error = family + ": buckets not increasing or counts not cumulative";
          return false;
        }
      }
      if (buckets.empty() || !std::isinf(buckets.back().first) || !counts.count(labels) ||
          counts[labels] != buckets.back().second) {
        *error = family + ": no +Inf bucket equal to _count";
        return false;
      }
    }
  }
  return true;
}

}  // namespace peerstack::test
