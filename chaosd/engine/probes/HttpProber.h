#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "chaosd/base/SearchRegex.h"
#include "chaosd/engine/probes/HttpClient.h"
#include "chaosd/engine/probes/Probe.h"
#include "chaosd/engine/probes/ValueMatcher.h"

namespace chaosd {

// `http:` probe. Passes when the request completes within the timeout and the status (2xx
// when the tolerance names none), the body regex and every JSON pointer match. value = the
// status code.
class HttpProber final : public TimedProbe {
 public:
  static Result<std::unique_ptr<Probe>> create(const ProbeSpec& spec, const Clock& clock);

 protected:
  Observation observe() override;

 private:
  struct JsonCheck {
    nlohmann::json::json_pointer pointer;
    std::string text;  // as written, for details
    ValueMatcher match;
  };

  HttpProber(const ProbeSpec& spec, const Clock& clock, std::unique_ptr<HttpClient> client,
             ValueMatcher status, std::optional<SearchRegex> body, std::vector<JsonCheck> json)
      : TimedProbe(spec, clock),
        client_(std::move(client)),
        status_(std::move(status)),
        body_(std::move(body)),
        json_(std::move(json)) {}

  // The first JSON check that fails, in words; nullopt when all pass.
  std::optional<std::string> checkJson(const std::string& body) const;
  // The per-sample checks of one response; a tolerance with stream bounds needs it streamed.
  Observation judge(const HttpResponse& response) const;

  std::unique_ptr<HttpClient> client_;
  ValueMatcher status_;
  std::optional<SearchRegex> body_;
  std::vector<JsonCheck> json_;
};

// The observed form of a JSON value for matching: a string as itself, anything else as JSON
// text ("42", "true", "null", "{\"a\":1}").
std::string jsonScalarText(const nlohmann::json& value);

}  // namespace chaosd
