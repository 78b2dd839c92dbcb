#include "chaosd/engine/probes/CommandProber.h"

#include "chaosd/base/Units.h"
#include "chaosd/engine/probes/BoundedCommand.h"

namespace chaosd {

Result<std::unique_ptr<Probe>> CommandProber::create(const ProbeSpec& spec, const Clock& clock,
                                                     std::optional<Credentials> runAs) {
  if (spec.command.argv.empty() || spec.command.argv[0].empty()) {
    return Error(ErrorCode::kInvalid, "command probe needs a non-empty argv");
  }
  ValueMatch defaultExit;
  defaultExit.values = {"0"};
  auto exitCode = ValueMatcher::create(spec.tolerance.exitCode.value_or(defaultExit), "exitCode");
  if (!exitCode) return std::move(exitCode).error();
  std::optional<SearchRegex> stdoutRegex;
  if (spec.tolerance.stdoutRegex) {
    auto compiled = SearchRegex::compile(*spec.tolerance.stdoutRegex, "stdout regex");
    if (!compiled) return std::move(compiled).error();
    stdoutRegex = std::move(*compiled);
  }
  return std::unique_ptr<Probe>(new CommandProber(spec, clock, std::move(*exitCode),
                                                  std::move(stdoutRegex), std::move(runAs)));
}

Observation CommandProber::observe() {
  auto outcome = runBoundedCommand({.argv = spec().command.argv,
                                    .env = spec().command.env,
                                    .timeout = spec().timeout,
                                    .maxStdout = kMaxStdoutBytes,
                                    .runAs = runAs_});
  if (!outcome) return Observation::fail(outcome.error().message());
  if (outcome->timedOut) {
    return Observation::fail("timeout after " + describeTimeout(spec().timeout) +
                             " (process group killed)");
  }
  if (outcome->signal) {
    return Observation::fail("killed by " + units::signalName(*outcome->signal));
  }
  const int code = outcome->exitCode.value_or(-1);
  std::string detail = "exit " + std::to_string(code);
  if (!exitCode_.matches(static_cast<double>(code))) {
    return Observation::fail(detail + " (expected " + exitCode_.describe() + ")", code);
  }
  if (stdout_ && !stdout_->search(outcome->stdoutText)) {
    return Observation::fail(detail + ", stdout did not match " + stdout_->describe(), code);
  }
  return Observation::pass(detail, code);
}

}  // namespace chaosd
