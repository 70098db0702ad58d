#include "release/rollout.h"

#include <algorithm>
#include <cstdint>

#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::release {

int64_t StageOf(const std::string& member_key, const std::string& release_event, int64_t stages) {
  if (stages <= 1) return 0;
  const std::string digest = crypto::Sha256Hex(member_key + release_event);
  uint64_t v = 0;
  for (size_t i = 0; i < 16; ++i) {
    const char c = digest[i];
    v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return static_cast<int64_t>(v % static_cast<uint64_t>(stages));
}

bool RolloutView::Started(int64_t stage, int64_t now_ms) const {
  if (halted || stage < 0 || stage >= static_cast<int64_t>(stage_start_ms.size())) return false;
  const int64_t at = stage_start_ms[static_cast<size_t>(stage)];
  return at >= 0 && at <= now_ms;
}

int64_t RolloutView::OpenStages(int64_t now_ms) const {
  int64_t k = 0;
  while (k < static_cast<int64_t>(stage_start_ms.size()) && Started(k, now_ms)) ++k;
  return k;
}

RolloutView Evaluate(const protocol::RolloutPolicy& policy, const std::string& release_event,
                     int64_t release_time_ms, const std::vector<protocol::Member>& members,
                     const std::map<std::string, protocol::NetworkState::Report>& reports) {
  RolloutView v;
  const int64_t stages = std::max<int64_t>(1, policy.stages);
  std::vector<std::vector<int64_t>> healthy_times(static_cast<size_t>(stages));
  v.stage_size.assign(static_cast<size_t>(stages), 0);
  for (const protocol::Member& m : members) {
    const auto k = static_cast<size_t>(StageOf(m.key, release_event, stages));
    const bool counted = m.joined_ms <= release_time_ms;  // in the stage's size
    if (counted) ++v.stage_size[k];
    auto it = reports.find(m.key);
    if (it == reports.end()) continue;
    if (it->second.status == "failed") {
      ++v.failures;
    } else if (it->second.status == "healthy") {
      ++v.healthy;
      // A report's time is its author's clock: never before the release itself.
      if (counted) healthy_times[k].push_back(std::max(it->second.time_ms, release_time_ms));
    }
  }
  v.halted = v.failures >= policy.max_failures;
  v.stage_start_ms.assign(static_cast<size_t>(stages), -1);
  v.stage_start_ms[0] = release_time_ms;
  for (size_t k = 1; k < static_cast<size_t>(stages); ++k) {
    const int64_t size = v.stage_size[k - 1];
    int64_t ready = v.stage_start_ms[k - 1];
    if (size > 0) {
      const auto need = static_cast<size_t>((policy.healthy_percent * size + 99) / 100);
      auto& times = healthy_times[k - 1];
      if (times.size() < need) break;
      std::sort(times.begin(), times.end());
      const int64_t at = times[need - 1];
      const int64_t soaked = at > INT64_MAX - policy.soak_ms ? INT64_MAX : at + policy.soak_ms;
      ready = std::max(ready, soaked);
    }
    v.stage_start_ms[k] = ready;
  }
  return v;
}

Target Decide(const RolloutView& view, bool is_member, int64_t my_stage, bool running_accepted,
              int64_t now_ms) {
  if (view.halted) return Target::kPrevious;
  if (!is_member) return running_accepted ? Target::kKeep : Target::kCurrent;
  if (view.Started(my_stage, now_ms)) return Target::kCurrent;
  return running_accepted ? Target::kKeep : Target::kCurrent;
}

const char* ToString(Target t) {
  switch (t) {
    case Target::kCurrent:
      return "current";
    case Target::kPrevious:
      return "previous";
    case Target::kKeep:
      return "keep";
  }
  return "?";
}

}  // namespace peerstack::release
