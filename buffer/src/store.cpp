#include "store.h"

#include <algorithm>

#include "read_limit.h"

namespace tidegate::buffer {

#define TIDEGATE_RECORD_COLUMNS \
  "ingest_ns, clock_synced, source, partition_key, topic, payload, device_ts_ns, content_type"

void read_record_columns(const sql::Stmt& stmt, int first, NewRecord& out) {
  out.ingest_ns = stmt.column_int(first);
  out.clock_synced = stmt.column_int(first + 1) != 0;
  out.source = stmt.column_text(first + 2);
  out.partition_key = stmt.column_text(first + 3);
  out.topic = stmt.column_text(first + 4);
  out.payload = stmt.column_blob(first + 5);
  if (stmt.column_is_null(first + 6)) {
    out.device_ts_ns.reset();
  } else {
    out.device_ts_ns = stmt.column_int(first + 6);
  }
  out.content_type = stmt.column_text(first + 7);
}

namespace {

// Binds the record columns at `first` .. first + 7 (same order as above).
void bind_record_columns(sql::Stmt& stmt, int first, std::int64_t ingest_ns, const NewRecord& r) {
  stmt.bind(first, ingest_ns)
      .bind(first + 1, std::int64_t{r.clock_synced ? 1 : 0})
      .bind_text(first + 2, r.source)
      .bind_text(first + 3, r.partition_key)
      .bind_text(first + 4, r.topic)
      .bind_blob(first + 5, r.payload)
      .bind_text(first + 7, r.content_type);
  if (r.device_ts_ns) {
    stmt.bind(first + 6, *r.device_ts_ns);
  } else {
    stmt.bind_null(first + 6);
  }
}

RowPos row_pos(const sql::Stmt& stmt) {
  return RowPos{static_cast<std::uint64_t>(stmt.column_int(0)), stmt.column_int(1),
                stmt.column_int(2), stmt.column_int(3)};
}

}  // namespace

Queries::Queries(sql::Db& db)
    : first_after_(db, "SELECT seq, ord, off, ingest_ns FROM records WHERE seq > ?1 ORDER BY seq LIMIT 1"),
      newest_(db, "SELECT seq, ord, off, ingest_ns FROM records ORDER BY seq DESC LIMIT 1"),
      // accounted_size() in SQL; text lengths in bytes, as the writer counted them.
      newest_end_(db, "SELECT off + " + std::to_string(kRecordOverheadBytes) +
                          " + length(CAST(source AS BLOB)) + length(CAST(partition_key AS BLOB))"
                          " + length(CAST(topic AS BLOB)) + length(payload) + length(CAST(content_type AS BLOB))"
                          " FROM records ORDER BY seq DESC LIMIT 1"),
      read_after_(db, "SELECT seq, " TIDEGATE_RECORD_COLUMNS
                      " FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
      by_time_(db, "SELECT seq FROM records WHERE ingest_ns >= ?1 ORDER BY seq LIMIT 1"),
      prefix_(db, "SELECT seq, ord, off, ingest_ns FROM records WHERE seq <= ?1 ORDER BY seq") {}

std::optional<RowPos> Queries::first_after(std::uint64_t after) {
  sql::ResetOnExit reset(first_after_);
  first_after_.bind(1, after);
  if (!first_after_.step()) return std::nullopt;
  return row_pos(first_after_);
}

std::optional<RowPos> Queries::newest() {
  sql::ResetOnExit reset(newest_);
  if (!newest_.step()) return std::nullopt;
  return row_pos(newest_);
}

std::optional<std::int64_t> Queries::newest_end() {
  sql::ResetOnExit reset(newest_end_);
  if (!newest_end_.step()) return std::nullopt;
  return newest_end_.column_int(0);
}

std::vector<Record> Queries::read_after(std::uint64_t after, std::size_t max_records,
                                        std::size_t max_bytes) {
  std::vector<Record> out;
  if (max_records == 0) return out;
  out.reserve(std::min<std::size_t>(max_records, 4096));  // a batch without regrowing
  sql::ResetOnExit reset(read_after_);
  read_after_.bind(1, after).bind(2, static_cast<std::uint64_t>(max_records));
  ReadLimit limit(max_bytes);
  while (read_after_.step()) {
    Record r;
    r.seq = static_cast<std::uint64_t>(read_after_.column_int(0));
    read_record_columns(read_after_, 1, r);
    if (!limit.admits(r, out.size())) break;
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<std::uint64_t> Queries::first_seq_at_or_after_time(std::int64_t ingest_ns) {
  sql::ResetOnExit reset(by_time_);
  by_time_.bind(1, ingest_ns);
  if (!by_time_.step()) return std::nullopt;
  return static_cast<std::uint64_t>(by_time_.column_int(0));
}

Store::Store(sql::Db& db)
    : db_(db),
      queries_(db),
      begin_(db, "BEGIN IMMEDIATE"),
      commit_(db, "COMMIT"),
      insert_(db, "INSERT INTO records(seq, ord, off, " TIDEGATE_RECORD_COLUMNS
                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
      delete_through_(db, "DELETE FROM records WHERE seq <= ?1"),
      set_meta_(db, "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      upsert_cursor_(db, "INSERT INTO cursors(sink, acked_seq, lost_by_eviction, created_ns) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(sink) DO UPDATE SET "
                         "acked_seq = excluded.acked_seq, lost_by_eviction = excluded.lost_by_eviction"),
      insert_dead_letter_(db, "INSERT INTO dead_letters(sink, seq, reason, failed_ns, " TIDEGATE_RECORD_COLUMNS
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
      delete_dead_letter_(db, "DELETE FROM dead_letters WHERE id = ?1"),
      insert_target_(db, "INSERT OR REPLACE INTO record_targets(seq, sink) VALUES (?1, ?2)"),
      delete_targets_through_(db, "DELETE FROM record_targets WHERE seq <= ?1"),
      put_state_(db, "INSERT INTO source_state(key, value) VALUES (?1, ?2) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      delete_state_(db, "DELETE FROM source_state WHERE key = ?1") {}

void Store::put_state(const StateChange& change) {
  if (change.value) {
    put_state_.bind_text(1, change.key).bind_blob(2, *change.value);
    put_state_.run();
  } else {
    delete_state_.bind_text(1, change.key);
    delete_state_.run();
  }
}

std::vector<std::pair<std::string, std::string>> load_source_state(sql::Db& db, std::string_view prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  if (db.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'source_state'").value_or(0) == 0) return out;
  // A range, not LIKE (keys may hold '%' and '_'): keys compare bytewise
  // (BINARY collation), so [prefix, prefix with its last byte + 1) is the set.
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xFF) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  sql::Stmt stmt(db,
                 end.empty() ? "SELECT key, value FROM source_state WHERE key >= ?1 ORDER BY key"
                             : "SELECT key, value FROM source_state WHERE key >= ?1 AND key < ?2 ORDER BY key",
                 false);
  stmt.bind_text(1, prefix);
  if (!end.empty()) stmt.bind_text(2, end);
  while (stmt.step()) out.emplace_back(stmt.column_text(0), stmt.column_blob(1));
  return out;
}

void Store::insert(std::uint64_t seq, std::int64_t ord, std::int64_t off, std::int64_t ingest_ns,
                   const NewRecord& record) {
  insert_.bind(1, seq).bind(2, ord).bind(3, off);
  bind_record_columns(insert_, 4, ingest_ns, record);
  insert_.run();
}

void Store::delete_through(std::uint64_t seq) {
  delete_through_.bind(1, seq);
  delete_through_.run();
  delete_targets_through_.bind(1, seq);
  delete_targets_through_.run();
}

bool Store::delete_dead_letter(std::int64_t id) {
  delete_dead_letter_.bind(1, id);
  delete_dead_letter_.run();
  return sqlite3_changes(db_.get()) > 0;
}

void Store::insert_target(std::uint64_t seq, std::string_view sink) {
  insert_target_.bind(1, seq).bind_text(2, sink);
  insert_target_.run();
}

void Store::set_meta(std::string_view key, std::int64_t value) {
  set_meta_.bind_text(1, key).bind(2, value);
  set_meta_.run();
}

std::vector<CursorRow> Store::load_cursors() {
  sql::Stmt stmt(db_, "SELECT sink, acked_seq, lost_by_eviction, created_ns FROM cursors", false);
  std::vector<CursorRow> out;
  while (stmt.step()) {
    out.push_back(CursorRow{stmt.column_text(0), static_cast<std::uint64_t>(stmt.column_int(1)),
                            static_cast<std::uint64_t>(stmt.column_int(2)), stmt.column_int(3)});
  }
  return out;
}

void Store::upsert_cursor(const CursorRow& cursor) {
  upsert_cursor_.bind_text(1, cursor.sink)
      .bind(2, cursor.acked_seq)
      .bind(3, cursor.lost_by_eviction)
      .bind(4, cursor.created_ns);
  upsert_cursor_.run();
}

void Store::delete_cursor(std::string_view sink) {
  sql::Stmt stmt(db_, "DELETE FROM cursors WHERE sink = ?1", false);
  stmt.bind_text(1, sink);
  stmt.run();
}

void Store::insert_dead_letter(std::string_view sink, std::optional<std::uint64_t> seq,
                               std::string_view reason, std::int64_t failed_ns,
                               std::int64_t ingest_ns, const NewRecord& record) {
  insert_dead_letter_.bind_text(1, sink).bind_text(3, reason).bind(4, failed_ns);
  if (seq) {
    insert_dead_letter_.bind(2, *seq);
  } else {
    insert_dead_letter_.bind_null(2);
  }
  bind_record_columns(insert_dead_letter_, 5, ingest_ns, record);
  insert_dead_letter_.run();
}

std::vector<DeadLetter> load_dead_letters(sql::Db& db, std::size_t limit, std::int64_t after_id) {
  sql::Stmt stmt(db, "SELECT id, seq, sink, reason, failed_ns, " TIDEGATE_RECORD_COLUMNS
                     " FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2", false);
  stmt.bind(1, after_id).bind(2, static_cast<std::uint64_t>(limit));
  std::vector<DeadLetter> out;
  while (stmt.step()) {
    DeadLetter d;
    d.id = stmt.column_int(0);
    if (!stmt.column_is_null(1)) d.seq = static_cast<std::uint64_t>(stmt.column_int(1));
    d.sink = stmt.column_text(2);
    d.reason = stmt.column_text(3);
    d.failed_ns = stmt.column_int(4);
    read_record_columns(stmt, 5, d.record);
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<DeadLetter> load_dead_letter(sql::Db& db, std::int64_t id) {
  auto found = load_dead_letters(db, 1, id - 1);
  if (found.empty() || found.front().id != id) return std::nullopt;
  return std::move(found.front());
}

std::vector<std::int64_t> select_dead_letters(sql::Db& db, const DeadLetterSelection& which) {
  std::vector<std::int64_t> out;
  if (which.all) {
    sql::Stmt stmt(db, "SELECT id FROM dead_letters ORDER BY id", false);
    while (stmt.step()) out.push_back(stmt.column_int(0));
    return out;
  }
  if (which.failed_before_ns) {
    sql::Stmt stmt(db, "SELECT id FROM dead_letters WHERE failed_ns < ?1 ORDER BY id", false);
    stmt.bind(1, *which.failed_before_ns);
    while (stmt.step()) out.push_back(stmt.column_int(0));
  }
  sql::Stmt exists(db, "SELECT 1 FROM dead_letters WHERE id = ?1", false);
  for (const auto id : which.ids) {
    exists.bind(1, id);
    if (exists.step()) out.push_back(id);
    exists.reset();
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::pair<std::uint64_t, std::string>> load_targets(sql::Db& db) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  if (db.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'record_targets'").value_or(0) == 0) return out;
  sql::Stmt stmt(db, "SELECT seq, sink FROM record_targets ORDER BY seq", false);
  while (stmt.step()) out.emplace_back(static_cast<std::uint64_t>(stmt.column_int(0)), stmt.column_text(1));
  return out;
}

}  // namespace tidegate::buffer
