// One moment of the gateway's state, as the status page, /api/status,
// /metrics and the upstream heartbeat show it, and the health verdict drawn
// from it. Built by StatusCollector; rendered by render.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidegate/buffer/stats.h"
#include "tidegate/drivers/source.h"
#include "tidegate/forward/forwarder.h"

namespace tidegate::status {

enum class HealthLevel { kGreen, kAmber, kRed };
const char* to_string(HealthLevel level);  // "green", "amber", "red"

struct Health {
  HealthLevel level = HealthLevel::kGreen;
  std::vector<std::string> reasons;  // worst first; empty when green
};

// When the verdict turns amber or red.
struct HealthThresholds {
  double buffer_amber_fraction = 0.70;  // of the byte or record cap
  double buffer_red_fraction = 0.95;
  std::int64_t lag_amber_s = 300;          // oldest undelivered record older than this
  std::int64_t failing_red_after_s = 300;  // a sink without success for this long while failing
  std::int64_t source_red_after_s = 300;   // a source disconnected this long
  std::int64_t loss_red_window_s = 900;    // records evicted (lost) this recently
};

struct RatePoint {
  std::int64_t t_ns = 0;
  double ingest_per_s = 0;  // records committed to the buffer
  // Records acknowledged upstream, per sink: each sink delivers every
  // record, so each is compared with ingest on its own.
  std::vector<std::pair<std::string, double>> forward_per_s;
};

struct LogEntry {
  std::int64_t t_ns = 0;
  std::string level;  // "warning" or "error"
  std::string text;
};

struct SourceView {
  drivers::SourceStats stats;
  double messages_per_s = 0;
  double bytes_per_s = 0;  // payload bytes
  std::int64_t down_since_ns = 0;  // 0 while connected
};

struct SinkView {
  forward::ForwarderStats stats;
  buffer::SinkStats lag;  // from the buffer: records, bytes, oldest undelivered
  double sent_per_s = 0;
  std::optional<double> drain_eta_s;
  bool paused = false;
};

struct Snapshot {
  std::string gateway_id;
  std::string version;
  std::int64_t now_ns = 0;
  std::int64_t started_ns = 0;
  buffer::BufferStats buffer;
  bool buffer_writable = true;        // no refused commit (disk full, I/O error) in the last sample
  std::string buffer_problem;         // why not, when not
  std::int64_t last_eviction_ns = 0;  // 0: none since start
  // Net growth of the buffer's accounted bytes over the last few minutes
  // (ingest minus what delivery and retention removed), and since when every
  // sample has seen evictions (0: not evicting now).
  double fill_bytes_per_s = 0;
  std::int64_t evicting_since_ns = 0;
  buffer::OpenReport open_report;     // a damaged file recovered at start shows until the next start
  std::vector<SourceView> sources;
  std::vector<SinkView> sinks;
  std::vector<RatePoint> rates;    // oldest first
  std::vector<LogEntry> warnings;  // newest last
  Health health;
};

// Fill of the tighter of the buffer's two caps (bytes, records); 0 without caps.
double buffer_fill(const buffer::BufferStats& b);
// Seconds until the nearer of the byte cap and the disk's reserve is reached
// at the current net rate; nullopt without either or while not growing.
std::optional<double> seconds_until_cap(const Snapshot& s);

// Undelivered records the cap evicted since this process opened the buffer,
// and those no operator has acknowledged yet (all time, across restarts).
std::uint64_t evicted_since_start(const buffer::BufferStats& b);
std::uint64_t evicted_unacknowledged(const buffer::BufferStats& b);
// Cursors in the buffer of sinks that are no longer configured: they hold
// back what they never acknowledged until forgotten (`tidegate sink forget`).
std::vector<buffer::SinkStats> retired_sinks(const Snapshot& s);

// The verdict: red when data is being lost or will be soon, or the uplink
// has been failing for a while; amber when something needs a look.
Health assess(const Snapshot& s, const HealthThresholds& t);

}  // namespace tidegate::status
