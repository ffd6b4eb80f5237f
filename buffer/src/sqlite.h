// Thin RAII layer over the SQLite C API. Every call's result is checked; a
// failure becomes SqliteError carrying SQLite's extended code, which callers
// at the buffer's boundary turn into a Status.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tidegate::buffer::sql {

class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }
  int primary() const { return code_ & 0xff; }
  bool disk_full() const { return primary() == SQLITE_FULL; }
  bool corrupt() const { return primary() == SQLITE_CORRUPT || primary() == SQLITE_NOTADB; }

 private:
  int code_;
};

class Stmt;

class Db {
 public:
  Db() = default;
  // Opens `path` with the given SQLITE_OPEN_* flags; throws SqliteError.
  Db(const std::filesystem::path& path, int flags);
  ~Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() const { return db_; }
  explicit operator bool() const { return db_ != nullptr; }

  void exec(std::string_view sql);
  // First column of the first row as integer / text, if any row.
  std::optional<std::int64_t> query_int(std::string_view sql);
  std::optional<std::string> query_text(std::string_view sql);
  bool in_transaction() const { return db_ && sqlite3_get_autocommit(db_) == 0; }
  // Rolls back if a transaction is open; never throws (used on error paths).
  void rollback_quietly() noexcept;

  [[noreturn]] void fail(int rc, std::string_view context) const;
  void check(int rc, std::string_view context) const {
    if (rc != SQLITE_OK) fail(rc, context);
  }

 private:
  sqlite3* db_ = nullptr;
};

class Stmt {
 public:
  Stmt() = default;
  // `persistent`: kept for the connection's lifetime (SQLITE_PREPARE_PERSISTENT).
  Stmt(Db& db, std::string_view sql, bool persistent = true);
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binding (1-based, as in SQLite). Text and blobs are bound SQLITE_STATIC:
  // the caller keeps them alive until the statement is reset.
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, std::uint64_t value) { return bind(index, static_cast<std::int64_t>(value)); }
  Stmt& bind_text(int index, std::string_view value);
  Stmt& bind_blob(int index, std::string_view value);
  Stmt& bind_null(int index);

  // Advances; true while a row is available, false when done. Throws on error.
  bool step();
  // Steps a statement that returns no rows, then resets it.
  void run();
  void reset() noexcept;

  std::int64_t column_int(int index) const { return sqlite3_column_int64(stmt_, index); }
  bool column_is_null(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }
  std::string column_text(int index) const;
  std::string column_blob(int index) const;

 private:
  Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when leaving a scope, so a thrown error never leaves it
// holding a read transaction open.
class ResetOnExit {
 public:
  explicit ResetOnExit(Stmt& stmt) : stmt_(stmt) {}
  ~ResetOnExit() { stmt_.reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Stmt& stmt_;
};

}  // namespace tidegate::buffer::sql
