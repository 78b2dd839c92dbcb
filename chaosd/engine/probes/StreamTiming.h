#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

// What a streamed HTTP response showed over time: when its body began, when each event ended,
// and the figures an LLM serving SLO is written in (time to first token, time per output
// token, tokens per second). No I/O: the HTTP client feeds it bytes as they arrive.
namespace chaosd {

struct StreamTiming {
  using Duration = std::chrono::nanoseconds;
  // The most gaps kept for one response (a 1 MiB body of one-byte events has a million);
  // events beyond it are still counted and timed for the rate.
  static constexpr size_t kMaxGaps = 65536;

  bool eventStream = false;            // text/event-stream: events are SSE events, else lines
  std::optional<Duration> firstByte;   // from the request's start to the first body byte
  std::optional<Duration> firstEvent;  // ... to the end of the first complete event (TTFT)
  std::optional<Duration> lastEvent;   // ... to the end of the last one
  size_t events = 0;
  std::vector<Duration> gaps;  // between consecutive events' ends (TPOT)

  // Events per second after the first: (events - 1) / (lastEvent - firstEvent); nullopt with
  // fewer than two events or no time between them.
  std::optional<double> eventRate() const;
};

// Splits a body into events as its bytes arrive and times them. An SSE event (text/event-stream)
// ends at a blank line and counts when it held a `data` field (comments and keep-alives do
// not); any other streamed body counts each non-empty line (NDJSON, one token per line), and a
// last line without its newline at the end of the body. Lines may end in LF, CRLF or CR.
class StreamEventSplitter {
 public:
  explicit StreamEventSplitter(bool eventStream) { timing_.eventStream = eventStream; }

  // `bytes` arrived `at` after the request started.
  void feed(std::string_view bytes, StreamTiming::Duration at);
  // The body ended `at` after the start; returns the figures.
  StreamTiming finish(StreamTiming::Duration at);

 private:
  void lineEnded(StreamTiming::Duration at);
  void event(StreamTiming::Duration at);

  StreamTiming timing_;
  size_t lineLength_ = 0;
  char lineStart_[5] = {};  // the first five bytes of the line: "data:" or "data\0"
  bool lastWasCr_ = false;
  bool eventHasData_ = false;
};

}  // namespace chaosd
