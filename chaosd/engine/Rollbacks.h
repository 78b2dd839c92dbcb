#pragma once

#include <optional>

#include "chaosd/base/Credentials.h"
#include "chaosd/engine/RunResult.h"

namespace chaosd {

// Runs one rollback command (argv, no shell) within its timeout; its process group is killed
// at the timeout.
// `runAs`: who it runs as (the daemon's non-root caller); unset: this process.
RollbackRecord runRollbackCommand(const RollbackSpec& rollback,
                                  const std::optional<Credentials>& runAs = std::nullopt);

}  // namespace chaosd
