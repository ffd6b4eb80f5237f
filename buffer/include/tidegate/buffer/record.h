// Records: the unit the buffer stores, one reading or message each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tidegate::buffer {

// A record as a source hands it to the buffer. The buffer assigns the
// sequence number when the record is committed.
struct NewRecord {
  // Wall-clock ingest time, nanoseconds since the Unix epoch. 0 means "now":
  // the buffer fills it from its clock when the record is committed.
  std::int64_t ingest_ns = 0;
  // Whether the system clock was synchronized (NTP) when ingest_ns was taken.
  // Boards without a real-time clock start far off; consumers can tell apart.
  bool clock_synced = false;
  std::string source;         // driver instance that produced the record
  std::string partition_key;  // device id; upstream ordering is per key
  std::string topic;          // MQTT topic or channel name
  std::string payload;        // bytes exactly as received (may hold NULs)
  std::optional<std::int64_t> device_ts_ns;  // timestamp the device reported
  std::string content_type;   // e.g. "application/json"; empty = unknown
  // A replayed dead letter goes to the one sink that refused it (or the one
  // the operator named); empty: every sink, as usual. Kept beside the record
  // (table record_targets), never sent upstream.
  std::string only_sink;
};

// A change to the small durable state a source keeps beside its records (the
// MQTT listener's sessions and QoS 2 packet ids), committed in the same
// transaction as the records of the same append: after a crash either both
// are there or neither is.
struct StateChange {
  std::string key;                   // by convention "<kind>/<source name>/..."
  std::optional<std::string> value;  // nullopt: delete the key
};

// A committed record: a NewRecord plus its gateway-assigned sequence number.
struct Record : NewRecord {
  std::uint64_t seq = 0;
};

// Bytes a record counts against the buffer's byte cap: its variable fields
// plus a fixed allowance for the row's columns and SQLite's row overhead, so
// that a flood of empty payloads still fills the cap.
inline constexpr std::uint64_t kRecordOverheadBytes = 48;

inline std::uint64_t accounted_size(const NewRecord& r) {
  return kRecordOverheadBytes + r.source.size() + r.partition_key.size() + r.topic.size() +
         r.payload.size() + r.content_type.size();
}

}  // namespace tidegate::buffer
