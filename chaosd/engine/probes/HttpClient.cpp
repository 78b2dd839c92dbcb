#include "chaosd/engine/probes/HttpClient.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <string_view>

#include "chaosd/engine/probes/Probe.h"

namespace chaosd {

struct HttpClient::State {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  char errorBuffer[CURL_ERROR_SIZE] = {};
  std::string body;
  bool bodyTooLarge = false;
  Duration timeout{0};
  std::string target;  // "host:port" of the URL, for connect failures
  // Streaming: what the headers said, and the events split from the body as it arrives.
  std::chrono::steady_clock::time_point started;
  bool chunked = false;
  bool eventStream = false;
  std::optional<StreamEventSplitter> events;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (curl) curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
  }
};

namespace {

Duration sinceStart(const HttpClient::State& s) {
  return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - s.started);
}

size_t onBody(char* data, size_t size, size_t count, void* userdata) {
  auto* state = static_cast<HttpClient::State*>(userdata);
  const size_t bytes = size * count;
  if (state->body.size() + bytes > HttpClient::kMaxBodyBytes) {
    state->bodyTooLarge = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  if (state->chunked || state->eventStream) {
    if (!state->events) state->events.emplace(state->eventStream);
    state->events->feed(std::string_view(data, bytes), sinceStart(*state));
  }
  state->body.append(data, bytes);
  return bytes;
}

bool headerIs(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' &&
         strncasecmp(line.data(), name.data(), name.size()) == 0;
}

bool valueHas(std::string_view line, std::string_view word) {
  std::string lower(line);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find(word) != std::string::npos;
}

// Each header line as it arrives; a status line starts a new response (after a 100 Continue).
size_t onHeader(char* data, size_t size, size_t count, void* userdata) {
  auto* state = static_cast<HttpClient::State*>(userdata);
  const std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    state->chunked = false;
    state->eventStream = false;
  } else if (headerIs(line, "transfer-encoding")) {
    state->chunked = state->chunked || valueHas(line, "chunked");
  } else if (headerIs(line, "content-type")) {
    state->eventStream = valueHas(line, "text/event-stream");
  }
  return size * count;
}

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// "host:port" of a URL, the port defaulted from the scheme; "" when it does not parse.
std::string urlTarget(const std::string& url) {
  CURLU* u = curl_url();
  if (!u) return "";
  std::string out;
  char* host = nullptr;
  char* port = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    out = std::string(host) + ":" + port;
  }
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

// A transfer failure in the words of a sample detail.
std::string describeFailure(CURLcode code, const HttpClient::State& s) {
  if (code == CURLE_OPERATION_TIMEDOUT) return "timeout after " + describeTimeout(s.timeout);
  long osErrno = 0;
  curl_easy_getinfo(s.curl, CURLINFO_OS_ERRNO, &osErrno);
  if (code == CURLE_COULDNT_CONNECT && osErrno != 0) {
    const std::string where = s.target.empty() ? "" : " " + s.target;
    return "connect" + where + ": " + std::strerror(static_cast<int>(osErrno));
  }
  std::string text = s.errorBuffer[0] ? s.errorBuffer : curl_easy_strerror(code);
  if (code == CURLE_COULDNT_RESOLVE_HOST) return "resolve: " + text;
  return text;
}

}  // namespace

HttpClient::HttpClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(const HttpRequest& request) {
  initCurlOnce();
  auto state = std::make_unique<State>();
  state->timeout = request.timeout;
  state->target = urlTarget(request.url);
  state->curl = curl_easy_init();
  if (!state->curl) return Error(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* c = state->curl;

  bool userExpect = false;
  for (const auto& [name, value] : request.headers) {
    state->headers = curl_slist_append(state->headers, (name + ": " + value).c_str());
    userExpect = userExpect || strcasecmp(name.c_str(), "Expect") == 0;
  }
  // A body over 1 KiB would otherwise wait a second for "100 Continue".
  if (!userExpect) state->headers = curl_slist_append(state->headers, "Expect:");

  const long timeoutMs = std::max<long>(
      1, static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(request.timeout).count()));
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, option, value);
  };
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_NOPROXY, "*");
  set(CURLOPT_TIMEOUT_MS, timeoutMs);
  set(CURLOPT_CONNECTTIMEOUT_MS, timeoutMs);
  set(CURLOPT_FRESH_CONNECT, 1L);
  set(CURLOPT_FORBID_REUSE, 1L);
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_SSL_VERIFYPEER, request.tlsVerify ? 1L : 0L);
  set(CURLOPT_SSL_VERIFYHOST, request.tlsVerify ? 2L : 0L);
  set(CURLOPT_USERAGENT, "chaosd-probe/" CHAOSD_VERSION);
  set(CURLOPT_HTTPHEADER, state->headers);
  set(CURLOPT_ERRORBUFFER, state->errorBuffer);
  set(CURLOPT_WRITEFUNCTION, &onBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(state.get()));
  set(CURLOPT_HEADERFUNCTION, &onHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(state.get()));
  if (request.method == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else {
    set(CURLOPT_CUSTOMREQUEST, request.method.c_str());  // copied by libcurl
  }
  if (!request.body.empty()) {
    set(CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    set(CURLOPT_COPYPOSTFIELDS, request.body.c_str());
    if (request.method != "POST") set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (rc != CURLE_OK) {
    return Error(ErrorCode::kInvalid,
                 "http request to " + request.url + ": " + curl_easy_strerror(rc));
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(state)));
}

Result<HttpResponse> HttpClient::perform() {
  State& s = *state_;
  s.body.clear();
  s.bodyTooLarge = false;
  s.errorBuffer[0] = '\0';
  s.chunked = false;
  s.eventStream = false;
  s.events.reset();
  s.started = std::chrono::steady_clock::now();
  const CURLcode code = curl_easy_perform(s.curl);
  const Duration ended = sinceStart(s);
  if (s.bodyTooLarge) {
    return Error(ErrorCode::kIo, "response body larger than 1MiB");
  }
  if (code != CURLE_OK) {
    return Error(code == CURLE_OPERATION_TIMEDOUT ? ErrorCode::kTimeout : ErrorCode::kIo,
                 describeFailure(code, s));
  }
  HttpResponse response;
  curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(s.body);
  s.body = std::string();
  if (s.chunked || s.eventStream) {
    if (!s.events) s.events.emplace(s.eventStream);  // streamed, but no body at all
    response.stream = s.events->finish(ended);
  }
  return response;
}

}  // namespace chaosd
