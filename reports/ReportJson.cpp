#include "reports/ReportJson.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "chaosd/base/Fd.h"
#include "chaosd/base/StartAt.h"
#include "chaosd/base/Units.h"
#include "chaosd/engine/probes/ValueMatcher.h"
#include "chaosd/engine/probes/Verdict.h"
#include "injectors/FaultRegistry.h"

namespace chaosd {
namespace {

int64_t ns(Duration d) { return d.count(); }

nlohmann::json optTime(const std::optional<WallClock>& t) {
  return t ? nlohmann::json(isoTime(*t)) : nlohmann::json(nullptr);
}

nlohmann::json matchJson(const std::optional<ValueMatch>& m) {
  return m ? nlohmann::json(m->describe()) : nlohmann::json(nullptr);
}

std::string operatorOf(const Comparison& c) {
  const std::string text = c.describe();
  return text.substr(0, text.find(' '));
}

nlohmann::json optionalNs(const std::optional<Duration>& d) {
  return d ? nlohmann::json(d->count()) : nlohmann::json(nullptr);
}

// A streamed response's figures; the gaps summarised (every gap would make the report grow
// with every token).
nlohmann::json streamTimingJson(const StreamTiming& t) {
  nlohmann::json j{{"eventStream", t.eventStream},
                   {"firstByteNs", optionalNs(t.firstByte)},
                   {"firstEventNs", optionalNs(t.firstEvent)},
                   {"events", t.events}};
  const auto rate = t.eventRate();
  j["eventRate"] = rate ? nlohmann::json(*rate) : nlohmann::json(nullptr);
  if (!t.gaps.empty()) {
    Duration sum{0};
    for (const Duration g : t.gaps) sum += g;
    j["maxGapNs"] = std::max_element(t.gaps.begin(), t.gaps.end())->count();
    j["meanGapNs"] = sum.count() / static_cast<int64_t>(t.gaps.size());
  }
  return j;
}

nlohmann::json streamFiguresJson(const StreamFigures& f) {
  auto percentiles = [](const StreamPercentiles& p) {
    return nlohmann::json{
        {"count", p.count}, {"p5", p.p5}, {"p50", p.p50}, {"p95", p.p95}, {"p99", p.p99}};
  };
  nlohmann::json j{{"streamed", f.streamed},
                   {"firstByteNs", percentiles(f.firstByte)},
                   {"firstEventNs", percentiles(f.firstEvent)},
                   {"eventGapNs", percentiles(f.eventGap)},
                   {"eventRate", percentiles(f.eventRate)},
                   {"checks", nlohmann::json::array()}};
  for (const auto& c : f.checks) {
    j["checks"].push_back(
        {{"metric", std::string(streamMetricName(c.metric))},
         {"percentile", c.percentile},
         {"observed", c.observed},
         {"observedText", formatStreamValue(c.metric, c.observed)},
         {"bound", operatorOf(c.bound) + " " + formatStreamValue(c.metric, c.bound.value)},
         {"held", c.held}});
  }
  return j;
}

nlohmann::json loadJson(const LoadReport& l) {
  nlohmann::json j{{"name", l.name},
                   {"url", l.url},
                   {"method", l.method},
                   {"requests", l.requests},
                   {"lateness99Ns", l.lateness99},
                   {"phases", nlohmann::json::array()}};
  if (l.steps.empty()) j["rate"] = l.rate;
  for (const auto& st : l.steps) {
    j["steps"].push_back({{"rate", st.rate}, {"durationNs", st.duration.count()}});
  }
  for (const auto& p : l.phases) {
    j["phases"].push_back({{"phase", std::string(phaseName(p.phase))},
                           {"seconds", p.seconds},
                           {"due", p.due},
                           {"sent", p.sent},
                           {"ok", p.ok},
                           {"errors", p.errors},
                           {"offeredRate", p.offeredRate},
                           {"sentRate", p.sentRate},
                           {"throughput", p.throughput},
                           {"p50Ns", p.p50},
                           {"p90Ns", p.p90},
                           {"p99Ns", p.p99},
                           {"p999Ns", p.p999},
                           {"maxNs", p.max},
                           {"firstByteP50Ns", p.firstByteP50},
                           {"firstByteP99Ns", p.firstByteP99},
                           {"meanLatencySeconds", p.meanLatency},
                           {"inFlight", p.inFlight},
                           {"littleLambdaW", p.littleLw},
                           {"littleRatio", p.littleRatio},
                           {"errorKinds", p.errorKinds},
                           {"judged", p.judged},
                           {"held", p.held},
                           {"reasons", p.reasons}});
    if (p.utilisation) j["phases"].back()["utilisation"] = *p.utilisation;
    if (p.streamed > 0) {
      j["phases"].back()["stream"] = {{"streamed", p.streamed},
                                      {"firstEventP50Ns", p.firstEventP50},
                                      {"firstEventP99Ns", p.firstEventP99},
                                      {"eventGapP50Ns", p.eventGapP50},
                                      {"eventGapP99Ns", p.eventGapP99},
                                      {"eventRateP50", p.eventRateP50}};
    }
  }
  if (l.capacity) {
    const LoadCapacity& c = *l.capacity;
    nlohmann::json cj{{"from", c.spec.from},
                      {"step", c.spec.step},
                      {"max", c.spec.max},
                      {"everyNs", c.spec.every.count()},
                      {"cooldownNs", c.spec.cooldown.count()},
                      {"stopped", c.stopped},
                      {"steps", nlohmann::json::array()}};
    cj["capacity"] = c.capacity ? nlohmann::json(*c.capacity) : nlohmann::json();
    cj["brokeAt"] = c.brokeAt ? nlohmann::json(*c.brokeAt) : nlohmann::json();
    for (const auto& s : c.steps) {
      const LoadPhase& p = s.figures;
      cj["steps"].push_back({{"rate", s.rate},
                             {"seconds", p.seconds},
                             {"due", p.due},
                             {"ok", p.ok},
                             {"sentRate", p.sentRate},
                             {"throughput", p.throughput},
                             {"p50Ns", p.p50},
                             {"p99Ns", p.p99},
                             {"inFlight", p.inFlight},
                             {"errorKinds", p.errorKinds},
                             {"held", p.held},
                             {"reasons", p.reasons}});
    }
    j["capacity"] = std::move(cj);
  }
  return j;
}

nlohmann::json toleranceJson(const Tolerance& t) {
  nlohmann::json j = nlohmann::json::object();
  if (t.status) j["status"] = matchJson(t.status);
  if (t.body) j["body"] = *t.body;
  for (const auto& [ptr, m] : t.json) j["json"][ptr] = m.describe();
  if (t.exitCode) j["exitCode"] = matchJson(t.exitCode);
  if (t.stdoutRegex) j["stdout"] = *t.stdoutRegex;
  if (t.count) j["count"] = matchJson(t.count);
  if (t.running) j["running"] = *t.running;
  if (t.value) j["value"] = matchJson(t.value);
  if (t.successRate) j["successRate"] = t.successRate->describe();
  for (const auto& l : t.latency) {
    std::ostringstream key;
    key << "p" << l.percentile;
    std::string op = l.bound.describe();
    op = op.substr(0, op.find(' '));
    j["latency"][key.str()] =
        op + " " + units::formatDuration(Duration(static_cast<int64_t>(l.bound.value)));
  }
  for (const auto& b : t.stream) {
    std::ostringstream key;
    key << "p" << b.percentile;
    std::string op = b.bound.describe();
    op = op.substr(0, op.find(' '));
    j[std::string(streamMetricName(b.metric))][key.str()] =
        op + " " +
        (b.metric == StreamMetric::kEventRate
             ? formatNumber(b.bound.value)
             : units::formatDuration(Duration(static_cast<int64_t>(b.bound.value))));
  }
  if (t.baseline) {
    const auto& b = *t.baseline;
    j["baseline"] = {{"alpha", b.alpha},
                     {"quantile", b.quantile},
                     {"test", b.test == BaselineTest::kBlocks ? "blocks" : "exceedance"}};
    if (b.minRelative > 0) j["baseline"]["minEffect"] = units::formatPercent(b.minRelative);
    if (b.minAbsolute > Duration::zero()) {
      j["baseline"]["minEffect"] = units::formatDuration(b.minAbsolute);
    }
    if (b.minRelative > 0 || b.minAbsolute > Duration::zero()) {
      j["baseline"]["minEffectBy"] = b.minEffectBy == MinEffectBy::kBound ? "bound" : "estimate";
    }
    if (!b.control.empty()) j["baseline"]["control"] = b.control;
  }
  return j;
}

nlohmann::json baselineCheckJson(const BaselineCheck& b) {
  nlohmann::json j = {
      {"test", b.test == BaselineTest::kBlocks ? "blocks" : "exceedance"},
      {"alpha", b.alpha},
      {"quantile", b.quantile},
      {"minEffectShare", b.minRelative},
      {"minEffectNs", b.minAbsolute.count()},
      {"minEffectBy", b.minEffectBy == MinEffectBy::kBound ? "bound" : "estimate"},
      {"control", b.control.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.control)},
      {"baselineCount", b.baselineCount},
      {"thresholdNs", b.threshold.count()},
      {"phaseQuantileNs", b.phaseQuantile.count()},
      {"count", b.count},
      {"exceedances", b.exceedances},
      {"expected", b.expected},
      {"pValue", b.pValue},
      {"effect", b.effect},
      {"effectLow", b.effectLow},
      {"effectHigh", b.effectHigh},
      {"differenceNs", b.difference.count()},
      {"differenceLowNs", b.differenceLow.count()},
      {"differenceHighNs", b.differenceHigh.count()},
      {"blockLength", b.blockLength},
      {"resamples", b.resamples},
      {"deviated", b.deviated}};
  if (b.calibration) {
    j["calibration"] = {{"runs", b.calibration->runs},
                        {"falseAlarms", b.calibration->falseAlarms},
                        {"source", b.calibration->source}};
  }
  return j;
}

nlohmann::json probeSpecJson(const ProbeSpec& p) {
  nlohmann::json j{{"name", p.name},
                   {"kind", std::string(probeKindName(p.kind))},
                   {"every", units::formatDuration(p.every)},
                   {"timeout", units::formatDuration(p.timeout)},
                   {"abort", p.abort},
                   {"tolerance", toleranceJson(p.tolerance)}};
  for (auto ph : p.phases) j["phases"].push_back(std::string(phaseName(ph)));
  switch (p.kind) {
    case ProbeKind::kHttp:
      j["http"] = {{"method", p.http.method}, {"url", p.http.url}, {"tlsVerify", p.http.tlsVerify}};
      break;
    case ProbeKind::kTcp:
      j["tcp"] = {{"host", p.tcp.host}, {"port", p.tcp.port}};
      break;
    case ProbeKind::kCommand:
      j["command"] = {{"argv", p.command.argv}};
      break;
    case ProbeKind::kProcess:
      j["process"] = {{"name", p.process.selector.name}};
      break;
    case ProbeKind::kPrometheus:
      j["prometheus"] = {{"url", p.prometheus.url}, {"query", p.prometheus.query}};
      break;
  }
  return j;
}

nlohmann::json stepJson(const StepSpec& s) {
  nlohmann::json j{{"name", s.name}};
  switch (s.kind) {
    case StepKind::kFault:
      j["fault"] = s.fault;
      if (!s.target.empty()) j["target"] = s.target;
      j["args"] = s.args;
      if (s.duration) j["duration"] = units::formatDuration(*s.duration);
      break;
    case StepKind::kPause:
      j["pause"] = units::formatDuration(s.duration.value_or(Duration{0}));
      break;
    case StepKind::kParallel:
      for (const auto& m : s.parallel) j["parallel"].push_back(stepJson(m));
      break;
  }
  if (s.at) j["at"] = units::formatDuration(*s.at);
  if (!s.after.empty()) j["after"] = s.after;
  return j;
}

void redactInto(nlohmann::json& node, const std::vector<std::string>& secrets) {
  if (node.is_string()) {
    std::string s = node.get<std::string>();
    bool changed = false;
    for (const auto& secret : secrets) {
      for (size_t pos = s.find(secret); pos != std::string::npos; pos = s.find(secret, pos + 3)) {
        s.replace(pos, secret.size(), "***");
        changed = true;
      }
    }
    if (changed) node = s;
  } else if (node.is_structured()) {
    for (auto& child : node) redactInto(child, secrets);
  }
}

}  // namespace

