#include "sqlite.h"

#include <utility>

namespace tidegate::buffer::sql {

Db::Db(const std::filesystem::path& path, int flags) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw SqliteError(rc, "open " + path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

Db::Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

void Db::fail(int rc, std::string_view context) const {
  std::string msg(context);
  msg += ": ";
  msg += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  throw SqliteError(db_ ? sqlite3_extended_errcode(db_) : rc, msg);
}

void Db::exec(std::string_view sql) {
  std::string owned(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = owned + ": " + (err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    throw SqliteError(sqlite3_extended_errcode(db_), msg);
  }
}

std::optional<std::int64_t> Db::query_int(std::string_view sql) {
  Stmt stmt(*this, sql, false);
  if (!stmt.step() || stmt.column_is_null(0)) return std::nullopt;
  return stmt.column_int(0);
}

std::optional<std::string> Db::query_text(std::string_view sql) {
  Stmt stmt(*this, sql, false);
  if (!stmt.step() || stmt.column_is_null(0)) return std::nullopt;
  return stmt.column_text(0);
}

void Db::rollback_quietly() noexcept {
  if (in_transaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Stmt::Stmt(Db& db, std::string_view sql, bool persistent) : db_(&db) {
  unsigned flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0;
  int rc = sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()), flags, &stmt_,
                              nullptr);
  if (rc != SQLITE_OK) db.fail(rc, "prepare " + std::string(sql));
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt::Stmt(Stmt&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Stmt& Stmt::bind(int index, std::int64_t value) {
  db_->check(sqlite3_bind_int64(stmt_, index, value), "bind");
  return *this;
}

Stmt& Stmt::bind_text(int index, std::string_view value) {
  db_->check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                               SQLITE_STATIC),
             "bind");
  return *this;
}

Stmt& Stmt::bind_blob(int index, std::string_view value) {
  // A zero-length blob must stay a blob, not NULL: SQLite binds NULL for a
  // null pointer, so point at a static byte instead.
  static const char kEmpty = 0;
  const char* data = value.empty() ? &kEmpty : value.data();
  db_->check(sqlite3_bind_blob(stmt_, index, data, static_cast<int>(value.size()), SQLITE_STATIC),
             "bind");
  return *this;
}

Stmt& Stmt::bind_null(int index) {
  db_->check(sqlite3_bind_null(stmt_, index), "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
  sqlite3_reset(stmt_);
  db_->fail(rc, "step " + sql);
}

void Stmt::run() {
  ResetOnExit guard(*this);
  while (step()) {
  }
}

void Stmt::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Stmt::column_text(int index) const {
  const auto* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

std::string Stmt::column_blob(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

}  // namespace tidegate::buffer::sql
