// Gathers the figures of the buffer, the sources and the forwarders into a
// Snapshot. sample() runs on a timer (every few seconds): it turns counters
// into rates, keeps the rate history for the page's chart and notices
// transitions (a source going down, an eviction, a refused commit).
// snapshot() may be called from any thread, as often as clients ask: it is
// cached briefly so a page refreshing on many laptops does not load the
// buffer.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tidegate/status/snapshot.h"

namespace tidegate::status {

struct CollectorInputs {
  std::string gateway_id;
  std::string version;
  std::function<buffer::BufferStats()> buffer_stats;
  std::function<std::vector<drivers::SourceStats>()> sources;
  std::function<std::vector<forward::ForwarderStats>()> sinks;
  std::function<std::vector<LogEntry>()> warnings;  // may be empty
  std::function<std::int64_t()> clock_ns;           // wall clock; empty = the system's
  buffer::OpenReport open_report;                   // how the buffer was opened (recovered?)
  HealthThresholds thresholds;
  std::size_t history_points = 120;  // rate samples kept for the chart
  std::chrono::milliseconds cache_for{500};
};

class StatusCollector {
 public:
  explicit StatusCollector(CollectorInputs inputs);

  // Takes one rate sample; call at a steady interval.
  void sample();
  Snapshot snapshot();

 private:
  struct Counters {
    std::int64_t t_ns = 0;
    std::uint64_t appended = 0;
    std::uint64_t evicted = 0;
    std::uint64_t refused = 0;                      // disk full + I/O errors
    std::map<std::string, std::uint64_t> received;  // per source
    std::map<std::string, std::uint64_t> received_bytes;  // per source
    std::map<std::string, std::uint64_t> sent;      // per sink
  };
  std::int64_t now_ns() const;
  Snapshot build(std::int64_t now);

  CollectorInputs in_;
  std::int64_t started_ns_;
  std::mutex mu_;
  std::optional<Counters> last_;
  std::deque<RatePoint> history_;
  std::map<std::string, double> source_rate_;
  std::map<std::string, double> source_byte_rate_;
  std::map<std::string, double> sink_rate_;
  std::map<std::string, std::int64_t> down_since_;
  std::int64_t last_eviction_ns_ = 0;
  std::int64_t evicting_since_ns_ = 0;
  std::deque<std::pair<std::int64_t, std::uint64_t>> fill_points_;  // (t_ns, bytes), the last few minutes
  bool writable_ = true;
  std::string buffer_problem_;
  std::optional<Snapshot> cached_;
  std::chrono::steady_clock::time_point cached_at_;
};

}  // namespace tidegate::status
