#include <algorithm>
#include <optional>
#include <string>

#include "tidegate/status/snapshot.h"

namespace tidegate::status {

const char* to_string(HealthLevel level) {
  switch (level) {
    case HealthLevel::kGreen:
      return "green";
    case HealthLevel::kAmber:
      return "amber";
    case HealthLevel::kRed:
      return "red";
  }
  return "?";
}

namespace {

std::string duration_text(std::int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + " s";
  if (seconds < 7200) return std::to_string(seconds / 60) + " min";
  if (seconds < 172800) return std::to_string(seconds / 3600) + " h";
  return std::to_string(seconds / 86400) + " days";
}

std::int64_t seconds_between(std::int64_t from_ns, std::int64_t to_ns) {
  return std::max<std::int64_t>(0, (to_ns - from_ns) / 1'000'000'000);
}

}  // namespace

double buffer_fill(const buffer::BufferStats& b) {
  double fill = 0;
  if (b.max_bytes) fill = std::max(fill, static_cast<double>(b.bytes) / static_cast<double>(b.max_bytes));
  if (b.max_records) fill = std::max(fill, static_cast<double>(b.records) / static_cast<double>(b.max_records));
  return fill;
}

std::optional<double> seconds_until_cap(const Snapshot& s) {
  const auto& b = s.buffer;
  if (s.fill_bytes_per_s <= 0) return std::nullopt;
  // The cap that bites first: max_bytes, or the disk down to its reserve.
  std::optional<double> room;
  if (b.max_bytes) room = static_cast<double>(b.max_bytes) - static_cast<double>(b.bytes);
  if (b.disk_available_bytes) {
    const double disk = static_cast<double>(*b.disk_available_bytes) - static_cast<double>(b.disk_reserve_bytes);
    room = room ? std::min(*room, disk) : disk;
  }
  if (!room) return std::nullopt;
  return std::max(0.0, *room) / s.fill_bytes_per_s;
}

std::uint64_t evicted_since_start(const buffer::BufferStats& b) {
  return b.evicted_total - std::min(b.evicted_at_open, b.evicted_total);
}

std::uint64_t evicted_unacknowledged(const buffer::BufferStats& b) {
  // In-flight credits can lower evicted_total below an acknowledged count.
  return b.evicted_total - std::min(b.evicted_acknowledged, b.evicted_total);
}

std::vector<buffer::SinkStats> retired_sinks(const Snapshot& s) {
  std::vector<buffer::SinkStats> out;
  for (const auto& cursor : s.buffer.sinks) {
    const bool configured = std::any_of(s.sinks.begin(), s.sinks.end(),
                                        [&](const SinkView& k) { return k.stats.sink == cursor.name; });
    if (!configured) out.push_back(cursor);
  }
  return out;
}

Health assess(const Snapshot& s, const HealthThresholds& t) {
  std::vector<std::string> red, amber;
  const auto& b = s.buffer;

  if (!s.buffer_writable) red.push_back("buffer refuses records: " + s.buffer_problem);
  if (b.disk_reserve_reached) red.push_back("disk almost full: the free-space reserve is reached");
  const double fill = buffer_fill(b);
  const std::string fill_text = std::to_string(static_cast<int>(fill * 100)) + "% full";
  if (fill >= t.buffer_red_fraction) {
    red.push_back("buffer " + fill_text +
                  (b.full_policy == buffer::FullPolicy::kDropOldest
                       ? ": the oldest undelivered records are being dropped"
                       : ": new records are being refused"));
  } else if (fill >= t.buffer_amber_fraction) {
    amber.push_back("buffer " + fill_text);
  }
  const auto unacknowledged = evicted_unacknowledged(b);
  if (s.last_eviction_ns && seconds_between(s.last_eviction_ns, s.now_ns) < t.loss_red_window_s) {
    red.push_back("undelivered records are being evicted (lost): " + std::to_string(evicted_since_start(b)) +
                  " since start, the latest " + duration_text(seconds_between(s.last_eviction_ns, s.now_ns)) +
                  " ago");
  } else if (unacknowledged) {
    amber.push_back(std::to_string(unacknowledged) + " undelivered records lost to the cap, not yet acknowledged (" +
                    std::to_string(evicted_since_start(b)) +
                    " since start); once understood: sudo tidegate buffer acknowledge-losses");
  }
  for (const auto& cursor : retired_sinks(s)) {
    amber.push_back("sink " + cursor.name + " is no longer configured but its cursor holds " +
                    std::to_string(cursor.lag_records) + " records; if it is retired: sudo tidegate sink forget " +
                    cursor.name);
  }

  for (const auto& src : s.sources) {
    if (src.stats.connected) continue;
    const auto down = src.down_since_ns ? seconds_between(src.down_since_ns, s.now_ns) : 0;
    auto text = "source " + src.stats.name + " disconnected for " + duration_text(down);
    if (!src.stats.last_error.empty()) text += ": " + src.stats.last_error;
    (down >= t.source_red_after_s ? red : amber).push_back(text);
  }

  for (const auto& k : s.sinks) {
    const auto& f = k.stats;
    if (k.paused) amber.push_back("sink " + f.sink + " paused by an operator");
    if (f.consecutive_failures > 0) {
      const std::int64_t since = f.last_success_ns ? f.last_success_ns : s.started_ns;
      const auto failing = seconds_between(since, s.now_ns);
      auto text = "sink " + f.sink + " failing" +
                  (f.last_success_ns ? ", last success " + duration_text(failing) + " ago"
                                     : ", no success since start " + duration_text(failing) + " ago");
      if (!f.last_error.empty()) text += ": " + f.last_error;
      (failing >= t.failing_red_after_s ? red : amber).push_back(text);
    }
    if (k.lag.oldest_undelivered_ingest_ns) {
      const auto age = seconds_between(*k.lag.oldest_undelivered_ingest_ns, s.now_ns);
      if (age >= t.lag_amber_s) {
        amber.push_back("sink " + f.sink + " is " + duration_text(age) + " behind (" +
                        std::to_string(k.lag.lag_records) + " records waiting)");
      }
    }
  }
  if (b.dead_letters) amber.push_back(std::to_string(b.dead_letters) + " dead letters to inspect");
  if (const auto& r = s.open_report; r.recovered) {
    // Readings may have been lost with the damaged pages: a technician must
    // see it, not only the log (until the next start).
    amber.push_back("the buffer file was damaged at start (" + r.problem + "): moved aside to " +
                    r.moved_aside_to.string() + ", " + std::to_string(r.salvaged_records) + " records salvaged");
  }

  Health h;
  h.level = !red.empty() ? HealthLevel::kRed : !amber.empty() ? HealthLevel::kAmber : HealthLevel::kGreen;
  h.reasons = std::move(red);
  h.reasons.insert(h.reasons.end(), amber.begin(), amber.end());
  return h;
}

}  // namespace tidegate::status
