// Streamed responses: the event splitter on its own, the http probe against a real server with
// known delays (tests/data/http/stream-server.py), the phase figures and checks, and the
// tolerance keys as the parser reads them.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/StreamTiming.h"
#include "chaosd/engine/probes/Verdict.h"
#include "experiments/parser/ExperimentParser.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/ParseErrors.h"
#include "tests/support/PortPrintingServer.h"

namespace chaosd {
namespace {

using Ms = std::chrono::milliseconds;

TEST(StreamEventSplitterTest, SseEventsEndAtABlankLineAndNeedData) {
  StreamEventSplitter split(true);
  split.feed(": open\n\n", Ms(1));  // a comment: the first byte, no event
  split.feed("event: token\ndata: a\n", Ms(100));
  split.feed("\n", Ms(110));                 // the blank line dispatches at 110
  split.feed("data: b\r\n\r\n", Ms(150));    // CRLF lines
  split.feed("data\r\rdata: c\n", Ms(170));  // CR lines; "data" alone is a data field
  split.feed("\n", Ms(190));
  split.feed("data: unfinished\n", Ms(200));  // no blank line before the end: not an event
  const StreamTiming t = split.finish(Ms(210));
  EXPECT_TRUE(t.eventStream);
  EXPECT_EQ(t.firstByte, Ms(1));
  EXPECT_EQ(t.firstEvent, Ms(110));
  EXPECT_EQ(t.events, 4u);  // 110, 150, 170 (the "data" event), 190
  ASSERT_EQ(t.gaps.size(), 3u);
  EXPECT_EQ(t.gaps[0], Ms(40));
  EXPECT_EQ(t.gaps[1], Ms(20));
  EXPECT_EQ(t.gaps[2], Ms(20));
  ASSERT_TRUE(t.eventRate());
  EXPECT_DOUBLE_EQ(*t.eventRate(), 3 / 0.080);  // 3 events after the first in 80 ms
}

TEST(StreamEventSplitterTest, ALineStreamCountsNonEmptyLinesAndAnUnterminatedLast) {
  StreamEventSplitter split(false);
  split.feed("{\"t\":1}\n\n", Ms(50));  // an empty line is no event
  split.feed("{\"t\":2", Ms(60));       // half a line
  split.feed("}\n{\"t\":3}", Ms(80));
  const StreamTiming t = split.finish(Ms(95));
  EXPECT_FALSE(t.eventStream);
  EXPECT_EQ(t.firstByte, Ms(50));
  EXPECT_EQ(t.firstEvent, Ms(50));
  EXPECT_EQ(t.events, 3u);
  EXPECT_EQ(t.lastEvent, Ms(95));  // the last line ended with the body
  ASSERT_EQ(t.gaps.size(), 2u);
  EXPECT_EQ(t.gaps[0], Ms(30));
  EXPECT_EQ(t.gaps[1], Ms(15));
}

TEST(StreamEventSplitterTest, OneEventHasNoRate) {
  StreamEventSplitter split(false);
  split.feed("only\n", Ms(5));
  const StreamTiming t = split.finish(Ms(6));
  EXPECT_EQ(t.events, 1u);
  EXPECT_TRUE(t.gaps.empty());
  EXPECT_FALSE(t.eventRate());
}

ProbeSpec streamSpec(const std::string& url) {
  ProbeSpec spec;
  spec.name = "llm";
  spec.kind = ProbeKind::kHttp;
  spec.http.url = url;
  spec.timeout = std::chrono::seconds(5);
  return spec;
}

std::unique_ptr<Probe> make(const ProbeSpec& spec) {
  auto probe = makeProbe(spec);
  EXPECT_TRUE(probe.ok()) << (probe.ok() ? "" : probe.error().describe());
  return probe.ok() ? std::move(*probe) : nullptr;
}

Duration median(std::vector<Duration> v) {
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

// The server waits 150 ms before the first event and sends five more 40 ms apart: the probe
// measures the first byte at once (a comment sent with the headers), the first event at
// 150 ms, gaps of 40 ms and 25 events per second. Lower bounds are exact (the server cannot be
// early); the upper ones leave room for a loaded machine.
TEST(StreamProbeTest, AnEventStreamShowsItsKnownDelays) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  auto probe = make(streamSpec(server.url("/sse?first=150&gap=40&n=6")));
  const ProbeSample s = probe->sample(Phase::kBefore);
  ASSERT_TRUE(s.ok) << s.detail;
  ASSERT_TRUE(s.stream);
  const StreamTiming& t = *s.stream;
  EXPECT_TRUE(t.eventStream);
  EXPECT_EQ(t.events, 6u) << "comments are not events";
  ASSERT_TRUE(t.firstByte && t.firstEvent);
  EXPECT_LT(*t.firstByte, Ms(100));
  EXPECT_GE(*t.firstEvent, Ms(150));
  EXPECT_LT(*t.firstEvent, Ms(300));
  ASSERT_EQ(t.gaps.size(), 5u);
  EXPECT_GE(median(t.gaps), Ms(30));
  EXPECT_LE(median(t.gaps), Ms(80));
  ASSERT_TRUE(t.eventRate());
  EXPECT_GT(*t.eventRate(), 12.0);
  EXPECT_LT(*t.eventRate(), 30.0);
  EXPECT_NE(s.detail.find("6 events, first after"), std::string::npos) << s.detail;
  EXPECT_GE(s.duration, *t.lastEvent);
}

TEST(StreamProbeTest, AChunkedLineStreamIsTimedByLine) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  auto probe = make(streamSpec(server.url("/lines?first=100&gap=30&n=4")));
  const ProbeSample s = probe->sample(Phase::kBefore);
  ASSERT_TRUE(s.ok) << s.detail;
  ASSERT_TRUE(s.stream);
  EXPECT_FALSE(s.stream->eventStream);
  EXPECT_EQ(s.stream->events, 4u);
  ASSERT_TRUE(s.stream->firstByte);
  EXPECT_GE(*s.stream->firstByte, Ms(100)) << "nothing is sent before the first line";
  EXPECT_EQ(s.stream->firstByte, s.stream->firstEvent);
  EXPECT_EQ(s.detail.substr(0, 20), "status 200, 4 lines,");
}

TEST(StreamProbeTest, APlainAnswerIsNotStreamedAndFailsAStreamTolerance) {
  testing::PortPrintingServer server(testing::streamServerArgv());
  auto spec = streamSpec(server.url("/plain"));
  const ProbeSample plain = make(spec)->sample(Phase::kBefore);
  EXPECT_TRUE(plain.ok) << plain.detail;
  EXPECT_FALSE(plain.stream);

  spec.tolerance.stream.push_back({StreamMetric::kFirstEvent, 95, {CompareOp::kLe, 1e9}});
  const ProbeSample bounded = make(spec)->sample(Phase::kBefore);
  EXPECT_FALSE(bounded.ok);
  EXPECT_EQ(bounded.detail,
            "status 200, the response was not streamed (expected chunked or text/event-stream)");
}

ProbeSample streamed(Ms firstEvent, std::vector<Ms> gaps, bool ok = true) {
  ProbeSample s;
  s.ok = ok;
  StreamTiming t;
  t.firstByte = Ms(1);
  t.firstEvent = firstEvent;
  Duration at = firstEvent;
  t.events = 1;
  for (Ms g : gaps) {
    t.gaps.push_back(g);
    at += g;
    ++t.events;
  }
  t.lastEvent = at;
  s.duration = at + Ms(1);
  s.stream = t;
  return s;
}

TEST(StreamVerdictTest, PercentilesPoolGapsAndCountFailuresAsTheTimeout) {
  ProbeSpec spec = streamSpec("http://127.0.0.1:1/");
  spec.timeout = Ms(1000);
  spec.tolerance.successRate = Comparison{CompareOp::kGe, 0.5};
  spec.tolerance.stream = {{StreamMetric::kFirstEvent, 50, {CompareOp::kLe, 200e6}},
                           {StreamMetric::kFirstEvent, 95, {CompareOp::kLe, 200e6}},
                           {StreamMetric::kEventGap, 99, {CompareOp::kLe, 50e6}},
                           {StreamMetric::kEventRate, 50, {CompareOp::kGe, 20}}};
  std::vector<ProbeSample> samples = {
      streamed(Ms(100), {Ms(20), Ms(20)}),   // 50 events/s
      streamed(Ms(120), {Ms(40), Ms(120)}),  // a 120 ms gap; 2 / 160 ms = 12.5/s
      streamed(Ms(110), {Ms(30)}),           // 33.3/s
  };
  ProbeSample refused;
  refused.ok = false;
  refused.duration = Ms(2);
  samples.push_back(refused);  // first event: the timeout; rate 0

  const PhaseVerdict v = judgePhase(spec, Phase::kDuring, samples);
  ASSERT_TRUE(v.stream);
  const StreamFigures& f = *v.stream;
  EXPECT_EQ(f.streamed, 3u);
  EXPECT_EQ(f.firstEvent.count, 4u);
  EXPECT_EQ(f.firstEvent.p50, 110e6);
  EXPECT_EQ(f.firstEvent.p95, 1000e6);
  EXPECT_EQ(f.eventGap.count, 5u);
  EXPECT_EQ(f.eventGap.p99, 120e6);
  EXPECT_EQ(f.eventRate.count, 4u);
  EXPECT_DOUBLE_EQ(f.eventRate.p50, 12.5);
  ASSERT_EQ(f.checks.size(), 4u);
  EXPECT_TRUE(f.checks[0].held);
  EXPECT_FALSE(f.checks[1].held);
  EXPECT_FALSE(f.checks[2].held);
  EXPECT_FALSE(f.checks[3].held);
  EXPECT_FALSE(v.held);
  ASSERT_EQ(v.reasons.size(), 3u);
  EXPECT_EQ(v.reasons[0], "p95 firstEvent 1s > 200ms");
  EXPECT_EQ(v.reasons[1], "p99 eventGap 120ms > 50ms");
  EXPECT_EQ(v.reasons[2], "p50 eventRate 12.5/s < 20/s");
}

TEST(StreamVerdictTest, NoStreamedSampleFailsABoundAndPlainProbesHaveNoFigures) {
  ProbeSpec spec = streamSpec("http://127.0.0.1:1/");
  ProbeSample plain;
  plain.ok = true;
  plain.duration = Ms(3);
  EXPECT_FALSE(judgePhase(spec, Phase::kBefore, std::vector<ProbeSample>{plain}).stream);

  spec.tolerance.stream = {{StreamMetric::kEventGap, 99, {CompareOp::kLe, 50e6}}};
  const auto v = judgePhase(spec, Phase::kBefore, std::vector<ProbeSample>{streamed(Ms(5), {})});
  EXPECT_FALSE(v.held);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0],
            "p99 eventGap: no sample measured it (no streamed response with two events or more)");
}

