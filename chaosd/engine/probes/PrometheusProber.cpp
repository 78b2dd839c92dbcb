#include "chaosd/engine/probes/PrometheusProber.h"

#include <nlohmann/json.hpp>

namespace chaosd {

namespace {

using nlohmann::json;

// RFC 3986 unreserved characters pass; everything else is %XX.
std::string percentEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// {job="api",instance="x"}; {} for a series without labels.
std::string seriesName(const json& metric) {
  std::string out = "{";
  if (metric.is_object()) {
    for (const auto& [name, value] : metric.items()) {
      if (out.size() > 1) out += ",";
      out += name + "=" + value.dump();
    }
  }
  return out + "}";
}

// obj[key] when it is a string, else "".
std::string stringField(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// A sample pair [timestamp, "value"] -> the value text; nullopt when malformed.
std::optional<std::string> pairValue(const json& pair) {
  if (!pair.is_array() || pair.size() != 2 || !pair[1].is_string()) return std::nullopt;
  return pair[1].get<std::string>();
}

}  // namespace

std::string prometheusQueryUrl(const std::string& baseUrl, const std::string& query) {
  std::string base = baseUrl;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/api/v1/query?query=" + percentEncode(query);
}

Observation judgePrometheusResponse(long httpStatus, const std::string& body,
                                    const std::optional<ValueMatcher>& match) {
  auto doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Observation::fail("status " + std::to_string(httpStatus) + ", body is not JSON");
  }
  if (stringField(doc, "status") != "success") {
    std::string detail = "prometheus error";
    if (auto type = stringField(doc, "errorType"); !type.empty()) detail += " " + type;
    if (auto error = stringField(doc, "error"); !error.empty()) detail += ": " + error;
    return Observation::fail(detail + " (http status " + std::to_string(httpStatus) + ")");
  }
  const json data = doc.contains("data") ? doc["data"] : json();
  const std::string type = stringField(data, "resultType");
  const json result = data.is_object() && data.contains("result") ? data["result"] : json();

  // (series name, value text) of everything to judge.
  std::vector<std::pair<std::string, std::string>> values;
  if (type == "scalar") {
    auto v = pairValue(result);
    if (!v) return Observation::fail("malformed scalar result");
    values.emplace_back("", *v);
  } else if (type == "vector") {
    if (!result.is_array()) return Observation::fail("malformed vector result");
    if (result.empty()) return Observation::fail("no series");
    for (const auto& series : result) {
      auto v = series.is_object() && series.contains("value") ? pairValue(series["value"])
                                                              : std::nullopt;
      if (!v) return Observation::fail("malformed series in vector result");
      values.emplace_back(seriesName(series.value("metric", json::object())), *v);
    }
  } else {
    return Observation::fail("unsupported result type '" + type + "' (expected scalar or vector)");
  }

  const std::optional<double> first = parseNumber(values.front().second);
  for (const auto& [series, text] : values) {
    if (match && !match->matches(text)) {
      const std::string what = series.empty() ? "value " : "series " + series + " value ";
      return Observation::fail(what + text + " (expected " + match->describe() + ")", first);
    }
  }
  std::string detail = "value " + values.front().second;
  if (values.size() > 1) detail += " (first of " + std::to_string(values.size()) + " series)";
  return Observation::pass(detail, first);
}

Result<std::unique_ptr<Probe>> PrometheusProber::create(const ProbeSpec& spec, const Clock& clock) {
  if (spec.prometheus.url.empty() || spec.prometheus.query.empty()) {
    return Error(ErrorCode::kInvalid, "prometheus probe needs a url and a query");
  }
  HttpRequest request;
  request.url = prometheusQueryUrl(spec.prometheus.url, spec.prometheus.query);
  request.timeout = spec.timeout;
  auto client = HttpClient::create(request);
  if (!client) return std::move(client).error();
  std::optional<ValueMatcher> value;
  if (spec.tolerance.value) {
    auto matcher = ValueMatcher::create(*spec.tolerance.value, "value");
    if (!matcher) return std::move(matcher).error();
    value = std::move(*matcher);
  }
  return std::unique_ptr<Probe>(
      new PrometheusProber(spec, clock, std::move(*client), std::move(value)));
}

Observation PrometheusProber::observe() {
  auto response = client_->perform();
  if (!response) return Observation::fail(response.error().message());
  return judgePrometheusResponse(response->status, response->body, value_);
}

}  // namespace chaosd
