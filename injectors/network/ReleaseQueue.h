#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chaosd/base/Result.h"

// The timing half of network.delay through NFQUEUE, kept apart from the kernel so it can be
// tested with made-up times: when each held packet is due (DelaySampler), and which packets
// to release at a given time, in release-time order (ReleaseQueue).
namespace chaosd::nfq {

using TimePoint = std::chrono::steady_clock::time_point;

// Packets held by the consumer, by NFQUEUE packet id, in a min-heap keyed by release time
// (ties in arrival order). Bounded: push() refuses beyond the capacity.
class ReleaseQueue {
 public:
  explicit ReleaseQueue(size_t capacity) : capacity_(capacity) {}

  // false when full: the caller accepts the packet at once (and counts it).
  bool push(uint32_t id, TimePoint due);
  // The earliest release time; nullopt when nothing is held.
  std::optional<TimePoint> nextDue() const;

  struct Release {
    std::vector<uint32_t> ids;  // in release-time order
    // Set when the released ids are every held id up to this one, so one batch verdict
    // (NFQNL_MSG_VERDICT_BATCH: "all ids <= N") answers them all.
    std::optional<uint32_t> batchUpTo;
  };
  // Removes and returns every packet due at `now` or before.
  Release popDue(TimePoint now);
  // Removes and returns everything held.
  Release popAll();

  size_t size() const { return heap_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    TimePoint due;
    uint64_t seq;
    uint32_t id;
  };
  Release finish(std::vector<uint32_t> ids);

  size_t capacity_;
  std::vector<Entry> heap_;  // std::push_heap/pop_heap with a greater-than comparison
  std::set<uint32_t> held_;  // the same ids, ordered, for the batch check
  uint64_t seq_ = 0;
};

enum class JitterShape { kUniform, kNormal, kPareto };
Result<JitterShape> parseJitterShape(const std::string& name);

// The delay of each packet: `delay` plus jitter drawn from the shape (uniform: +/- jitter;
// normal: standard deviation jitter; pareto: netem's heavy tail, scaled to standard deviation
// jitter), never below zero. Seeded, so a run can be replayed.
class DelaySampler {
 public:
  DelaySampler(std::chrono::nanoseconds delay, std::chrono::nanoseconds jitter, JitterShape shape,
               uint64_t seed)
      : delay_(delay), jitter_(jitter), shape_(shape), rng_(seed) {}
  std::chrono::nanoseconds next();

 private:
  std::chrono::nanoseconds delay_;
  std::chrono::nanoseconds jitter_;
  JitterShape shape_;
  std::mt19937_64 rng_;
};

}  // namespace chaosd::nfq
