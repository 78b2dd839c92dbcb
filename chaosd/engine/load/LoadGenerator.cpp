#include "chaosd/engine/load/LoadGenerator.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "chaosd/base/Fd.h"
#include "chaosd/engine/probes/StreamTiming.h"

namespace chaosd {

// libcurl's multi interface driven by its socket callbacks and an epoll of our own, so that
// the loop sleeps until the next due request with nanosecond precision (epoll_pwait2) instead
// of polling at libcurl's millisecond granularity.
struct LoadGenerator::Loop {
  struct Request {
    CURL* easy = nullptr;
    size_t record = 0;
    std::vector<LoadRecord>* records = nullptr;
    const LoadGenerator* owner = nullptr;
    // A streamed answer's events (its Content-Type, read at the first body byte, says so).
    std::optional<StreamEventSplitter> events;
  };

  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;
  Fd epoll;
  std::set<curl_socket_t> watched;
  const LoadGenerator* owner = nullptr;
  int64_t curlDeadline = -1;  // when libcurl wants its timeout action; -1: none
  std::vector<std::unique_ptr<Request>> all;
  std::vector<Request*> idle;
  size_t inFlight = 0;

  Loop() = default;
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop() {
    for (auto& r : all) {
      if (multi) curl_multi_remove_handle(multi, r->easy);
      curl_easy_cleanup(r->easy);
    }
    if (multi) curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
  }
};

namespace {

using Loop = LoadGenerator::Loop;

// Whether a Content-Type is a stream of events: SSE (events end at a blank line) or one of the
// line-delimited JSON types (an event a line); nullopt for anything else (a plain answer).
std::optional<bool> streamKind(const char* contentType) {
  if (contentType == nullptr) return std::nullopt;
  std::string type(contentType);
  type = type.substr(0, type.find(';'));
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (type == "text/event-stream") return true;
  if (type == "application/x-ndjson" || type == "application/ndjson" ||
      type == "application/jsonl" || type == "application/json-seq" ||
      type == "application/stream+json" || type == "application/jsonlines") {
    return false;
  }
  return std::nullopt;
}

// The body is not kept: its first byte is stamped, and a streamed one is split into events.
size_t onBody(char* data, size_t size, size_t count, void* userdata) {
  auto* req = static_cast<Loop::Request*>(userdata);
  LoadRecord& rec = (*req->records)[req->record];
  const size_t n = size * count;
  if (n == 0) return 0;
  const int64_t at = req->owner->now();
  if (rec.firstByte < 0) {
    rec.firstByte = at;
    char* type = nullptr;
    curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &type);
    if (auto sse = streamKind(type)) req->events.emplace(*sse);
  }
  if (req->events)
    req->events->feed(std::string_view(data, n), StreamTiming::Duration(at - rec.intended));
  return n;
}

// The events of a streamed answer into its record, times from its intended send time.
void recordEvents(Loop::Request& req, LoadRecord& rec) {
  if (!req.events) return;
  const StreamTiming t = req.events->finish(StreamTiming::Duration(rec.completed - rec.intended));
  req.events.reset();
  if (t.events == 0 || !t.firstEvent) return;
  rec.events = static_cast<uint32_t>(std::min<size_t>(t.events, UINT32_MAX));
  rec.firstEvent = rec.intended + t.firstEvent->count();
  rec.lastEvent = rec.intended + t.lastEvent.value_or(*t.firstEvent).count();
  const size_t kept = std::min(t.gaps.size(), LoadRecord::kMaxGaps);
  rec.gaps.reserve(kept);
  for (size_t i = 0; i < kept; ++i) rec.gaps.push_back(t.gaps[i].count());
}

int onTimer(CURLM*, long timeoutMs, void* userp) {
  auto* loop = static_cast<Loop*>(userp);
  loop->curlDeadline = timeoutMs < 0 ? -1 : loop->owner->now() + timeoutMs * 1'000'000;
  return 0;
}

int onSocket(CURL*, curl_socket_t s, int what, void* userp, void*) {
  auto* loop = static_cast<Loop*>(userp);
  if (what == CURL_POLL_REMOVE) {
    ::epoll_ctl(loop->epoll.get(), EPOLL_CTL_DEL, s, nullptr);
    loop->watched.erase(s);
    return 0;
  }
  epoll_event ev{};
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
  ev.data.fd = s;
  const bool known = loop->watched.contains(s);
  ::epoll_ctl(loop->epoll.get(), known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev);
  loop->watched.insert(s);
  return 0;
}

std::string failureWords(CURLcode code, CURL* easy) {
  if (code == CURLE_OPERATION_TIMEDOUT) return "timeout";
  long osErrno = 0;
  curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &osErrno);
  if (code == CURLE_COULDNT_CONNECT && osErrno != 0) {
    return std::string("connect: ") + std::strerror(static_cast<int>(osErrno));
  }
  if (code == CURLE_GOT_NOTHING) return "empty reply";
  if (code == CURLE_RECV_ERROR && osErrno != 0) {
    return std::string("receive: ") + std::strerror(static_cast<int>(osErrno));
  }
  return curl_easy_strerror(code);
}

}  // namespace

