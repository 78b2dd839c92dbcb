#include "chaosd/engine/probes/StreamTiming.h"

#include <cstring>

namespace chaosd {

std::optional<double> StreamTiming::eventRate() const {
  if (events < 2 || !firstEvent || !lastEvent || *lastEvent <= *firstEvent) return std::nullopt;
  const double seconds = std::chrono::duration<double>(*lastEvent - *firstEvent).count();
  return static_cast<double>(events - 1) / seconds;
}

void StreamEventSplitter::feed(std::string_view bytes, StreamTiming::Duration at) {
  if (bytes.empty()) return;
  if (!timing_.firstByte) timing_.firstByte = at;
  for (const char c : bytes) {
    if (c == '\n' && lastWasCr_) {  // the LF of a CRLF: the line ended at the CR
      lastWasCr_ = false;
      continue;
    }
    lastWasCr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      lineEnded(at);
      continue;
    }
    if (lineLength_ < sizeof lineStart_) lineStart_[lineLength_] = c;
    ++lineLength_;
  }
}

void StreamEventSplitter::lineEnded(StreamTiming::Duration at) {
  const size_t length = lineLength_;
  lineLength_ = 0;
  if (!timing_.eventStream) {
    if (length > 0) event(at);
    return;
  }
  if (length == 0) {  // a blank line dispatches the event
    if (eventHasData_) event(at);
    eventHasData_ = false;
    return;
  }
  // The field name is what precedes the first ':' (a line without one is all name).
  const bool data = length >= 4 && std::memcmp(lineStart_, "data", 4) == 0 &&
                    (length == 4 || lineStart_[4] == ':');
  eventHasData_ = eventHasData_ || data;
}

void StreamEventSplitter::event(StreamTiming::Duration at) {
  StreamTiming& t = timing_;
  if (t.lastEvent && t.gaps.size() < StreamTiming::kMaxGaps) t.gaps.push_back(at - *t.lastEvent);
  if (!t.firstEvent) t.firstEvent = at;
  t.lastEvent = at;
  ++t.events;
}

StreamTiming StreamEventSplitter::finish(StreamTiming::Duration at) {
  // An unterminated last line of a line stream is complete when the body is; an SSE event
  // without its blank line is not dispatched (the spec discards it).
  if (!timing_.eventStream && lineLength_ > 0) event(at);
  lineLength_ = 0;
  return timing_;
}

}  // namespace chaosd
