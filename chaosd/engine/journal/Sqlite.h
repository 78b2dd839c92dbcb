#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"
#include "chaosd/engine/journal/FaultJournal.h"

// The little of SQLite the fault journal needs: errors as values with an ErrorCode, RAII
// handles, and a prepared statement whose bind errors are reported by step().
namespace chaosd::sqlite {

int64_t toNanos(WallTime t);
WallTime fromNanos(int64_t ns);

ErrorCode codeOf(int rc);
Error sqlError(sqlite3* db, std::string_view what, int rc);

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

// One prepared statement. Bind errors are kept and reported by step(), so call sites bind
// in a row without checking each.
class Statement {
 public:
  static Result<Statement> prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    if (rc != SQLITE_OK) return sqlError(db, "preparing statement", rc);
    return Statement(db, raw);
  }

  Statement& bind(int index, int64_t value) {
    note(sqlite3_bind_int64(stmt_.get(), index, value));
    return *this;
  }
  Statement& bind(int index, std::string_view value) {
    note(sqlite3_bind_text(stmt_.get(), index, value.data(), static_cast<int>(value.size()),
                           SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int index, const std::optional<WallTime>& value) {
    note(value ? sqlite3_bind_int64(stmt_.get(), index, toNanos(*value))
               : sqlite3_bind_null(stmt_.get(), index));
    return *this;
  }

  // true: a row is ready; false: done.
  // Ready to be run again with new bindings (a statement prepared once for many rows).
  void reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
    bindRc_ = SQLITE_OK;
  }
  Result<bool> step() {
    if (bindRc_ != SQLITE_OK) return sqlError(db_, "binding parameters", bindRc_);
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlError(db_, "executing statement", rc);
  }
  Result<void> run() {
    auto r = step();
    if (!r) return std::move(r).error();
    return success();
  }

  int64_t integer(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  bool isNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col)));
  }
  std::optional<WallTime> time(int col) const {
    if (isNull(col)) return std::nullopt;
    return fromNanos(integer(col));
  }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void note(int rc) {
    if (bindRc_ == SQLITE_OK) bindRc_ = rc;
  }

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  int bindRc_ = SQLITE_OK;
};

// Runs SQL without results (schema, pragmas).
Result<void> exec(sqlite3* db, const char* sql, std::string_view what);
// The first column of the first row of a query; kInternal when there is no row.
Result<int64_t> queryInt(sqlite3* db, const char* sql);
Result<std::string> queryText(sqlite3* db, const char* sql);

}  // namespace chaosd::sqlite
