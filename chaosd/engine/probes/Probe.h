#pragma once

#include <memory>
#include <optional>
#include <string>

#include "chaosd/base/Clock.h"
#include "chaosd/base/Credentials.h"
#include "chaosd/base/Result.h"
#include "chaosd/engine/probes/ProbeSample.h"
#include "experiments/model/Experiment.h"

namespace chaosd {

// A steady-state probe: takes one sample at a time and judges it against the per-sample part
// of the tolerance (status, body, json, exitCode, stdout, count, running, value). Phase-wide
// judgement (success rate, latency, baseline) is Verdict's.
class Probe {
 public:
  virtual ~Probe() = default;

  // Takes one sample now and returns it. Synchronous; never throws. Returns within the
  // probe's timeout plus a small margin (judging what was read comes on top: a regex over at
  // most a bounded body). Not reentrant: the engine calls it from one worker thread at a time.
  virtual ProbeSample sample(Phase phase) = 0;

  virtual const ProbeSpec& spec() const = 0;
};

// What one attempt saw, before it is stamped with times.
struct Observation {
  bool ok = false;
  std::string detail;
  std::optional<double> value;
  std::optional<StreamTiming> stream;  // http: a streamed response's timing

  static Observation pass(std::string detail, std::optional<double> value = std::nullopt) {
    return {true, std::move(detail), value, std::nullopt};
  }
  static Observation fail(std::string detail, std::optional<double> value = std::nullopt) {
    return {false, std::move(detail), value, std::nullopt};
  }
};

// The shared half of the built-in probes: stamps start and duration around observe().
class TimedProbe : public Probe {
 public:
  TimedProbe(ProbeSpec spec, const Clock& clock) : spec_(std::move(spec)), clock_(clock) {}

  ProbeSample sample(Phase phase) final;
  const ProbeSpec& spec() const final { return spec_; }

 protected:
  // One attempt, bounded by spec().timeout. Never throws.
  virtual Observation observe() = 0;

 private:
  ProbeSpec spec_;
  const Clock& clock_;
};

// Builds the probe a spec describes, compiling its regexes and JSON pointers once. kInvalid
// for a spec the parser should have refused (empty argv, bad regex, bad pointer). Sample
// times come from `clock`, which must outlive the probe; the first overload uses the real one.
Result<std::unique_ptr<Probe>> makeProbe(const ProbeSpec& spec);
// `runAs`: who a command probe's command runs as (the daemon's non-root caller); unset: this
// process.
Result<std::unique_ptr<Probe>> makeProbe(const ProbeSpec& spec, const Clock& clock,
                                         const std::optional<Credentials>& runAs = std::nullopt);

// "1s", "250ms": how a probe's timeout reads in a sample's detail.
std::string describeTimeout(Duration timeout);

}  // namespace chaosd
