#include "chaosd/engine/probes/Probe.h"

#include "chaosd/base/Units.h"
#include "chaosd/engine/probes/CommandProber.h"
#include "chaosd/engine/probes/HttpProber.h"
#include "chaosd/engine/probes/ProcessProber.h"
#include "chaosd/engine/probes/PrometheusProber.h"
#include "chaosd/engine/probes/TcpProber.h"

namespace chaosd {

ProbeSample TimedProbe::sample(Phase phase) {
  ProbeSample s;
  s.probe = spec_.name;
  s.phase = phase;
  s.wallStart = clock_.wallNow();
  s.start = clock_.now();
  Observation seen;
  try {
    seen = observe();
  } catch (const std::exception& e) {  // bad_alloc and the like: a failed sample, not a crash
    seen = Observation::fail(std::string("internal error: ") + e.what());
  }
  s.duration = clock_.now() - s.start;
  s.ok = seen.ok;
  s.detail = std::move(seen.detail);
  s.value = seen.value;
  s.stream = std::move(seen.stream);
  return s;
}

std::string describeTimeout(Duration timeout) { return units::formatDuration(timeout); }

Result<std::unique_ptr<Probe>> makeProbe(const ProbeSpec& spec, const Clock& clock,
                                         const std::optional<Credentials>& runAs) {
  if (spec.timeout <= Duration::zero()) {
    return Error(ErrorCode::kInvalid, "probe " + spec.name + ": timeout must be positive");
  }
  Result<std::unique_ptr<Probe>> probe = [&]() -> Result<std::unique_ptr<Probe>> {
    switch (spec.kind) {
      case ProbeKind::kHttp:
        return HttpProber::create(spec, clock);
      case ProbeKind::kTcp:
        return TcpProber::create(spec, clock);
      case ProbeKind::kCommand:
        return CommandProber::create(spec, clock, runAs);
      case ProbeKind::kProcess:
        return ProcessProber::create(spec, clock);
      case ProbeKind::kPrometheus:
        return PrometheusProber::create(spec, clock);
    }
    return Error(ErrorCode::kInternal, "unknown probe kind");
  }();
  if (!probe) return std::move(probe).error().withContext("probe " + spec.name);
  return probe;
}

Result<std::unique_ptr<Probe>> makeProbe(const ProbeSpec& spec) {
  static const RealClock kClock;
  return makeProbe(spec, kClock);
}

}  // namespace chaosd
