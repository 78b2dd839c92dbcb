#include "chaosd/app/daemon/RunEvents.h"

namespace chaosd::daemon {

void RunEvents::append(nlohmann::json event) {
  {
    std::lock_guard lock(mu_);
    if (ended_) return;
    events_.push_back({next_++, std::move(event)});
    while (events_.size() > capacity_) events_.pop_front();
  }
  cv_.notify_all();
}

void RunEvents::end(const std::string& outcome) {
  append({{"type", "end"}, {"outcome", outcome}});
  std::lock_guard lock(mu_);
  ended_ = true;
}

std::vector<RunEvents::Event> RunEvents::after(uint64_t afterSeq, std::chrono::milliseconds timeout,
                                               size_t max) const {
  std::unique_lock lock(mu_);
  auto fresh = [&] { return !events_.empty() && events_.back().seq > afterSeq; };
  if (!fresh() && !ended_) cv_.wait_for(lock, timeout, [&] { return fresh() || ended_; });
  std::vector<Event> out;
  if (events_.empty()) return out;
  // The numbers are consecutive, so the first wanted event is found by subtraction.
  const uint64_t first = events_.front().seq;
  for (size_t i = afterSeq >= first ? afterSeq - first + 1 : 0;
       i < events_.size() && out.size() < max; ++i) {
    out.push_back(events_[i]);
  }
  return out;
}

bool RunEvents::ended() const {
  std::lock_guard lock(mu_);
  return ended_;
}

uint64_t RunEvents::lastSeq() const {
  std::lock_guard lock(mu_);
  return next_ - 1;
}

}  // namespace chaosd::daemon
