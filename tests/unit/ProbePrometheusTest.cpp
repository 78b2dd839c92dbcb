#include <gtest/gtest.h>

#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/PrometheusProber.h"
#include "tests/support/TestHttpServer.h"

namespace chaosd {
namespace {

using testing::TestHttpServer;

constexpr const char* kScalar =
    R"({"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"0.998"]}})";
constexpr const char* kTwoSeries = R"({"status":"success","data":{"resultType":"vector","result":[
  {"metric":{"__name__":"up","instance":"a:9100","job":"node"},"value":[1700000000,"1"]},
  {"metric":{"__name__":"up","instance":"b:9100","job":"node"},"value":[1700000000,"0"]}]}})";
constexpr const char* kEmpty = R"({"status":"success","data":{"resultType":"vector","result":[]}})";
constexpr const char* kError =
    R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"})";

ProbeSpec promSpec(const std::string& url, const std::string& query) {
  ProbeSpec spec;
  spec.name = "slo";
  spec.kind = ProbeKind::kPrometheus;
  spec.prometheus.url = url;
  spec.prometheus.query = query;
  spec.timeout = std::chrono::seconds(2);
  return spec;
}

ValueMatch range(double low, double high) {
  ValueMatch m;
  m.kind = ValueMatch::Kind::kRange;
  m.low = low;
  m.high = high;
  return m;
}

ValueMatch equals(std::string v) {
  ValueMatch m;
  m.values = {std::move(v)};
  return m;
}

ProbeSample sampleOnce(const ProbeSpec& spec) {
  auto probe = makeProbe(spec);
  EXPECT_TRUE(probe.ok()) << (probe.ok() ? "" : probe.error().describe());
  return (*probe)->sample(Phase::kDuring);
}

TEST(ProbePrometheusTest, ScalarAndTheQueryOnTheWire) {
  TestHttpServer server;
  server.reply({200, kScalar});
  auto spec = promSpec(server.baseUrl() + "/", "sum(rate(http_requests_total{code=~\"2..\"}[1m]))");
  spec.tolerance.value = range(0.99, 1);
  auto s = sampleOnce(spec);
  EXPECT_TRUE(s.ok) << s.detail;
  EXPECT_EQ(s.detail, "value 0.998");
  ASSERT_TRUE(s.value.has_value());
  EXPECT_DOUBLE_EQ(*s.value, 0.998);
  ASSERT_EQ(server.requestCount(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(
      server.requests()[0].target,
      "/api/v1/query?query=sum%28rate%28http_requests_total%7Bcode%3D~%222..%22%7D%5B1m%5D%29%29");

  spec.tolerance.value = range(0.999, 1);
  s = sampleOnce(spec);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "value 0.998 (expected in 0.999..1)");
}

TEST(ProbePrometheusTest, EverySeriesOfAVectorMustMatch) {
  TestHttpServer server;
  server.reply({200, kTwoSeries});
  auto spec = promSpec(server.baseUrl(), "up{job=\"node\"}");
  spec.tolerance.value = equals("1");
  auto s = sampleOnce(spec);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail,
            R"(series {__name__="up",instance="b:9100",job="node"} value 0 (expected == 1))");
  EXPECT_EQ(s.value, 1);  // the first series

  spec.tolerance.value = range(0, 1);
  s = sampleOnce(spec);
  EXPECT_TRUE(s.ok) << s.detail;
  EXPECT_EQ(s.detail, "value 1 (first of 2 series)");

  spec.tolerance.value.reset();  // no value tolerance: any answer with series passes
  EXPECT_TRUE(sampleOnce(spec).ok);
}

TEST(ProbePrometheusTest, EmptyVectorFails) {
  TestHttpServer server;
  server.reply({200, kEmpty});
  auto s = sampleOnce(promSpec(server.baseUrl(), "up{job=\"gone\"}"));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "no series");
  EXPECT_FALSE(s.value.has_value());
}

TEST(ProbePrometheusTest, ErrorStatusFails) {
  TestHttpServer server;
  server.reply({400, kError});
  auto s = sampleOnce(promSpec(server.baseUrl(), "up{"));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail,
            "prometheus error bad_data: invalid parameter \"query\": 1:5: parse error (http "
            "status 400)");
}

TEST(ProbePrometheusTest, MalformedAnswersFail) {
  EXPECT_EQ(judgePrometheusResponse(200, "<html>", std::nullopt).detail,
            "status 200, body is not JSON");
  EXPECT_EQ(
      judgePrometheusResponse(
          200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})", std::nullopt)
          .detail,
      "unsupported result type 'matrix' (expected scalar or vector)");
  EXPECT_FALSE(
      judgePrometheusResponse(
          200, R"({"status":"success","data":{"resultType":"scalar","result":[1]}})", std::nullopt)
          .ok);
  EXPECT_FALSE(judgePrometheusResponse(200, R"({"status":42})", std::nullopt).ok);
  auto nan = judgePrometheusResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}})",
      std::nullopt);
  EXPECT_TRUE(nan.ok);
  EXPECT_TRUE(std::isnan(nan.value.value_or(0)));
}

TEST(ProbePrometheusTest, UnreachableServer) {
  const uint16_t port = testing::closedPort();
  auto s = sampleOnce(promSpec("http://127.0.0.1:" + std::to_string(port), "up"));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.detail, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

}  // namespace
}  // namespace chaosd