LoadGenerator::LoadGenerator(LoadSpec spec) : spec_(std::move(spec)) {}

LoadGenerator::~LoadGenerator() { stop(); }

int64_t LoadGenerator::now() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              t0_)
      .count();
}

Result<void> LoadGenerator::start() {
  if (spec_.rate <= 0 && spec_.steps.empty()) {
    return Error(ErrorCode::kInvalid, "load " + spec_.name + ": no rate");
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);  // reference counted; the probes' init is the same
  loop_ = std::make_unique<Loop>();
  loop_->epoll = Fd(::epoll_create1(EPOLL_CLOEXEC));
  loop_->multi = curl_multi_init();
  if (!loop_->epoll || !loop_->multi) return Error(ErrorCode::kInternal, "load: no multi handle");
  loop_->owner = this;
  for (const auto& [name, value] : spec_.http.headers) {
    loop_->headers = curl_slist_append(loop_->headers, (name + ": " + value).c_str());
  }
  loop_->headers = curl_slist_append(loop_->headers, "Expect:");
  curl_multi_setopt(loop_->multi, CURLMOPT_SOCKETFUNCTION, &onSocket);
  curl_multi_setopt(loop_->multi, CURLMOPT_SOCKETDATA, loop_.get());
  curl_multi_setopt(loop_->multi, CURLMOPT_TIMERFUNCTION, &onTimer);
  curl_multi_setopt(loop_->multi, CURLMOPT_TIMERDATA, loop_.get());
  curl_multi_setopt(loop_->multi, CURLMOPT_MAXCONNECTS, static_cast<long>(spec_.maxInFlight));
  t0_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { run(); });
  return success();
}

void LoadGenerator::phaseStarted(Phase phase) {
  std::lock_guard lock(mu_);
  windows_.push_back({phase, now(), now()});
}

void LoadGenerator::phaseEnded(Phase phase) {
  std::lock_guard lock(mu_);
  for (auto it = windows_.rbegin(); it != windows_.rend(); ++it) {
    if (it->phase == phase) {
      it->end = now();
      return;
    }
  }
}

void LoadGenerator::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

LoadReport LoadGenerator::report() const {
  std::vector<LoadWindow> windows;
  {
    std::lock_guard lock(mu_);
    windows = windows_;
  }
  return summariseLoad(spec_, records_, windows, spec_.timeout.count());
}

