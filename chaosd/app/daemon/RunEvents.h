#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// What happens in one run, as a numbered feed of JSON events for the web console's live view
// (Server-Sent Events): phases beginning and ending with their verdicts, faults applied and
// reverted, probe samples, messages, and the end with its outcome. The engine's observer
// appends on the run's thread; any number of readers wait for events after the one they saw.
// Bounded: the oldest events are dropped past `capacity` (a reader that falls behind sees a
// gap in the numbers, never a block of the run).
namespace chaosd::daemon {

class RunEvents {
 public:
  explicit RunEvents(size_t capacity = 20000) : capacity_(capacity) {}

  struct Event {
    uint64_t seq = 0;  // 1, 2, ... in order of append
    nlohmann::json data;
  };

  // Appends one event ({"type": ...}); wakes the readers.
  void append(nlohmann::json event);
  // The last event: {"type": "end", "outcome": ...}. Nothing is appended after it.
  void end(const std::string& outcome);

  // Events numbered above `after` (at most `max`), waiting up to `timeout` for the first when
  // there is none yet. Empty when the timeout passed, or when the feed ended and nothing is
  // left (see ended()).
  std::vector<Event> after(uint64_t afterSeq, std::chrono::milliseconds timeout,
                           size_t max = 500) const;
  bool ended() const;
  uint64_t lastSeq() const;
  // Wakes every waiting reader now (the console is stopping).
  void wakeAll() const { cv_.notify_all(); }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Event> events_;
  uint64_t next_ = 1;
  bool ended_ = false;
};

}  // namespace chaosd::daemon
