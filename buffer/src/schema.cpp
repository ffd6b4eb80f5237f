#include "schema.h"

#include <string>

namespace tidegate::buffer::schema {

namespace {
// Sources' small durable state (see StateChange), e.g. the MQTT listener's
// sessions: written in the transactions of the records it goes with.
constexpr const char* kSourceStateTable =
    "CREATE TABLE IF NOT EXISTS source_state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID";
// Records meant for one sink only (replayed dead letters): few rows, read
// into memory at open. Older gateways ignore the table (and would send such
// a record to every sink: a duplicate, never a loss).
constexpr const char* kRecordTargetsTable =
    "CREATE TABLE IF NOT EXISTS record_targets (seq INTEGER PRIMARY KEY, sink TEXT NOT NULL)";
}  // namespace

void configure_connection(sql::Db& db) {
  // Wait instead of failing when the writer briefly holds a lock the reader
  // needs (WAL checkpoints, schema reads).
  sqlite3_busy_timeout(db.get(), 5000);
}

bool create_or_validate(sql::Db& db, std::int64_t now_ns, bool read_only, std::uint32_t page_size) {
  // Reading the header is the first touch of the file: a non-database fails
  // here with SQLITE_NOTADB.
  const std::int64_t app_id = db.query_int("PRAGMA application_id").value_or(0);
  const std::int64_t version = db.query_int("PRAGMA user_version").value_or(0);
  const std::int64_t tables =
      db.query_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").value_or(0);

  if (app_id == 0 && version == 0 && tables == 0) {
    if (read_only) throw IncompatibleError("empty file, not a tidegate buffer");
    // Before the first table: the page size is fixed once the file has one.
    if (page_size > 0) db.exec("PRAGMA page_size = " + std::to_string(page_size));
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(R"sql(
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE records (
          seq INTEGER PRIMARY KEY,
          ord INTEGER NOT NULL,
          off INTEGER NOT NULL,
          ingest_ns INTEGER NOT NULL,
          clock_synced INTEGER NOT NULL,
          source TEXT NOT NULL,
          partition_key TEXT NOT NULL,
          topic TEXT NOT NULL,
          payload BLOB NOT NULL,
          device_ts_ns INTEGER,
          content_type TEXT NOT NULL);
        CREATE TABLE cursors (
          sink TEXT PRIMARY KEY,
          acked_seq INTEGER NOT NULL,
          lost_by_eviction INTEGER NOT NULL DEFAULT 0,
          created_ns INTEGER NOT NULL);
        CREATE TABLE dead_letters (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          seq INTEGER,
          sink TEXT NOT NULL,
          reason TEXT NOT NULL,
          failed_ns INTEGER NOT NULL,
          ingest_ns INTEGER NOT NULL,
          clock_synced INTEGER NOT NULL,
          source TEXT NOT NULL,
          partition_key TEXT NOT NULL,
          topic TEXT NOT NULL,
          payload BLOB NOT NULL,
          device_ts_ns INTEGER,
          content_type TEXT NOT NULL);
      )sql");
      db.exec(kSourceStateTable);
      db.exec(kRecordTargetsTable);
      db.exec("INSERT INTO meta(key, value) VALUES ('next_seq', 1), ('next_ord', 0), "
              "('next_off', 0), ('evicted_total', 0), ('expired_total', 0), "
              "('dead_lettered_total', 0), ('created_ns', " + std::to_string(now_ns) + ")");
      db.exec("PRAGMA application_id = " + std::to_string(kApplicationId));
      db.exec("PRAGMA user_version = " + std::to_string(kVersion));
      db.exec("COMMIT");
    } catch (...) {
      db.rollback_quietly();
      throw;
    }
    return true;
  }

  if (app_id != kApplicationId) {
    throw IncompatibleError("not a tidegate buffer (application_id " + std::to_string(app_id) +
                            "); refusing to touch it: point buffer.path elsewhere");
  }
  if (version > kVersion) {
    throw IncompatibleError("buffer schema version " + std::to_string(version) +
                            " is newer than this tidegate understands (" +
                            std::to_string(kVersion) + "); upgrade tidegate");
  }
  if (version < 1) {
    throw sql::SqliteError(SQLITE_CORRUPT, "buffer has our application id but no schema version");
  }
  if (!read_only && db.query_text("PRAGMA journal_mode").value_or("") != "wal") {
    db.exec("PRAGMA journal_mode = WAL");
  }
  // Added within schema version 1: older gateways never read it, so a file
  // stays usable by them; this one adds it to a file made before.
  if (!read_only) {
    db.exec(kSourceStateTable);
    db.exec(kRecordTargetsTable);
  }
  return false;
}

std::int64_t meta_int(sql::Db& db, const char* key) {
  sql::Stmt stmt(db, "SELECT value FROM meta WHERE key = ?1", false);
  stmt.bind_text(1, key);
  return stmt.step() ? stmt.column_int(0) : 0;
}

}  // namespace tidegate::buffer::schema