ParseResult parse(const std::string& tolerance, const std::string& kind = "http") {
  const std::string probe = kind == "http" ? "http: {url: \"http://127.0.0.1:8000/v1/completions\"}"
                                           : "tcp: {host: 127.0.0.1, port: 8000}";
  const std::string text =
      "apiVersion: chaosd/v1\n"
      "kind: Experiment\n"
      "metadata: {name: stream}\n"
      "steadyState:\n"
      "  probes:\n"
      "    - name: llm\n"
      "      " +
      probe +
      "\n"
      "      tolerance: " +
      tolerance +
      "\n"
      "method: [{name: w, pause: 1s}]\n";
  ParseOptions options;
  options.registry = &testing::builtinFaults();
  return parseExperimentText(text, "exp.yaml", options);
}

using testing::errorsOf;

TEST(StreamToleranceParseTest, ReadsEveryStreamKeyWithPercentiles) {
  auto r = parse(
      "{firstByte: {p99: \"< 1s\"}, firstEvent: {p95: \"<= 500ms\"}, eventGap: {p99: "
      "\"<= 80ms\"}, eventRate: {p5: \">= 20\", p50: \"> 12.5\"}}");
  ASSERT_TRUE(r.ok()) << errorsOf(r);
  const auto& stream = r.experiment->steadyState.probes[0].tolerance.stream;
  ASSERT_EQ(stream.size(), 5u);
  EXPECT_EQ(stream[0].metric, StreamMetric::kFirstByte);
  EXPECT_EQ(stream[0].bound.value, 1e9);
  EXPECT_EQ(stream[1].metric, StreamMetric::kFirstEvent);
  EXPECT_EQ(stream[1].percentile, 95);
  EXPECT_EQ(stream[1].bound.value, 500e6);
  EXPECT_EQ(stream[2].metric, StreamMetric::kEventGap);
  EXPECT_EQ(stream[3].metric, StreamMetric::kEventRate);
  EXPECT_EQ(stream[3].percentile, 5);
  EXPECT_EQ(stream[3].bound.op, CompareOp::kGe);
  EXPECT_EQ(stream[3].bound.value, 20);
  EXPECT_EQ(stream[4].bound.value, 12.5);
}

TEST(StreamToleranceParseTest, RefusesBadBoundsWithTheirPosition) {
  auto r = parse(
      "{firstEvent: {p95: \"<= 500\"}, eventRate: {p50: \">= fast\"}, eventGap: "
      "{q99: \"< 1s\"}}");
  ASSERT_FALSE(r.ok());
  const std::string errors = errorsOf(r);
  EXPECT_NE(errors.find("exp.yaml:8:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("tolerance.firstEvent.p95"), std::string::npos) << errors;
  EXPECT_NE(errors.find("'fast' is not a rate"), std::string::npos) << errors;
  EXPECT_NE(errors.find("'q99' is not a percentile"), std::string::npos) << errors;

  auto tcp = parse("{firstEvent: {p95: \"<= 500ms\"}}", "tcp");
  ASSERT_FALSE(tcp.ok());
  EXPECT_NE(errorsOf(tcp).find("'firstEvent' does not apply to a tcp probe"), std::string::npos)
      << errorsOf(tcp);
}

}  // namespace
}  // namespace chaosd
