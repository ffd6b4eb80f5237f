#include "tidegate/status/collector.h"

#include <chrono>

#include "tidegate/common/clock.h"

namespace tidegate::status {

StatusCollector::StatusCollector(CollectorInputs inputs) : in_(std::move(inputs)), started_ns_(now_ns()) {}

std::int64_t StatusCollector::now_ns() const {
  return in_.clock_ns ? in_.clock_ns() : common::wall_now_ns();
}

void StatusCollector::sample() {
  const auto b = in_.buffer_stats();
  const auto sources = in_.sources();
  const auto sinks = in_.sinks();
  Counters c;
  c.t_ns = now_ns();
  c.appended = b.appended_total;
  c.evicted = b.evicted_total;
  c.refused = b.disk_full_total + b.io_error_total;
  for (const auto& s : sources) {
    c.received[s.name] = s.received_total;
    c.received_bytes[s.name] = s.received_bytes_total;
  }
  for (const auto& k : sinks)
    c.sent[k.sink] = k.sent_records_total;

  std::lock_guard lock(mu_);
  for (const auto& s : sources) {
    if (s.connected) {
      down_since_.erase(s.name);
    } else {
      down_since_.emplace(s.name, c.t_ns);
    }
  }
  if (last_) {
    const double secs = static_cast<double>(c.t_ns - last_->t_ns) / 1e9;
    auto rate = [&](std::uint64_t now, std::uint64_t before) {
      return secs > 0 && now >= before ? static_cast<double>(now - before) / secs : 0.0;
    };
    RatePoint p;
    p.t_ns = c.t_ns;
    p.ingest_per_s = rate(c.appended, last_->appended);
    for (const auto& [name, sent] : c.sent) {
      const auto it = last_->sent.find(name);
      sink_rate_[name] = rate(sent, it == last_->sent.end() ? 0 : it->second);
      p.forward_per_s.emplace_back(name, sink_rate_[name]);
    }
    for (const auto& [name, received] : c.received) {
      const auto it = last_->received.find(name);
      source_rate_[name] = rate(received, it == last_->received.end() ? 0 : it->second);
    }
    for (const auto& [name, bytes] : c.received_bytes) {
      const auto it = last_->received_bytes.find(name);
      source_byte_rate_[name] = rate(bytes, it == last_->received_bytes.end() ? 0 : it->second);
    }
    history_.push_back(p);
    while (history_.size() > in_.history_points)
      history_.pop_front();
    if (c.evicted > last_->evicted) {
      last_eviction_ns_ = c.t_ns;
      if (evicting_since_ns_ == 0) evicting_since_ns_ = last_->t_ns;
    } else {
      evicting_since_ns_ = 0;
    }
    writable_ = c.refused == last_->refused;
    if (!writable_) {
      buffer_problem_ = std::to_string(c.refused - last_->refused) + " records refused in the last " +
                        std::to_string(static_cast<long long>(secs)) + " s (" +
                        (b.disk_full_total > 0 ? "disk full" : "I/O error") + ")";
    }
  } else if (c.evicted > b.evicted_at_open) {
    // Evicted since the buffer opened; losses from before a restart are on
    // disk, not happening now.
    last_eviction_ns_ = c.t_ns;
  }
  // The fill rate looks back a few minutes: long enough to smooth batches
  // and commit windows, short enough to follow an outage starting.
  constexpr std::int64_t kFillWindowNs = 300'000'000'000;
  fill_points_.emplace_back(c.t_ns, b.bytes);
  while (fill_points_.size() > 2 && c.t_ns - fill_points_.front().first > kFillWindowNs) fill_points_.pop_front();
  last_ = std::move(c);
  cached_.reset();
}

Snapshot StatusCollector::snapshot() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (cached_ && now - cached_at_ < in_.cache_for) return *cached_;
  cached_ = build(now_ns());
  cached_at_ = now;
  return *cached_;
}

Snapshot StatusCollector::build(std::int64_t now) {
  Snapshot s;
  s.gateway_id = in_.gateway_id;
  s.version = in_.version;
  s.now_ns = now;
  s.started_ns = started_ns_;
  s.buffer = in_.buffer_stats();
  s.buffer_writable = writable_;
  s.buffer_problem = buffer_problem_;
  s.last_eviction_ns = last_eviction_ns_;
  s.evicting_since_ns = evicting_since_ns_;
  if (fill_points_.size() >= 2 && fill_points_.back().first > fill_points_.front().first) {
    const auto& [t0, b0] = fill_points_.front();
    const auto& [t1, b1] = fill_points_.back();
    s.fill_bytes_per_s = (static_cast<double>(b1) - static_cast<double>(b0)) / (static_cast<double>(t1 - t0) / 1e9);
  }
  s.open_report = in_.open_report;
  for (auto& st : in_.sources()) {
    SourceView v;
    v.messages_per_s = source_rate_.count(st.name) ? source_rate_[st.name] : 0;
    v.bytes_per_s = source_byte_rate_.count(st.name) ? source_byte_rate_[st.name] : 0;
    const auto down = down_since_.find(st.name);
    // A source seen down only now counts from now: the next sample records it.
    if (!st.connected) v.down_since_ns = down != down_since_.end() ? down->second : now;
    v.stats = std::move(st);
    s.sources.push_back(std::move(v));
  }
  for (auto& st : in_.sinks()) {
    SinkView v;
    for (const auto& lag : s.buffer.sinks) {
      if (lag.name == st.sink) v.lag = lag;
    }
    v.lag.name = st.sink;
    v.sent_per_s = sink_rate_.count(st.sink) ? sink_rate_[st.sink] : 0;
    v.drain_eta_s = forward::estimated_drain_seconds(st, v.lag.lag_records);
    v.paused = st.state == "paused";
    v.stats = std::move(st);
    s.sinks.push_back(std::move(v));
  }
  s.rates.assign(history_.begin(), history_.end());
  if (in_.warnings) s.warnings = in_.warnings();
  s.health = assess(s, in_.thresholds);
  return s;
}

}  // namespace tidegate::status
