#include "injectors/network/ReleaseQueue.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace chaosd::nfq {
namespace {

// The kernel's ids wrap at 2^32 and its batch verdict compares them modulo; near the wrap
// the numeric order of held_ would not be the kernel's, so no batches there.
constexpr uint32_t kWrapGuard = 0xF0000000u;

}  // namespace

bool ReleaseQueue::push(uint32_t id, TimePoint due) {
  if (heap_.size() >= capacity_) return false;
  heap_.push_back(Entry{due, seq_++, id});
  std::push_heap(heap_.begin(), heap_.end(), [](const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
  });
  held_.insert(id);
  return true;
}

std::optional<TimePoint> ReleaseQueue::nextDue() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due;
}

ReleaseQueue::Release ReleaseQueue::popDue(TimePoint now) {
  std::vector<uint32_t> ids;
  auto later = [](const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
  };
  while (!heap_.empty() && heap_.front().due <= now) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    ids.push_back(heap_.back().id);
    held_.erase(heap_.back().id);
    heap_.pop_back();
  }
  return finish(std::move(ids));
}

ReleaseQueue::Release ReleaseQueue::popAll() {
  std::sort(heap_.begin(), heap_.end(), [](const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due < b.due : a.seq < b.seq;
  });
  std::vector<uint32_t> ids;
  ids.reserve(heap_.size());
  for (const Entry& e : heap_) ids.push_back(e.id);
  heap_.clear();
  held_.clear();
  return finish(std::move(ids));
}

ReleaseQueue::Release ReleaseQueue::finish(std::vector<uint32_t> ids) {
  Release out;
  if (ids.size() >= 2) {
    const auto hi = std::max_element(ids.begin(), ids.end());
    const bool nearWrap = *hi >= kWrapGuard || (!held_.empty() && *held_.rbegin() >= kWrapGuard);
    // Every id up to the largest released one is released: nothing still held is below it.
    if (!nearWrap && (held_.empty() || *held_.begin() > *hi)) out.batchUpTo = *hi;
  }
  out.ids = std::move(ids);
  return out;
}

Result<JitterShape> parseJitterShape(const std::string& name) {
  if (name.empty() || name == "uniform") return JitterShape::kUniform;
  if (name == "normal") return JitterShape::kNormal;
  if (name == "pareto") return JitterShape::kPareto;
  return Error(ErrorCode::kUnsupported, "distribution '" + name +
                                            "' is not available with the NFQUEUE backend (uniform, "
                                            "normal, pareto)");
}

std::chrono::nanoseconds DelaySampler::next() {
  if (jitter_.count() == 0) return delay_;
  const auto j = static_cast<double>(jitter_.count());
  double offset = 0;
  switch (shape_) {
    case JitterShape::kUniform:
      offset = std::uniform_real_distribution<double>(-j, j)(rng_);
      break;
    case JitterShape::kNormal:
      offset = std::normal_distribution<double>(0.0, j)(rng_);
      break;
    case JitterShape::kPareto: {
      // Pareto with shape 3 (finite variance; scale 1: mean 1.5, sd sqrt(3)/2), standardised,
      // so jitter is its standard deviation as it is for the other shapes.
      const double u =
          std::uniform_real_distribution<double>(std::numeric_limits<double>::min(), 1.0)(rng_);
      offset = (std::pow(u, -1.0 / 3.0) - 1.5) / (std::sqrt(3.0) / 2.0) * j;
      break;
    }
  }
  const double total = static_cast<double>(delay_.count()) + offset;
  return std::chrono::nanoseconds(total <= 0 ? 0 : static_cast<int64_t>(std::llround(total)));
}

}  // namespace chaosd::nfq