std::string isoTime(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03lldZ", buf, static_cast<long long>(ms));
  return out;
}

nlohmann::json experimentJson(const Experiment& e) {
  nlohmann::json j{{"apiVersion", e.apiVersion},
                   {"file", e.file},
                   {"metadata",
                    {{"name", e.metadata.name},
                     {"title", e.metadata.title},
                     {"description", e.metadata.description},
                     {"tags", e.metadata.tags},
                     {"labels", e.metadata.labels}}}};
  for (const auto& [k, v] : e.config) j["config"][k] = v.secret ? "***" : v.value;
  for (const auto& t : e.targets) {
    nlohmann::json tj{{"kind", std::string(targetKindName(t.kind))}};
    switch (t.kind) {
      case TargetKind::kProcess: {
        const auto& p = t.process;
        if (p.pid) tj["pid"] = *p.pid;
        if (!p.name.empty()) tj["name"] = p.name;
        if (!p.cmdline.empty()) tj["cmdline"] = p.cmdline;
        if (!p.cgroup.empty()) tj["cgroup"] = p.cgroup;
        if (!p.user.empty()) tj["user"] = p.user;
        if (!p.pidFile.empty()) tj["pidFile"] = p.pidFile;
        if (t.selection.seed) tj["seed"] = *t.selection.seed;
        break;
      }
      case TargetKind::kExec:
        tj["argv"] = t.exec.argv;
        break;
      case TargetKind::kInterface:
        tj["interface"] = t.interface.name;
        tj["netns"] = t.interface.netns.describe();
        break;
      case TargetKind::kPath:
        tj["path"] = t.path;
        break;
      case TargetKind::kContainer: {
        const auto& c = t.container;
        if (!c.id.empty()) tj["id"] = c.id;
        if (!c.name.empty()) tj["name"] = c.name;
        if (!c.labels.empty()) tj["labels"] = c.labels;
        if (!c.pod.empty()) tj["pod"] = c.pod;
        if (c.kubernetes) {
          tj["kubernetes"] = {{"namespace", c.kubernetes->ns}, {"pod", c.kubernetes->pod}};
          if (!c.kubernetes->container.empty()) {
            tj["kubernetes"]["container"] = c.kubernetes->container;
          }
        }
        tj["runtime"] = std::string(containerRuntimeName(c.runtime));
        if (t.selection.seed) tj["seed"] = *t.selection.seed;
        break;
      }
    }
    j["targets"][t.name] = tj;
  }
  j["steadyState"] = {{"baseline", units::formatDuration(e.steadyState.baseline)},
                      {"recovery", units::formatDuration(e.steadyState.recovery)},
                      {"probes", nlohmann::json::array()}};
  for (const auto& p : e.steadyState.probes) j["steadyState"]["probes"].push_back(probeSpecJson(p));
  for (const auto& s : e.method) j["method"].push_back(stepJson(s));
  for (const auto& r : e.rollbacks)
    j["rollbacks"].push_back({{"name", r.name}, {"command", r.command}});
  j["guardrails"] = {{"maxDuration", units::formatDuration(e.guardrails.maxDuration)},
                     {"maxTargets", e.guardrails.maxTargets},
                     {"maxPercent", e.guardrails.maxPercent},
                     {"maxFaults", e.guardrails.maxFaults},
                     {"allowSsh", e.guardrails.allowSsh}};
  j["report"] = {{"formats", e.report.formats}, {"dir", e.report.dir}};
  if (e.schedule) j["schedule"] = {{"cron", e.schedule->cron}, {"timezone", e.schedule->timezone}};
  if (e.load) {
    j["load"] = {{"name", e.load->name},
                 {"url", e.load->http.url},
                 {"method", e.load->http.method},
                 {"timeout", units::formatDuration(e.load->timeout)},
                 {"maxInFlight", e.load->maxInFlight},
                 {"tolerance", toleranceJson(e.load->tolerance)}};
    if (e.load->steps.empty()) j["load"]["rate"] = e.load->rate;
    for (const auto& st : e.load->steps) {
      j["load"]["steps"].push_back(
          {{"rate", st.rate}, {"duration", units::formatDuration(st.duration)}});
    }
    if (const auto& c = e.load->capacity) {
      j["load"]["capacity"] = {{"from", c->from},
                               {"step", c->step},
                               {"max", c->max},
                               {"every", units::formatDuration(c->every)},
                               {"cooldown", units::formatDuration(c->cooldown)}};
    }
  }
  return j;
}

