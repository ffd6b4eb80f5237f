// SQL for the buffer's tables, without policy or threads. `Queries` reads
// (used on the writer's and on the readers' connections); `Store` writes,
// and is used only under the buffer's state lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sqlite.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/buffer/record.h"

namespace tidegate::buffer {

// Where a stored record sits: its sequence, dense position and byte offset.
struct RowPos {
  std::uint64_t seq = 0;
  std::int64_t ord = 0;
  std::int64_t off = 0;
  std::int64_t ingest_ns = 0;
};

class Queries {
 public:
  explicit Queries(sql::Db& db);

  // The first stored record with seq > after, if any.
  std::optional<RowPos> first_after(std::uint64_t after);
  std::optional<RowPos> newest();
  // The byte offset just past the newest record (its off plus its accounted
  // size): where the next record's offset starts.
  std::optional<std::int64_t> newest_end();
  // Records with seq > after in order, up to max_records and max_bytes
  // (at least one record when any exists).
  std::vector<Record> read_after(std::uint64_t after, std::size_t max_records, std::size_t max_bytes);
  // Walks records from the oldest with seq <= through, in order, while
  // `visit` returns true. Returns how many rows it visited.
  template <typename Visit>
  std::size_t scan_prefix(std::uint64_t through, Visit&& visit) {
    sql::ResetOnExit reset(prefix_);
    prefix_.bind(1, through);
    std::size_t n = 0;
    while (prefix_.step()) {
      ++n;
      if (!visit(RowPos{static_cast<std::uint64_t>(prefix_.column_int(0)), prefix_.column_int(1),
                        prefix_.column_int(2), prefix_.column_int(3)})) {
        break;
      }
    }
    return n;
  }
  // The first record, in seq order, ingested at or after `ingest_ns` (scans).
  std::optional<std::uint64_t> first_seq_at_or_after_time(std::int64_t ingest_ns);

 private:
  sql::Stmt first_after_;
  sql::Stmt newest_;
  sql::Stmt newest_end_;
  sql::Stmt read_after_;
  sql::Stmt by_time_;
  sql::Stmt prefix_;
};

struct CursorRow {
  std::string sink;
  std::uint64_t acked_seq = 0;
  std::uint64_t lost_by_eviction = 0;
  std::int64_t created_ns = 0;
};

class Store {
 public:
  explicit Store(sql::Db& db);

  sql::Db& db() { return db_; }
  Queries& queries() { return queries_; }

  void begin() { begin_.run(); }
  void commit() { commit_.run(); }

  void insert(std::uint64_t seq, std::int64_t ord, std::int64_t off, std::int64_t ingest_ns,
              const NewRecord& record);
  void delete_through(std::uint64_t seq);
  void set_meta(std::string_view key, std::int64_t value);

  std::vector<CursorRow> load_cursors();
  void upsert_cursor(const CursorRow& cursor);
  void delete_cursor(std::string_view sink);

  void insert_dead_letter(std::string_view sink, std::optional<std::uint64_t> seq,
                          std::string_view reason, std::int64_t failed_ns,
                          std::int64_t ingest_ns, const NewRecord& record);

  // Dead letters an operator replayed or cleared. True if the row was there.
  bool delete_dead_letter(std::int64_t id);
  // The one sink a record is for (a replayed dead letter; table record_targets).
  void insert_target(std::uint64_t seq, std::string_view sink);

  // Sources' state (table source_state): set or delete one key.
  void put_state(const StateChange& change);

 private:
  sql::Db& db_;
  Queries queries_;
  sql::Stmt begin_;
  sql::Stmt commit_;
  sql::Stmt insert_;
  sql::Stmt delete_through_;
  sql::Stmt set_meta_;
  sql::Stmt upsert_cursor_;
  sql::Stmt insert_dead_letter_;
  sql::Stmt delete_dead_letter_;
  sql::Stmt insert_target_;
  sql::Stmt delete_targets_through_;
  sql::Stmt put_state_;
  sql::Stmt delete_state_;
};

// The sources' state under a key prefix, in key order (any connection; empty
// if the file predates the table and was opened read-only).
std::vector<std::pair<std::string, std::string>> load_source_state(sql::Db& db, std::string_view prefix);

// Reads dead letters (any connection).
std::vector<DeadLetter> load_dead_letters(sql::Db& db, std::size_t limit, std::int64_t after_id);
std::optional<DeadLetter> load_dead_letter(sql::Db& db, std::int64_t id);
// The ids of the dead letters a selection names, ascending.
std::vector<std::int64_t> select_dead_letters(sql::Db& db, const DeadLetterSelection& which);

// Records meant for one sink only, by sequence (empty if the file predates
// the table).
std::vector<std::pair<std::uint64_t, std::string>> load_targets(sql::Db& db);

// Row layout shared by records and dead_letters reads: the record columns
// starting at `first`, in the order ingest_ns, clock_synced, source,
// partition_key, topic, payload, device_ts_ns, content_type.
void read_record_columns(const sql::Stmt& stmt, int first, NewRecord& out);

}  // namespace tidegate::buffer
