// The buffer's on-disk contract, version 1. One SQLite database in WAL mode.
//
//   PRAGMA application_id = 0x54474231 ('TGB1')   marks the file as ours
//   PRAGMA user_version   = 1                      schema version
//
//   meta(key TEXT PRIMARY KEY, value INTEGER)      WITHOUT ROWID
//     next_seq             next sequence number; never decreases, so numbers
//                          are never reused even when every record is gone
//     next_ord, next_off   dense position and cumulative accounted bytes of the
//                          next record (see records.ord / records.off)
//     evicted_total, expired_total, dead_lettered_total   lifetime counters
//     created_ns           when this file was created
//
//   records(seq INTEGER PRIMARY KEY,   gateway sequence, the only order key
//           ord INTEGER,  off INTEGER, dense position / byte offset at append:
//                                      counts and byte sizes of any seq range
//                                      are two rowid lookups, never a scan
//           ingest_ns, clock_synced, source, partition_key, topic,
//           payload BLOB, device_ts_ns NULL, content_type)
//     Rows are only ever removed as a prefix (lowest seq first).
//
//   cursors(sink TEXT PRIMARY KEY, acked_seq, lost_by_eviction, created_ns)
//
//   dead_letters(id INTEGER PRIMARY KEY AUTOINCREMENT, seq NULL, sink, reason,
//                failed_ns, <the record's columns>)
//
// Opening checks, in order: the file opens and reads as SQLite, the
// application id is ours (or 0 on an empty file), the version is one we know,
// then the integrity check. A failure of the first or the last makes the file
// "corrupt" (moved aside and salvaged); a foreign id or a newer version is
// refused without touching the file.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "sqlite.h"

namespace tidegate::buffer::schema {

inline constexpr std::int64_t kApplicationId = 0x54474231;
inline constexpr std::int64_t kVersion = 1;

// A file that is valid SQLite but not a buffer we can use. Not corruption.
class IncompatibleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Connection settings every connection to the buffer uses.
void configure_connection(sql::Db& db);

// Creates the schema in an empty database or validates an existing one.
// Returns true if it created it. Throws IncompatibleError or SqliteError.
// With `read_only`, an empty file is an error instead.
// `page_size` applies when the file is created (0: SQLite's default).
bool create_or_validate(sql::Db& db, std::int64_t now_ns, bool read_only = false, std::uint32_t page_size = 0);

// Reads an integer from meta (0 if absent).
std::int64_t meta_int(sql::Db& db, const char* key);

}  // namespace tidegate::buffer::schema
