#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "chaosd/base/Result.h"
#include "chaosd/engine/probes/StreamTiming.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
  bool tlsVerify = true;
  Duration timeout = std::chrono::seconds(1);
};

struct HttpResponse {
  long status = 0;
  std::string body;
  // Set when the response was streamed: sent chunked, or as text/event-stream (events timed as
  // they arrived; StreamTiming.h).
  std::optional<StreamTiming> stream;
};

// One HTTP request, configured once and performed again and again on one libcurl easy
// handle. Every perform opens a fresh connection: a probe stands for a new client, and a
// kept-alive connection would hide faults that only hit new connections (SYN loss, a
// partition of new flows) and let curl silently retry a dead one. No proxy from the
// environment, no signals (safe on worker threads), http and https only, no redirects
// followed (the status is the endpoint's own).
class HttpClient {
 public:
  static constexpr size_t kMaxBodyBytes = size_t{1024} * 1024;

  // kInvalid when libcurl refuses an option (a malformed URL is only found by perform).
  static Result<std::unique_ptr<HttpClient>> create(const HttpRequest& request);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs the request; returns within the timeout plus a few milliseconds. Any HTTP status
  // is a response. Transport failures are errors whose message is a sample detail:
  // kTimeout "timeout after 1s", "connect 127.0.0.1:8080: Connection refused",
  // "resolve: ...", "response body larger than 1MiB", ...
  Result<HttpResponse> perform();

  struct State;  // the easy handle and what its callbacks write to; opaque

 private:
  explicit HttpClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace chaosd