std::string redactText(std::string text, const Experiment& experiment) {
  nlohmann::json j = std::move(text);
  redactSecrets(j, experiment);
  return j.get<std::string>();
}

void redactSecrets(nlohmann::json& doc, const Experiment& experiment) {
  std::vector<std::string> secrets;
  for (const auto& [k, v] : experiment.config) {
    if (v.secret && !v.value.empty()) secrets.push_back(v.value);
  }
  if (!secrets.empty()) redactInto(doc, secrets);
}

nlohmann::json reportJson(const Experiment& experiment, const RunResult& r) {
  auto rel = [&](Clock::TimePoint t) { return ns(t - r.startedMono); };
  nlohmann::json j{{"schema", kReportSchema},
                   {"runId", r.runId},
                   {"experiment", experimentJson(experiment)},
                   {"startedAt", isoTime(r.startedAt)},
                   {"endedAt", isoTime(r.endedAt)},
                   {"outcome", std::string(outcomeName(r.outcome))},
                   {"exitCode", r.exitCode()},
                   {"reasons", r.reasons},
                   {"auditClean", r.auditClean},
                   {"phases", nlohmann::json::array()},
                   {"faults", nlohmann::json::array()},
                   {"rollbacks", nlohmann::json::array()},
                   {"probes", nlohmann::json::array()}};
  // A synchronised start: the instant asked for, and how long after it the first fault was
  // applied here (what a fleet's start spread is made of).
  j["startAt"] = r.startAt ? nlohmann::json(formatStartAt(*r.startAt)) : nlohmann::json(nullptr);
  j["startLatenessUs"] = nullptr;
  if (r.startAt) {
    std::optional<WallClock> first;
    for (const auto& f : r.faults) {
      if (f.appliedAt && (!first || *f.appliedAt < *first)) first = f.appliedAt;
    }
    if (first) {
      j["startLatenessUs"] =
          std::chrono::duration_cast<std::chrono::microseconds>(*first - *r.startAt).count();
    }
  }
  for (const auto& p : r.phases) {
    j["phases"].push_back({{"phase", std::string(phaseName(p.phase))},
                           {"ran", p.ran},
                           {"skipped", p.skipped},
                           {"startedAt", isoTime(p.startedAt)},
                           {"endedAt", isoTime(p.endedAt)}});
  }
  for (const auto& f : r.faults) {
    nlohmann::json fj{{"id", f.faultId},
                      {"step", f.step},
                      {"type", f.type},
                      {"target", f.target},
                      {"description", f.description},
                      {"backend", f.backend},
                      {"args", f.args},
                      {"observed", f.observed},
                      {"revertible", f.revertible},
                      {"state", std::string(faultStateName(f.state))},
                      {"error", f.error},
                      {"plannedStartNs", ns(f.plannedStart)},
                      {"plannedEndNs", ns(f.plannedEnd)},
                      {"intentAt", optTime(f.intentAt)},
                      {"appliedAt", optTime(f.appliedAt)},
                      {"revertedAt", optTime(f.revertedAt)},
                      {"deadline", optTime(f.deadline)},
                      {"appliedOffsetNs", f.appliedMono ? nlohmann::json(rel(*f.appliedMono))
                                                        : nlohmann::json(nullptr)},
                      {"revertedOffsetNs", f.revertedMono ? nlohmann::json(rel(*f.revertedMono))
                                                          : nlohmann::json(nullptr)},
                      {"leftovers", f.leftovers},
                      {"impact", nlohmann::json::array()}};
    for (const auto& i : f.impact) {
      fj["impact"].push_back(
          {{"probe", i.probe},
           {"detected", i.detected},
           {"detectedAfterNs", i.detected ? nlohmann::json(ns(i.detectedAfter)) : nlohmann::json()},
           {"detectedBy", i.detected ? nlohmann::json(i.by) : nlohmann::json()},
           {"detail", i.detail},
           {"recovered", i.recovered},
           {"recoveredAfterNs",
            i.recovered ? nlohmann::json(ns(i.recoveredAfter)) : nlohmann::json()}});
    }
    j["faults"].push_back(fj);
  }
  if (r.load) j["load"] = loadJson(*r.load);
  j["execs"] = nlohmann::json::array();
  for (const auto& e : r.execs) {
    j["execs"].push_back({{"target", e.target},
                          {"argv", e.argv},
                          {"pid", e.pid},
                          {"log", e.log},
                          {"state", e.state},
                          {"error", e.error},
                          {"startedAt", optTime(e.startedAt)},
                          {"stoppedAt", optTime(e.stoppedAt)},
                          {"observed", e.observed}});
  }
  for (const auto& rb : r.rollbacks) {
    j["rollbacks"].push_back(
        {{"name", rb.name},
         {"command", rb.command},
         {"ok", rb.ok},
         {"exitCode", rb.exitCode ? nlohmann::json(*rb.exitCode) : nlohmann::json(nullptr)},
         {"detail", rb.detail},
         {"durationNs", ns(rb.duration)}});
  }
  for (const auto& p : r.probes) {
    nlohmann::json pj{{"name", p.name},
                      {"samples", nlohmann::json::array()},
                      {"verdicts", nlohmann::json::array()}};
    for (const auto& s : p.samples) {
      nlohmann::json sj{{"phase", std::string(phaseName(s.phase))},
                        {"at", isoTime(s.wallStart)},
                        {"offsetNs", rel(s.start)},
                        {"durationNs", ns(s.duration)},
                        {"ok", s.ok},
                        {"detail", s.detail},
                        {"value", s.value ? nlohmann::json(*s.value) : nlohmann::json(nullptr)}};
      if (s.stream) sj["stream"] = streamTimingJson(*s.stream);
      pj["samples"].push_back(std::move(sj));
    }
    for (const auto& v : p.verdicts) {
      nlohmann::json vj{
          {"phase", std::string(phaseName(v.phase))},
          {"held", v.held},
          {"reasons", v.reasons},
          {"count", v.count},
          {"passed", v.passed},
          {"availability", v.availability},
          {"successRate", v.successRate.describe()},
          {"p50Ns", ns(v.p50)},
          {"p95Ns", ns(v.p95)},
          {"p99Ns", ns(v.p99)},
          {"firstFailureOffsetNs",
           v.firstFailure ? nlohmann::json(rel(*v.firstFailure)) : nlohmann::json(nullptr)},
          {"firstFailureDetail", v.firstFailureDetail}};
      for (const auto& l : v.latency) {
        vj["latency"].push_back({{"percentile", l.percentile},
                                 {"observedNs", ns(l.observed)},
                                 {"bound", l.bound.describe()},
                                 {"held", l.held}});
      }
      if (v.baseline) {
        const auto& b = *v.baseline;
        vj["baseline"] = baselineCheckJson(b);
      }
      if (v.stream) vj["stream"] = streamFiguresJson(*v.stream);
      pj["verdicts"].push_back(vj);
    }
    j["probes"].push_back(pj);
  }
  redactSecrets(j, experiment);
  return j;
}

Result<std::string> writeReportJson(const nlohmann::json& report, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot create " + dir + ": " + ec.message());
  std::string path = dir + "/report.json";
  std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::fromErrno("open " + tmp, errno);
  std::string text = report.dump(2) + "\n";
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("write " + tmp, errno);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return Error::fromErrno("fsync " + tmp, errno);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Error::fromErrno("rename " + path, errno);
  return path;
}

}  // namespace chaosd
