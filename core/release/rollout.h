// The staged rollout, as pure functions of the ledger (docs/releases.md, "Staged rollout"):
// every node computes the same answer from the same events, so no controller is needed, and
// the simulator runs exactly this code.
//
//   - A member's stage for a release: the first 8 bytes of sha256(key || release event hash)
//     modulo the policy's stages, so it is fixed, differs between releases, and cannot be
//     chosen by the member without changing its key.
//   - Stage 0 starts with the release event. Stage k starts once healthy_percent of the
//     members of stage k-1 (rounded up; an empty stage passes) reported healthy and the
//     report that made the count is soak_ms old; never before stage k-1 started. Only
//     members admitted before the release event count towards a stage's size, so a member
//     admitted later cannot send a stage that started back to "not started" (it still has a
//     stage, follows it, and its failure reports count).
//   - max_failures failure reports from members halt the rollout: no stage starts any more
//     and every member goes back to the previous release.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/genesis.h"
#include "protocol/release.h"

namespace peerstack::release {

int64_t StageOf(const std::string& member_key, const std::string& release_event, int64_t stages);

struct RolloutView {
  bool halted = false;
  int64_t failures = 0;
  int64_t healthy = 0;
  // stage_start_ms[k]: when stage k started or starts; -1: not decided yet (the stage
  // before has not enough healthy reports).
  std::vector<int64_t> stage_start_ms;
  std::vector<int64_t> stage_size;  // members per stage
  // Has stage k started at now_ms?
  bool Started(int64_t stage, int64_t now_ms) const;
  // The first stage that has not started at now_ms (stages when all have).
  int64_t OpenStages(int64_t now_ms) const;
};

// members: the members now; reports: by member key, for this release.
RolloutView Evaluate(const protocol::RolloutPolicy& policy, const std::string& release_event,
                     int64_t release_time_ms, const std::vector<protocol::Member>& members,
                     const std::map<std::string, protocol::NetworkState::Report>& reports);

// What a node should run. kCurrent: the release in force; kPrevious: the one before (a halted
// rollout); kKeep: what it runs now (its stage has not started). A joiner (not a member)
// whose code is not accepted runs the release in force, or the previous one when halted.
enum class Target { kCurrent, kPrevious, kKeep };
Target Decide(const RolloutView& view, bool is_member, int64_t my_stage, bool running_accepted,
              int64_t now_ms);

const char* ToString(Target t);

}  // namespace peerstack::release
