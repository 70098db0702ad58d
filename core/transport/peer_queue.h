// The outgoing queue of one peer, as pure policy: no sockets, no clock (the caller passes the
// time), so the transport and the simulator apply the same rules.
//
//   - Bounded: at most `capacity` messages wait. Messages that must arrive (joins,
//     challenges, approvals, events) go ahead of those that may be dropped (probes, syncs);
//     a full queue drops its oldest droppable message to make room, and refuses the new
//     message only when everything waiting must arrive.
//   - Superseded: a message with a `supersedes` key replaces the one waiting with the same
//     key (a newer sync makes the older one pointless).
//   - In flight: at most `in_flight` at once; one while the peer is failing.
//   - Backoff: after a failure (timeout, refused connection) the peer gets nothing until the
//     backoff ends (doubling from backoff_min_ms to backoff_max_ms), then one message at a
//     time until one succeeds. Hearing from the peer (any message it sent us) ends the
//     backoff: it is answering again.
//   - Expiry: a message that waited longer than max_age_ms is dropped (the protocol retries
//     what matters: joins back off and ask again, anti-entropy repairs lost events).
// Not thread-safe: the owner's lock guards it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace peerstack::transport {

struct QueueLimits {
  size_t capacity = 128;
  size_t in_flight = 2;
  int64_t max_age_ms = 30000;
  int64_t backoff_min_ms = 1000;
  int64_t backoff_max_ms = 30000;
};

// What waits in a queue. Payload is the caller's (the transport's wire message, the
// simulator's envelope).
template <typename Payload>
struct Queued {
  Payload payload;
  bool droppable = false;
  std::string supersedes;  // empty: never replaced
  int64_t queued_ms = 0;
};

enum class Pushed { kQueued, kReplaced, kDisplaced, kRefused };

struct QueueCounters {
  uint64_t sent = 0;     // finished with success
  uint64_t failed = 0;   // finished with an error
  uint64_t dropped = 0;  // displaced, refused, superseded or expired: never sent
};

template <typename Payload>
class PeerQueue {
 public:
  explicit PeerQueue(QueueLimits limits = {}) : limits_(limits) {}

  Pushed Push(Payload payload, bool droppable, std::string supersedes, int64_t now_ms) {
    Queued<Payload> q{std::move(payload), droppable, std::move(supersedes), now_ms};
    if (!q.supersedes.empty()) {
      for (auto* list : {&must_, &may_}) {
        for (auto& old : *list) {
          if (old.supersedes == q.supersedes) {
            old = std::move(q);
            ++counters_.dropped;
            return Pushed::kReplaced;
          }
        }
      }
    }
    Pushed result = Pushed::kQueued;
    if (size() >= limits_.capacity) {
      if (may_.empty()) {
        ++counters_.dropped;
        return Pushed::kRefused;
      }
      may_.pop_front();  // the oldest droppable one makes room
      ++counters_.dropped;
      result = Pushed::kDisplaced;
    }
    (q.droppable ? may_ : must_).push_back(std::move(q));
    return result;
  }

  // The next message to send at now_ms, if the peer may take one (counted in flight).
  std::optional<Queued<Payload>> Take(int64_t now_ms) {
    if (in_flight_ >= (failures_ > 0 ? 1 : limits_.in_flight)) return std::nullopt;
    if (failures_ > 0 && now_ms < retry_at_ms_) return std::nullopt;
    auto* list = !must_.empty() ? &must_ : !may_.empty() ? &may_ : nullptr;
    if (!list) return std::nullopt;
    Queued<Payload> q = std::move(list->front());
    list->pop_front();
    ++in_flight_;
    return q;
  }

  // A message taken with Take() finished: ok, or failed (the peer backs off).
  void Done(bool ok, int64_t now_ms) {
    if (in_flight_ > 0) --in_flight_;
    if (ok) {
      ++counters_.sent;
      failures_ = 0;
      return;
    }
    ++counters_.failed;
    ++failures_;
    int64_t backoff = limits_.backoff_min_ms;
    for (int i = 1; i < failures_ && backoff < limits_.backoff_max_ms; ++i) backoff *= 2;
    retry_at_ms_ = now_ms + std::min(backoff, limits_.backoff_max_ms);
  }

  // The peer was heard from: whatever backoff it had ends.
  void Heard() { failures_ = 0; }

  // Drops messages that waited too long; returns how many. (Not only from the front: a
  // superseding message keeps its place in line with a newer time.)
  size_t Expire(int64_t now_ms) {
    size_t n = 0;
    for (auto* list : {&must_, &may_}) {
      const size_t before = list->size();
      std::erase_if(*list, [&](const Queued<Payload>& q) {
        return now_ms - q.queued_ms > limits_.max_age_ms;
      });
      n += before - list->size();
    }
    counters_.dropped += n;
    return n;
  }

  size_t size() const { return must_.size() + may_.size(); }
  size_t in_flight() const { return in_flight_; }
  bool idle() const { return size() == 0 && in_flight_ == 0; }
  bool backing_off(int64_t now_ms) const { return failures_ > 0 && now_ms < retry_at_ms_; }
  // When a failing peer may take its next message (meaningful while failures() > 0).
  int64_t retry_at_ms() const { return retry_at_ms_; }
  int failures() const { return failures_; }
  const QueueCounters& counters() const { return counters_; }
  const QueueLimits& limits() const { return limits_; }

 private:
  QueueLimits limits_;
  std::deque<Queued<Payload>> must_, may_;
  size_t in_flight_ = 0;
  int failures_ = 0;
  int64_t retry_at_ms_ = 0;
  QueueCounters counters_;
};

}  // namespace peerstack::transport
