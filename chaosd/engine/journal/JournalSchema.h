#pragma once

#include <sqlite3.h>

#include "chaosd/base/Result.h"

namespace chaosd {

// Brings the journal's schema from whatever version its user_version says up to
// kJournalSchemaVersion (FaultJournal.h), step by step; call inside a write transaction.
// kUnsupported when the journal is newer than this chaosd. Every version's steps stay here:
// a journal of any earlier release opens (tests in FaultJournalTest migrate v1 and v2).
Result<void> upgradeJournalSchema(sqlite3* db);

}  // namespace chaosd
