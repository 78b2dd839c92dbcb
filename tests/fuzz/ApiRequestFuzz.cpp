// libFuzzer target for the daemon's HTTP API: arbitrary requests handed to Api::handle, the
// function libmicrohttpd's callback calls, without a socket. The input is a request as text:
//
//   METHOD SP PATH[?QUERY] LF        QUERY: NAME=VALUE pairs joined by '&' (not URL-decoded)
//   NAME: VALUE LF ...               headers (names lower-cased, as the server hands them)
//   LF
//   BODY                             the rest, bytes as they are (JSON, YAML or anything)
//
// A header `x-fuzz-uid: N` (taken out before the request is handled) makes the caller uid N in
// a group the access policy admits, with no grant in the policy, so the refusal paths run too;
// otherwise the caller is root.
//
// No fault can be applied: the run pool is shut down before the first input, so a submission
// is parsed, validated and checked against the runs in the journal and then refused ("the
// daemon is stopping"). The journal is a file of the fuzzer's own in a scratch folder: recover
// finds nothing of anyone else's to revert, and schedules and audit lines land there. The
// scheduler's thread is never started, so no schedule fires.
//
// Handle promises a response for every request: an exception escaping is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "chaosd/app/daemon/Api.h"
#include "chaosd/base/Clock.h"
#include "chaosd/base/Log.h"
#include "injectors/FaultRegistry.h"

namespace {

using namespace chaosd;
using namespace chaosd::daemon;

constexpr gid_t kFuzzGroup = 4242;  // the group the access policy admits

struct Daemon {
  std::string dir;
  FaultRegistry registry;
  std::unique_ptr<FaultJournal> journal;
  Metrics metrics;
  std::unique_ptr<RunPool> runs;
  RealClock clock;
  std::unique_ptr<Scheduler> scheduler;
  PolicyStore policy{"/nonexistent/chaosd-fuzz-policy.yaml"};  // set(): no grants
  std::unique_ptr<Api> api;

  Daemon() {
    (void)log::setup(log::Format::kText, "off");
    std::string tmpl = (std::filesystem::temp_directory_path() / "chaosd-fuzz-api-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    registerBuiltinFaults(registry);
    auto j = openJournal(dir + "/journal.db");
    if (!j) std::abort();
    journal = std::make_unique<FaultJournal>(std::move(*j));
    RunPoolConfig config;
    config.stateDir = dir;
    config.policy = &policy;
    runs = std::make_unique<RunPool>(*journal, registry, metrics, config);
    runs->shutdown("fuzzing: no run starts");
    scheduler = std::make_unique<Scheduler>(
        *journal, clock, metrics, [](const ScheduleRecord&) -> Result<std::string> {
          return Error(ErrorCode::kAborted, "fuzzing: no run starts");
        });
    policy.set(Policy{});
    ApiContext ctx;
    ctx.journal = journal.get();
    ctx.registry = &registry;
    ctx.runs = runs.get();
    ctx.scheduler = scheduler.get();
    ctx.metrics = &metrics;
    ctx.access.group = kFuzzGroup;
    ctx.policy = &policy;
    api = std::make_unique<Api>(ctx);
  }
  ~Daemon() {
    api.reset();
    scheduler.reset();
    runs.reset();
    journal.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

Daemon& daemonUnderTest() {
  static Daemon d;
  return d;
}

std::string_view nextLine(std::string_view& text) {
  const size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

HttpRequest parseRequest(std::string_view text) {
  HttpRequest req;
  req.peer = PeerCred{::getpid(), 0, 0};
  std::string_view first = nextLine(text);
  const size_t sp = first.find(' ');
  req.method = std::string(first.substr(0, sp));
  std::string_view target = sp == std::string_view::npos ? "" : first.substr(sp + 1);
  const size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    const size_t eq = pair.find('=');
    req.query.emplace_back(pair.substr(0, eq),
                           eq == std::string_view::npos ? "" : pair.substr(eq + 1));
  }
  while (!text.empty()) {
    std::string_view line = nextLine(text);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "x-fuzz-uid") {
      req.peer->uid = static_cast<uid_t>(std::strtoul(std::string(value).c_str(), nullptr, 10));
      req.peer->gid = kFuzzGroup;
      continue;
    }
    req.headers[name] = std::string(value);
  }
  req.body = std::string(text);
  return req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const HttpRequest req = parseRequest(std::string_view(reinterpret_cast<const char*>(data), size));
  const HttpResponse res = daemonUnderTest().api->handle(req);
  // Every answer is a status a client understands, and an error is the documented JSON shape.
  if (res.status < 200 || res.status > 599) __builtin_trap();
  if (res.status >= 400 && res.contentType == "application/json" &&
      res.body.find("\"error\"") == std::string::npos) {
    __builtin_trap();
  }
  return 0;
}
