// Figures the status page, metrics and CLI read from the buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidegate/buffer/options.h"

namespace tidegate::buffer {

struct SinkStats {
  std::string name;
  std::uint64_t acked_seq = 0;      // last sequence the upstream acknowledged
  std::uint64_t lag_records = 0;    // stored records after acked_seq
  std::uint64_t lag_bytes = 0;      // their accounted bytes
  // Ingest time of the oldest undelivered record; nullopt when caught up.
  std::optional<std::int64_t> oldest_undelivered_ingest_ns;
  std::uint64_t lost_by_eviction = 0;  // undelivered records the cap evicted
};

struct BufferStats {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;  // accounted bytes of stored records
  std::uint64_t max_bytes = 0;
  std::uint64_t max_records = 0;
  FullPolicy full_policy = FullPolicy::kDropOldest;
  std::uint64_t oldest_seq = 0;  // 0 when empty
  std::uint64_t newest_seq = 0;  // 0 when empty
  std::optional<std::int64_t> oldest_ingest_ns;
  std::optional<std::int64_t> newest_ingest_ns;
  std::uint64_t next_seq = 0;  // what the next committed record will get

  std::uint64_t appended_total = 0;
  std::uint64_t evicted_total = 0;      // undelivered records removed by the cap, all time
  std::uint64_t evicted_at_open = 0;    // evicted_total when this process opened the buffer
  // evicted_total when an operator last acknowledged the losses, and when
  // (0: never). Losses above it are news to the operator.
  std::uint64_t evicted_acknowledged = 0;
  std::int64_t evicted_acknowledged_ns = 0;
  std::uint64_t expired_total = 0;      // delivered records removed (retention or cap)
  std::uint64_t rejected_total = 0;     // records refused with kBackpressure
  std::uint64_t disk_full_total = 0;    // records refused with kDiskFull
  std::uint64_t io_error_total = 0;     // records refused with kIoError
  std::uint64_t dead_letters = 0;       // rows in the dead-letter table
  std::uint64_t dead_lettered_total = 0;

  std::uint64_t commits_total = 0;
  std::uint64_t commit_latency_last_us = 0;  // queue wait + write + sync
  std::uint64_t commit_latency_max_us = 0;
  std::uint64_t commit_latency_sum_us = 0;
  std::uint64_t queued_records = 0;          // waiting for the writer
  std::uint64_t wal_syncs_total = 0;         // crash-safe mode's periodic fsyncs
  // Records handed to readers (sinks, derived streams), by where they came
  // from: the newest commits held in memory, or the file.
  std::uint64_t read_from_memory_total = 0;
  std::uint64_t read_from_file_total = 0;

  std::uint64_t file_bytes = 0;  // database + WAL on disk
  std::optional<std::uint64_t> disk_available_bytes;
  std::uint64_t disk_reserve_bytes = 0;
  bool disk_reserve_reached = false;

  std::vector<SinkStats> sinks;
};

struct IntegrityReport {
  bool ok = false;
  std::string detail;  // "ok" or SQLite's first complaints
};

// What open() found and did. Recovery is reported, not thrown: the gateway
// keeps running on a fresh buffer.
struct OpenReport {
  bool created = false;    // no database existed; a new one was made
  bool recovered = false;  // the file was corrupt or unreadable
  std::string problem;     // what was wrong with it
  std::filesystem::path moved_aside_to;
  std::uint64_t salvaged_records = 0;
  std::uint64_t salvaged_cursors = 0;
  std::uint64_t next_seq = 0;
};

}  // namespace tidegate::buffer
