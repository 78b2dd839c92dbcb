#include "chaosd/engine/probes/HttpProber.h"

#include "chaosd/engine/probes/Verdict.h"

namespace chaosd {

std::string jsonScalarText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

Result<std::unique_ptr<Probe>> HttpProber::create(const ProbeSpec& spec, const Clock& clock) {
  const auto& h = spec.http;
  auto client = HttpClient::create({.method = h.method,
                                    .url = h.url,
                                    .headers = h.headers,
                                    .body = h.body,
                                    .tlsVerify = h.tlsVerify,
                                    .timeout = spec.timeout});
  if (!client) return std::move(client).error();

  ValueMatch defaultStatus;
  defaultStatus.kind = ValueMatch::Kind::kRange;
  defaultStatus.low = 200;
  defaultStatus.high = 299;
  auto status = ValueMatcher::create(spec.tolerance.status.value_or(defaultStatus), "status");
  if (!status) return std::move(status).error();

  std::optional<SearchRegex> body;
  if (spec.tolerance.body) {
    auto compiled = SearchRegex::compile(*spec.tolerance.body, "body regex");
    if (!compiled) return std::move(compiled).error();
    body = std::move(*compiled);
  }

  std::vector<JsonCheck> json;
  for (const auto& [pointer, match] : spec.tolerance.json) {
    auto matcher = ValueMatcher::create(match, "json " + pointer);
    if (!matcher) return std::move(matcher).error();
    try {
      json.push_back({nlohmann::json::json_pointer(pointer), pointer, std::move(*matcher)});
    } catch (const nlohmann::json::exception& e) {
      return Error(ErrorCode::kInvalid, "json pointer '" + pointer + "': " + e.what());
    }
  }
  return std::unique_ptr<Probe>(new HttpProber(spec, clock, std::move(*client), std::move(*status),
                                               std::move(body), std::move(json)));
}

std::optional<std::string> HttpProber::checkJson(const std::string& body) const {
  if (json_.empty()) return std::nullopt;
  auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return "body is not JSON";
  for (const auto& check : json_) {
    const nlohmann::json* found = nullptr;
    try {
      if (doc.contains(check.pointer)) found = &doc.at(check.pointer);
    } catch (const nlohmann::json::exception&) {
      found = nullptr;  // e.g. "/items/x" into an array
    }
    if (!found) return "json " + check.text + " is missing";
    const std::string observed = jsonScalarText(*found);
    if (!check.match.matches(observed)) {
      return "json " + check.text + " is " + found->dump() + " (expected " +
             check.match.describe() + ")";
    }
  }
  return std::nullopt;
}

namespace {

// ", 12 events, first event 105ms": what a streamed response showed, for the sample's detail.
std::string streamWords(const StreamTiming& t) {
  std::string words = ", " + std::to_string(t.events) + (t.eventStream ? " event" : " line") +
                      (t.events == 1 ? "" : "s");
  if (t.firstEvent) words += ", first after " + formatLatency(*t.firstEvent);
  return words;
}

}  // namespace

Observation HttpProber::observe() {
  auto response = client_->perform();
  if (!response) return Observation::fail(response.error().message());
  Observation seen = judge(*response);
  seen.stream = std::move(response->stream);
  return seen;
}

Observation HttpProber::judge(const HttpResponse& response) const {
  const double status = static_cast<double>(response.status);
  std::string detail = "status " + std::to_string(response.status);
  if (response.stream) detail += streamWords(*response.stream);
  if (!status_.matches(status)) {
    return Observation::fail(detail + " (expected " + status_.describe() + ")", status);
  }
  if (!spec().tolerance.stream.empty() && !response.stream) {
    return Observation::fail(
        detail + ", the response was not streamed (expected chunked or text/event-stream)", status);
  }
  if (body_ && !body_->search(response.body)) {
    return Observation::fail(detail + ", body did not match " + body_->describe(), status);
  }
  if (auto problem = checkJson(response.body)) {
    return Observation::fail(detail + ", " + *problem, status);
  }
  return Observation::pass(detail, status);
}

}  // namespace chaosd
