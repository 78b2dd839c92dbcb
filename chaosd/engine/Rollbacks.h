#pragma once

#include "chaosd/engine/RunResult.h"

namespace chaosd {

// Runs one rollback command (argv, no shell) within its timeout; its process group is killed
// at the timeout.
RollbackRecord runRollbackCommand(const RollbackSpec& rollback);

}  // namespace chaosd