void LoadGenerator::run() {
  Loop& loop = *loop_;
  const long timeoutMs = std::max<long>(
      1, static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(spec_.timeout).count()));
  // A handle is configured once and reused: libcurl keeps the connections of the multi handle
  // alive between requests (keep-alive, as a real client pool does).
  auto newRequest = [&]() -> Loop::Request* {
    auto r = std::make_unique<Loop::Request>();
    r->owner = this;
    r->records = &records_;
    r->easy = curl_easy_init();
    CURL* c = r->easy;
    curl_easy_setopt(c, CURLOPT_URL, spec_.http.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeoutMs);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeoutMs);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, spec_.http.tlsVerify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, spec_.http.tlsVerify ? 2L : 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "chaosd-load/" CHAOSD_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, loop.headers);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r.get());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &onBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r.get());
    if (spec_.http.method == "GET") {
      curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (spec_.http.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, spec_.http.method.c_str());
    }
    if (!spec_.http.body.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(spec_.http.body.size()));
      curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, spec_.http.body.c_str());
      if (spec_.http.method != "POST") {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, spec_.http.method.c_str());
      }
    }
    loop.all.push_back(std::move(r));
    return loop.all.back().get();
  };
  auto launch = [&](int64_t due) {
    records_.push_back(LoadRecord{});
    LoadRecord& rec = records_.back();
    rec.intended = due;
    if (loop.inFlight >= spec_.maxInFlight) {
      rec.completed = due;  // dropped: never sent
      return;
    }
    Loop::Request* r = nullptr;
    if (loop.idle.empty()) {
      r = newRequest();
    } else {
      r = loop.idle.back();
      loop.idle.pop_back();
    }
    r->record = records_.size() - 1;
    r->events.reset();
    rec.sent = now();
    ++loop.inFlight;
    curl_multi_add_handle(loop.multi, r->easy);
  };
  auto collect = [&] {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(loop.multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Loop::Request* r = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&r));
      LoadRecord& rec = records_[r->record];
      rec.completed = now();
      recordEvents(*r, rec);
      if (msg->data.result == CURLE_OK) {
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &rec.status);
      } else {
        rec.error = failureWords(msg->data.result, msg->easy_handle);
      }
      curl_multi_remove_handle(loop.multi, msg->easy_handle);
      --loop.inFlight;
      loop.idle.push_back(r);
    }
  };

  // The schedule: the next arrival is 1/λ after the last, λ the rate of the step it falls in.
  size_t step = 0;
  double stepEnd = spec_.steps.empty() ? std::numeric_limits<double>::infinity()
                                       : static_cast<double>(spec_.steps[0].duration.count());
  auto rateAt = [&](double t) {
    while (step + 1 < spec_.steps.size() && t >= stepEnd) {
      ++step;
      stepEnd += static_cast<double>(spec_.steps[step].duration.count());
    }
    return spec_.steps.empty() ? spec_.rate : spec_.steps[step].rate;
  };
  records_.reserve(static_cast<size_t>(std::min(1e7, 600 * std::max(spec_.rate, 1.0))));
  double nextDue = 0;
  int running = 0;
  epoll_event events[64];
  int64_t drainUntil = -1;  // after stop(): the answers still awaited, up to the timeout
  for (;;) {
    int64_t t = now();
    if (stopping_ && drainUntil < 0) drainUntil = t + spec_.timeout.count();
    if (drainUntil >= 0 && (loop.inFlight == 0 || t >= drainUntil)) break;
    while (drainUntil < 0 && nextDue <= static_cast<double>(t)) {
      launch(static_cast<int64_t>(nextDue));
      nextDue += 1e9 / rateAt(nextDue);
    }
    if (loop.curlDeadline >= 0 && loop.curlDeadline <= now()) {
      loop.curlDeadline = -1;
      curl_multi_socket_action(loop.multi, CURL_SOCKET_TIMEOUT, 0, &running);
      collect();
      continue;
    }
    t = now();
    int64_t wake = drainUntil >= 0 ? drainUntil : static_cast<int64_t>(nextDue);
    if (loop.curlDeadline >= 0) wake = std::min(wake, loop.curlDeadline);
    const int64_t wait = std::clamp<int64_t>(wake - t, 0, 20'000'000);  // stop is seen in 20 ms
    timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    const int n = ::epoll_pwait2(loop.epoll.get(), events, 64, &ts, nullptr);
    for (int i = 0; i < n; ++i) {
      int flags = 0;
      if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
      curl_multi_socket_action(loop.multi, events[i].data.fd, flags, &running);
    }
    if (n > 0) collect();
  }
  // Still unanswered a timeout after the stop: unfinished.
  const int64_t end = now();
  for (auto& r : loop.all) {
    const bool idle = std::find(loop.idle.begin(), loop.idle.end(), r.get()) != loop.idle.end();
    if (idle) continue;
    LoadRecord& rec = records_[r->record];
    rec.completed = end;
    rec.error = "unfinished at the end of the load";
  }
  loop_.reset();
}

}  // namespace chaosd
