#include <nlohmann/json.hpp>

#include "tidegate/status/render.h"

namespace tidegate::status {
namespace {

using nlohmann::json;

// Seconds from `then_ns` to the snapshot's time; null for "never".
json age_s(const Snapshot& s, std::int64_t then_ns) {
  if (then_ns <= 0) return nullptr;
  return static_cast<double>(std::max<std::int64_t>(0, s.now_ns - then_ns)) / 1e9;
}

json age_s(const Snapshot& s, const std::optional<std::int64_t>& then_ns) {
  return then_ns ? age_s(s, *then_ns) : json(nullptr);
}

// What the page shows per sink: failing beats paused beats the working state.
std::string sink_condition(const SinkView& k) {
  if (k.stats.consecutive_failures > 0) return "failing";
  if (k.paused) return "paused";
  return "ok";
}

json health_json(const Health& h) {
  return {{"level", to_string(h.level)}, {"reasons", h.reasons}};
}

// A damaged buffer file found at start: null when the file was fine.
json recovery_json(const buffer::OpenReport& r) {
  if (!r.recovered) return nullptr;
  return {{"problem", r.problem},
          {"moved_aside_to", r.moved_aside_to.string()},
          {"salvaged_records", r.salvaged_records},
          {"salvaged_cursors", r.salvaged_cursors}};
}

json buffer_json(const Snapshot& s) {
  const auto& b = s.buffer;
  const auto until_cap = seconds_until_cap(s);
  return {
      {"recovered_at_start", recovery_json(s.open_report)},
      {"records", b.records},
      {"bytes", b.bytes},
      {"max_bytes", b.max_bytes},
      {"max_records", b.max_records},
      {"fill_ratio", buffer_fill(b)},
      {"full_policy", b.full_policy == buffer::FullPolicy::kDropOldest ? "drop-oldest" : "reject-new"},
      {"oldest_age_s", age_s(s, b.oldest_ingest_ns)},
      {"next_seq", b.next_seq},
      {"appended_total", b.appended_total},
      {"evicted_total", b.evicted_total},
      {"evicted_since_start", evicted_since_start(b)},
      {"evicted_unacknowledged", evicted_unacknowledged(b)},
      {"evicted_acknowledged_age_s", age_s(s, b.evicted_acknowledged_ns)},
      {"evicting_for_s", age_s(s, s.evicting_since_ns)},
      {"fill_rate_bytes_per_s", s.fill_bytes_per_s},
      {"seconds_until_cap", until_cap ? json(*until_cap) : json(nullptr)},
      {"expired_total", b.expired_total},
      {"rejected_total", b.rejected_total},
      {"disk_full_total", b.disk_full_total},
      {"io_error_total", b.io_error_total},
      {"dead_letters", b.dead_letters},
      {"file_bytes", b.file_bytes},
      {"disk_available_bytes", b.disk_available_bytes ? json(*b.disk_available_bytes) : json(nullptr)},
      {"disk_reserve_bytes", b.disk_reserve_bytes},
      {"disk_reserve_reached", b.disk_reserve_reached},
      {"writable", s.buffer_writable},
      {"problem", s.buffer_problem},
      {"commit_latency_last_us", b.commit_latency_last_us},
  };
}

// A plugin's own counters: name, value, help, and whether it means loss or
// refusal (the page shows those).
json counters_json(const std::vector<common::Counter>& counters) {
  json out = json::array();
  for (const auto& c : counters) {
    json entry = {{"name", c.name},
                  {"value", c.value},
                  {"type", c.type == common::Counter::Type::kGauge ? "gauge" : "counter"},
                  {"loss_or_refusal", c.loss_or_refusal},
                  {"help", c.help}};
    if (!c.labels.empty()) {
      auto& labels = entry["labels"] = json::object();
      for (const auto& [k, v] : c.labels) labels[k] = v;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

json source_json(const Snapshot& s, const SourceView& v) {
  const auto& st = v.stats;
  return {
      {"name", st.name},
      {"kind", st.kind},
      {"connected", st.connected},
      {"down_for_s", st.connected ? json(nullptr) : age_s(s, v.down_since_ns)},
      {"messages_per_s", v.messages_per_s},
      {"bytes_per_s", v.bytes_per_s},
      {"received_total", st.received_total},
      {"received_bytes_total", st.received_bytes_total},
      {"committed_total", st.committed_total},
      {"dead_lettered_total", st.dead_lettered_total},
      {"errors_total", st.errors_total},
      {"last_message_age_s", age_s(s, st.last_message_ns)},
      {"last_error", st.last_error},
      {"counters", counters_json(st.counters)},
  };
}

// A replay an operator started (tidegate sink rewind): from when, and how
// many records it still has to send again; null when not replaying.
json replay_json(const SinkView& k) {
  const auto& f = k.stats;
  if (f.replay_through_seq == 0 || k.lag.acked_seq >= f.replay_through_seq) return nullptr;
  return {{"from_time_unix_s", static_cast<double>(f.replay_from_ingest_ns) / 1e9},
          {"records_to_go", f.replay_through_seq - k.lag.acked_seq}};
}

json processors_json(const std::vector<processing::ProcessorStats>& processors) {
  json out = json::array();
  for (const auto& p : processors) {
    out.push_back({{"name", p.name},
                   {"kind", p.kind},
                   {"in_total", p.in_total},
                   {"out_total", p.out_total},
                   {"dropped_total", p.dropped_total},
                   {"dead_lettered_total", p.dead_lettered_total},
                   {"seconds_total", p.seconds_total}});
  }
  return out;
}

json sink_json(const Snapshot& s, const SinkView& k) {
  const auto& f = k.stats;
  return {
      {"name", f.sink},
      {"destination", f.destination},
      {"condition", sink_condition(k)},
      {"state", f.state},
      {"last_success_age_s", age_s(s, f.last_success_ns)},
      {"last_error", f.last_error},
      {"last_error_age_s", age_s(s, f.last_error_ns)},
      {"consecutive_failures", f.consecutive_failures},
      {"lag_records", k.lag.lag_records},
      {"lag_bytes", k.lag.lag_bytes},
      {"lag_age_s", age_s(s, k.lag.oldest_undelivered_ingest_ns)},
      {"lost_by_eviction", k.lag.lost_by_eviction},
      {"sent_per_s", k.sent_per_s},
      {"delivery_rate_per_s", f.delivery_rate_per_s},
      {"drain_eta_s", k.drain_eta_s ? json(*k.drain_eta_s) : json(nullptr)},
      {"live_first", f.live_first},
      {"delivered_ahead_total", f.delivered_ahead_total},
      {"replay", replay_json(k)},
      {"sent_records_total", f.sent_records_total},
      {"sent_bytes_total", f.sent_bytes_total},
      {"batches_total", f.batches_total},
      {"retries_total", f.retries_total},
      {"resent_records_total", f.resent_records_total},
      {"dead_lettered_total", f.dead_lettered_total},
      {"send_latency_ms", static_cast<double>(f.last_send_latency_us) / 1000.0},
      {"exceptions_total", f.exceptions_total},
      {"kind", f.kind},
      {"counters", counters_json(f.counters)},
      {"not_routed_total", f.not_routed_total},
      {"filtered_total", f.filtered_total},
      {"processors", processors_json(f.processors)},
  };
}

std::string dump(const json& j) {
  // Texts from devices or peers may hold invalid UTF-8: replaced, never thrown.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string to_json(const Snapshot& s) {
  json j = {
      {"schema", kStatusSchemaVersion},
      {"gateway_id", s.gateway_id},
      {"version", s.version},
      {"time_unix_s", static_cast<double>(s.now_ns) / 1e9},
      {"uptime_s", age_s(s, s.started_ns)},
      {"health", health_json(s.health)},
      {"buffer", buffer_json(s)},
  };
  j["sources"] = json::array();
  for (const auto& v : s.sources)
    j["sources"].push_back(source_json(s, v));
  j["sinks"] = json::array();
  for (const auto& k : s.sinks)
    j["sinks"].push_back(sink_json(s, k));
  j["rates"] = json::array();
  for (const auto& p : s.rates) {
    json forward = json::object();
    for (const auto& [sink, rate] : p.forward_per_s)
      forward[sink] = rate;
    j["rates"].push_back({{"time_unix_s", static_cast<double>(p.t_ns) / 1e9},
                          {"ingest_per_s", p.ingest_per_s},
                          {"forward_per_s", forward}});
  }  // Cursors of sinks no longer configured: they hold records back.
  j["retired_sinks"] = json::array();
  for (const auto& c : retired_sinks(s)) {
    j["retired_sinks"].push_back({{"name", c.name},
                                  {"lag_records", c.lag_records},
                                  {"lag_bytes", c.lag_bytes},
                                  {"lag_age_s", age_s(s, c.oldest_undelivered_ingest_ns)},
                                  {"lost_by_eviction", c.lost_by_eviction}});
  }

  j["warnings"] = json::array();
  for (const auto& w : s.warnings) {
    j["warnings"].push_back({{"time_unix_s", static_cast<double>(w.t_ns) / 1e9}, {"level", w.level}, {"text", w.text}});
  }
  return dump(j);
}

std::string heartbeat_json(const Snapshot& s) {
  const auto& b = s.buffer;
  const auto until_cap = seconds_until_cap(s);
  json j = {
      {"type", "tidegate.heartbeat"},
      {"schema", kStatusSchemaVersion},
      {"gateway_id", s.gateway_id},
      {"version", s.version},
      {"uptime_s", age_s(s, s.started_ns)},
      {"health", health_json(s.health)},
      {"buffer",
       {{"records", b.records},
        {"bytes", b.bytes},
        {"fill_ratio", buffer_fill(b)},
        {"oldest_age_s", age_s(s, b.oldest_ingest_ns)},
        {"evicted_total", b.evicted_total},
        {"evicted_unacknowledged", evicted_unacknowledged(b)},
        {"seconds_until_cap", until_cap ? json(*until_cap) : json(nullptr)},
        {"dead_letters", b.dead_letters},
        {"recovered_at_start", recovery_json(s.open_report)},
        {"disk_available_bytes", b.disk_available_bytes ? json(*b.disk_available_bytes) : json(nullptr)}}},
  };
  j["sources"] = json::array();
  for (const auto& v : s.sources) {
    j["sources"].push_back({{"name", v.stats.name},
                            {"connected", v.stats.connected},
                            {"received_total", v.stats.received_total},
                            {"errors_total", v.stats.errors_total}});
  }
  j["sinks"] = json::array();
  for (const auto& k : s.sinks) {
    j["sinks"].push_back({{"name", k.stats.sink},
                          {"condition", sink_condition(k)},
                          {"lag_records", k.lag.lag_records},
                          {"lag_age_s", age_s(s, k.lag.oldest_undelivered_ingest_ns)},
                          {"last_success_age_s", age_s(s, k.stats.last_success_ns)},
                          {"last_error", k.stats.last_error}});
  }
  return dump(j);
}

}  // namespace tidegate::status
