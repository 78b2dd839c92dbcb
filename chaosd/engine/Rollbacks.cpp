#include "chaosd/engine/Rollbacks.h"

#include <csignal>

#include "chaosd/engine/probes/BoundedCommand.h"

namespace chaosd {

RollbackRecord runRollbackCommand(const RollbackSpec& rollback,
                                  const std::optional<Credentials>& runAs) {
  RollbackRecord rec;
  rec.name = rollback.name;
  rec.command = rollback.command;
  CommandRequest req;
  req.argv = rollback.command;
  req.env = rollback.env;
  req.timeout = rollback.timeout;
  req.runAs = runAs;
  auto start = std::chrono::steady_clock::now();
  auto out = runBoundedCommand(req);
  rec.duration = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start);
  if (!out) {
    rec.detail = out.error().describe();
    return rec;
  }
  rec.exitCode = out->exitCode;
  if (out->timedOut) {
    rec.detail = "timed out and was killed";
  } else if (out->signal) {
    rec.detail = "killed by signal " + std::to_string(*out->signal);
  } else if (out->exitCode && *out->exitCode != 0) {
    rec.detail = "exit code " + std::to_string(*out->exitCode);
  } else {
    rec.ok = true;
    rec.detail = "exit code 0";
  }
  return rec;
}

}  // namespace chaosd
