#include "tidegate/gateway/buffer_report.h"

#include "tidegate/proto/json.h"

namespace tidegate::gateway {
namespace {

std::string optional_number(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "null";
}

std::string optional_number(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : "null";
}

}  // namespace

std::string stats_json(const buffer::BufferStats& s) {
  using std::to_string;
  std::string o = "{";
  o += "\"records\":" + to_string(s.records);
  o += ",\"bytes\":" + to_string(s.bytes);
  o += ",\"max_bytes\":" + to_string(s.max_bytes);
  o += ",\"max_records\":" + to_string(s.max_records);
  o += ",\"full_policy\":" + proto::json::quote(buffer::to_string(s.full_policy));
  o += ",\"oldest_seq\":" + to_string(s.oldest_seq);
  o += ",\"newest_seq\":" + to_string(s.newest_seq);
  o += ",\"next_seq\":" + to_string(s.next_seq);
  o += ",\"oldest_ingest_ns\":" + optional_number(s.oldest_ingest_ns);
  o += ",\"newest_ingest_ns\":" + optional_number(s.newest_ingest_ns);
  o += ",\"appended_total\":" + to_string(s.appended_total);
  o += ",\"evicted_total\":" + to_string(s.evicted_total);
  o += ",\"evicted_acknowledged\":" + to_string(s.evicted_acknowledged);
  o += ",\"evicted_acknowledged_ns\":" + to_string(s.evicted_acknowledged_ns);
  o += ",\"expired_total\":" + to_string(s.expired_total);
  o += ",\"rejected_total\":" + to_string(s.rejected_total);
  o += ",\"disk_full_total\":" + to_string(s.disk_full_total);
  o += ",\"io_error_total\":" + to_string(s.io_error_total);
  o += ",\"dead_letters\":" + to_string(s.dead_letters);
  o += ",\"dead_lettered_total\":" + to_string(s.dead_lettered_total);
  o += ",\"commits_total\":" + to_string(s.commits_total);
  o += ",\"commit_latency_last_us\":" + to_string(s.commit_latency_last_us);
  o += ",\"commit_latency_max_us\":" + to_string(s.commit_latency_max_us);
  o += ",\"commit_latency_sum_us\":" + to_string(s.commit_latency_sum_us);
  o += ",\"queued_records\":" + to_string(s.queued_records);
  o += ",\"wal_syncs_total\":" + to_string(s.wal_syncs_total);
  o += ",\"read_from_memory_total\":" + to_string(s.read_from_memory_total);
  o += ",\"read_from_file_total\":" + to_string(s.read_from_file_total);
  o += ",\"file_bytes\":" + to_string(s.file_bytes);
  o += ",\"disk_available_bytes\":" + optional_number(s.disk_available_bytes);
  o += ",\"disk_reserve_bytes\":" + to_string(s.disk_reserve_bytes);
  o += ",\"disk_reserve_reached\":" + std::string(s.disk_reserve_reached ? "true" : "false");
  o += ",\"sinks\":[";
  for (std::size_t i = 0; i < s.sinks.size(); ++i) {
    const auto& k = s.sinks[i];
    if (i > 0) o += ',';
    o += "{\"name\":" + proto::json::quote(k.name);
    o += ",\"acked_seq\":" + to_string(k.acked_seq);
    o += ",\"lag_records\":" + to_string(k.lag_records);
    o += ",\"lag_bytes\":" + to_string(k.lag_bytes);
    o += ",\"oldest_undelivered_ingest_ns\":" + optional_number(k.oldest_undelivered_ingest_ns);
    o += ",\"lost_by_eviction\":" + to_string(k.lost_by_eviction) + "}";
  }
  o += "]}";
  return o;
}

}  // namespace tidegate::gateway
