#pragma once

#include <memory>
#include <optional>

#include "chaosd/engine/probes/HttpClient.h"
#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/ValueMatcher.h"

namespace chaosd {

// `prometheus:` probe. An instant query, GET {url}/api/v1/query?query=<urlencoded>. Passes
// when the API answers status "success" with a scalar, or a vector of at least one series,
// and the scalar or EVERY series' value matches tolerance.value (any value passes when it is
// unset). An empty vector fails ("no series"). value = the scalar, or the first series' value.
class PrometheusProber final : public TimedProbe {
 public:
  static Result<std::unique_ptr<Probe>> create(const ProbeSpec& spec, const Clock& clock);

 protected:
  Observation observe() override;

 private:
  PrometheusProber(const ProbeSpec& spec, const Clock& clock, std::unique_ptr<HttpClient> client,
                   std::optional<ValueMatcher> value)
      : TimedProbe(spec, clock), client_(std::move(client)), value_(std::move(value)) {}

  std::unique_ptr<HttpClient> client_;
  std::optional<ValueMatcher> value_;
};

// Judges a Prometheus /api/v1/query response body (exposed for tests).
Observation judgePrometheusResponse(long httpStatus, const std::string& body,
                                    const std::optional<ValueMatcher>& match);

// {url}/api/v1/query?query=<percent-encoded query>; a trailing '/' on url is dropped.
std::string prometheusQueryUrl(const std::string& baseUrl, const std::string& query);

}  // namespace chaosd
