// Buffer configuration. Defaults suit a Raspberry-Pi-class box with an SD card.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "tidegate/buffer/environment.h"

namespace tidegate::buffer {

enum class Durability {
  // A commit is acknowledged once the transaction is in the OS (WAL written,
  // not fsynced): survives a crash or kill -9 of the gateway. The WAL is
  // fsynced every `sync_interval`, which bounds what a power cut can lose.
  kCrashSafe,
  // A commit is acknowledged after fsync of the WAL: survives a power cut.
  kPowerSafe,
};

enum class FullPolicy {
  // Evict the lowest sequences, even undelivered; counted per sink.
  kDropOldest,
  // Refuse new records with Status::kBackpressure; nothing undelivered is lost.
  kRejectNew,
};

enum class IntegrityCheck { kNone, kQuick, kFull };

// Where a newly created sink cursor starts.
enum class StartPosition {
  kEarliest,  // the oldest retained record: history plus live data
  kLatest,    // only records appended from now on
};

const char* to_string(Durability value);
const char* to_string(FullPolicy value);
const char* to_string(IntegrityCheck value);
const char* to_string(StartPosition value);

struct BufferOptions {
  std::filesystem::path path;  // the SQLite database file (created if missing)

  Durability durability = Durability::kCrashSafe;
  // Group commit: records wait at most this long for company before their
  // transaction commits...
  std::chrono::milliseconds commit_window{10};
  // ...or until this many records are pending...
  std::size_t commit_max_records = 8192;
  // ...or until this many accounted bytes are (0 = no byte limit). A commit
  // writes whole pages to the WAL however little it holds, so at low rates a
  // long window with this as the early trigger writes far less.
  std::uint64_t commit_max_bytes = 0;
  // Crash-safe mode: fsync the WAL at least this often while commits arrive,
  // so a power cut loses at most about this much. 0 = leave it to SQLite's
  // checkpoints (unbounded in time).
  std::chrono::milliseconds sync_interval{1000};
  // Appends block once this many records wait for the writer (bounds RAM).
  std::size_t max_queued_records = 65536;

  // Caps on what is stored, in accounted bytes (see accounted_size) and in
  // records. 0 = no cap of that kind.
  std::uint64_t max_bytes = 256ull << 20;
  std::uint64_t max_records = 0;
  FullPolicy full_policy = FullPolicy::kDropOldest;

  // Records every sink acknowledged are kept this long (0 = delete once
  // delivered) and, when retention_bytes > 0, only while delivered records
  // take at most that many bytes.
  std::chrono::seconds retention_time{0};
  std::uint64_t retention_bytes = 0;

  // Stop growing while the filesystem has less than this free, so the OS and
  // the broker on the same card keep working. 0 = no reserve.
  std::uint64_t disk_reserve_bytes = 64ull << 20;

  IntegrityCheck integrity_check = IntegrityCheck::kQuick;

  // Background deletion of expired records, with the sinks' positions
  // written in the same transaction: how often (sooner once
  // maintenance_after_records delivered records can go; without retention,
  // up to ten intervals later while fewer than 64 can), and at most how many
  // rows per transaction so appends never wait long. A crash re-sends what
  // was acknowledged since the last pass.
  std::chrono::milliseconds maintenance_interval{10000};
  std::size_t maintenance_chunk = 4096;
  // Without retention: a pass runs before the interval is up once this many
  // delivered records wait for deletion (0 = by the interval only).
  std::size_t maintenance_after_records = 4096;

  // SQLite page size of a file this buffer creates (an existing file keeps
  // its own). Every commit writes whole pages to the WAL, so at low rates
  // small pages write far less; 4096 appends about 1.4x faster at full speed.
  std::uint32_t page_size = 1024;

  // The newest committed records are also kept in memory, up to this many
  // bytes, so that a caught-up sink reads its batch without going back to
  // the file. 0 = every read goes to the file.
  std::uint64_t recent_records_bytes = 2 << 20;

  // Hard limit on the database file, in SQLite pages (PRAGMA max_page_count).
  // 0 = SQLite's default. Mostly useful to simulate a full disk in tests.
  std::uint64_t max_page_count = 0;

  // Inspect without changing anything (CLI beside a running daemon): no
  // writer thread, no recovery (a damaged file is an error), writes fail.
  bool read_only = false;

  std::shared_ptr<Clock> clock;           // null = system clock
  std::shared_ptr<DiskSpace> disk_space;  // null = statvfs
  LogFn log;                              // null = stderr
};

// The limits a running buffer takes at a reload (Buffer::apply_limits):
// caps, full policy, retention, disk reserve.
inline bool same_limits(const BufferOptions& a, const BufferOptions& b) {
  return a.max_bytes == b.max_bytes && a.max_records == b.max_records && a.full_policy == b.full_policy &&
         a.retention_time == b.retention_time && a.retention_bytes == b.retention_bytes &&
         a.disk_reserve_bytes == b.disk_reserve_bytes;
}
inline void copy_limits(const BufferOptions& from, BufferOptions& to) {
  to.max_bytes = from.max_bytes;
  to.max_records = from.max_records;
  to.full_policy = from.full_policy;
  to.retention_time = from.retention_time;
  to.retention_bytes = from.retention_bytes;
  to.disk_reserve_bytes = from.disk_reserve_bytes;
}

}  // namespace tidegate::buffer
