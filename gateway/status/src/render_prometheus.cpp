// Prometheus text exposition format 0.0.4: one HELP and TYPE line per family,
// units in the names (seconds, bytes), counters end in _total, label values
// escaped (backslash, double quote, newline).
#include <cmath>
#include <map>
#include <sstream>

#include "tidegate/status/render.h"

namespace tidegate::status {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  std::ostringstream o;
  o.precision(15);
  o << v;
  return o.str();
}

class Exposition {
 public:
  // Starts a family; samples follow with sample().
  Exposition& family(const std::string& name, const char* type, const std::string& help) {
    name_ = name;
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    return *this;
  }
  // A sample with several labels, e.g. {sink="cloud",processor="site"}.
  Exposition& sample(double value, std::initializer_list<std::pair<const char*, const std::string&>> labels) {
    out_ << name_ << '{';
    const char* sep = "";
    for (const auto& [label, label_value] : labels) {
      out_ << sep << label << "=\"" << escape_label(label_value) << '"';
      sep = ",";
    }
    out_ << "} " << number(value) << '\n';
    return *this;
  }
  // A plugin's sample: its instance label, then the counter's own labels.
  Exposition& sample(double value, const std::string& label, const std::string& label_value,
                     const std::vector<std::pair<std::string, std::string>>& more) {
    out_ << name_ << '{' << label << "=\"" << escape_label(label_value) << '"';
    for (const auto& [k, v] : more) out_ << ',' << k << "=\"" << escape_label(v) << '"';
    out_ << "} " << number(value) << '\n';
    return *this;
  }
  Exposition& sample(double value, const std::string& label = "", const std::string& label_value = "") {
    out_ << name_;
    if (!label.empty()) out_ << '{' << label << "=\"" << escape_label(label_value) << "\"}";
    out_ << ' ' << number(value) << '\n';
    return *this;
  }
  Exposition& gauge(const std::string& name, const std::string& help, double value) {
    return family(name, "gauge", help).sample(value);
  }
  Exposition& counter(const std::string& name, const std::string& help, std::uint64_t value) {
    return family(name, "counter", help).sample(static_cast<double>(value));
  }
  std::ostringstream& raw() { return out_; }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::string name_;
};

// Each sink's processors, labelled by sink, processor name and kind.
void processor_families(Exposition& e, const std::vector<SinkView>& sinks) {
  using P = processing::ProcessorStats;
  const std::pair<const char*, const char*> names[] = {
      {"tidegate_processor_records_in_total", "Records given to the processor."},
      {"tidegate_processor_records_out_total", "Records it passed on."},
      {"tidegate_processor_dropped_records_total", "Records it filtered out on purpose."},
      {"tidegate_processor_dead_lettered_records_total", "Records it could not process (dead-lettered, with the reason)."},
      {"tidegate_processor_seconds_total", "Time spent in the processor."},
  };
  double (*const values[])(const P&) = {
      [](const P& p) { return static_cast<double>(p.in_total); },
      [](const P& p) { return static_cast<double>(p.out_total); },
      [](const P& p) { return static_cast<double>(p.dropped_total); },
      [](const P& p) { return static_cast<double>(p.dead_lettered_total); },
      [](const P& p) { return p.seconds_total; },
  };
  bool any = false;
  for (const auto& k : sinks)
    any |= !k.stats.processors.empty();
  if (!any) return;
  for (std::size_t f = 0; f < std::size(names); ++f) {
    e.family(names[f].first, "counter", names[f].second);
    for (const auto& k : sinks) {
      for (const auto& p : k.stats.processors)
        e.sample(values[f](p), {{"sink", k.stats.sink}, {"processor", p.name}, {"kind", p.kind}});
    }
  }
}

double seconds(std::int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

double age(const Snapshot& s, const std::optional<std::int64_t>& ns) {
  return ns ? seconds(std::max<std::int64_t>(0, s.now_ns - *ns)) : 0.0;
}

// The label value of a source's or a sink's samples.
const std::string& instance_name(const SourceView& v) {
  return v.stats.name;
}
const std::string& instance_name(const SinkView& v) {
  return v.stats.sink;
}

const std::string& instance_name(const buffer::SinkStats& v) { return v.name; }

template <typename View, typename Fn>
void per(Exposition& e, const std::vector<View>& views, const std::string& name, const char* type,
         const std::string& help, const char* label, Fn value) {
  if (views.empty()) return;
  e.family(name, type, help);
  for (const auto& v : views)
    e.sample(value(v), label, instance_name(v));
}

// The counters plugins declare: one family per kind and counter name,
// tidegate_<kind>_<role>_<name>, in the order the plugins declare them.
template <typename View>
void plugin_counters(Exposition& e, const std::vector<View>& views, const char* role, const char* label) {
  std::vector<std::string> families;  // first-seen order; the first sample's counter declares the family
  std::map<std::string, std::vector<std::pair<const View*, const common::Counter*>>> samples;
  for (const auto& v : views) {
    const auto& st = v.stats;
    for (const auto& c : st.counters) {
      const std::string family =
          "tidegate_" + (st.kind.empty() ? std::string(role) : st.kind + "_" + role) + "_" + c.name;
      auto& list = samples[family];
      if (list.empty()) families.push_back(family);
      list.push_back({&v, &c});
    }
  }
  for (const auto& family : families) {
    const auto& list = samples[family];
    const auto* decl = list.front().second;
    e.family(family, decl->type == common::Counter::Type::kGauge ? "gauge" : "counter", decl->help);
    for (const auto& [view, counter] : list)
      e.sample(counter->value, label, instance_name(*view), counter->labels);
  }
}

}  // namespace

std::string to_prometheus(const Snapshot& s) {
  Exposition e;
  const auto& b = s.buffer;
  e.family("tidegate_build_info", "gauge", "Version and gateway id of this process (always 1).");
  e.raw() << "tidegate_build_info{version=\"" << escape_label(s.version) << "\",gateway_id=\""
          << escape_label(s.gateway_id) << "\"} 1\n";
  e.gauge("tidegate_uptime_seconds", "Seconds since the gateway started.", seconds(s.now_ns - s.started_ns));
  e.gauge("tidegate_health_level", "Overall health: 0 green, 1 amber, 2 red.", static_cast<double>(s.health.level));

  e.gauge("tidegate_buffer_records", "Records stored in the buffer.", static_cast<double>(b.records));
  e.gauge("tidegate_buffer_bytes", "Accounted bytes stored in the buffer.", static_cast<double>(b.bytes));
  e.gauge("tidegate_buffer_max_bytes", "Byte cap of the buffer (0 = none).", static_cast<double>(b.max_bytes));
  e.gauge("tidegate_buffer_max_records", "Record cap of the buffer (0 = none).", static_cast<double>(b.max_records));
  e.gauge("tidegate_buffer_file_bytes", "Size of the buffer's database and WAL on disk.",
          static_cast<double>(b.file_bytes));
  e.gauge("tidegate_buffer_oldest_record_age_seconds", "Age of the oldest stored record (0 when empty).",
          age(s, b.oldest_ingest_ns));
  e.gauge("tidegate_buffer_writable", "1 unless a commit was refused (disk full, I/O error) in the last sample.",
          s.buffer_writable ? 1 : 0);
  e.gauge("tidegate_buffer_disk_reserve_reached", "1 while free disk space is below the configured reserve.",
          b.disk_reserve_reached ? 1 : 0);
  if (b.disk_available_bytes) {
    e.gauge("tidegate_buffer_disk_available_bytes", "Free space of the buffer's filesystem.",
            static_cast<double>(*b.disk_available_bytes));
  }
  e.counter("tidegate_buffer_appended_records_total", "Records committed to the buffer.", b.appended_total);
  e.counter("tidegate_buffer_evicted_records_total", "Undelivered records removed by the cap (lost).", b.evicted_total);
  e.gauge("tidegate_buffer_evicted_unacknowledged_records",
          "Records lost to the cap that no operator has acknowledged (tidegate buffer acknowledge-losses).",
          static_cast<double>(evicted_unacknowledged(b)));
  e.gauge("tidegate_buffer_fill_rate_bytes_per_second",
          "Net growth of the buffer over the last minutes (ingest minus delivery and retention).",
          s.fill_bytes_per_s);
  if (const auto until_cap = seconds_until_cap(s)) {
    e.gauge("tidegate_buffer_seconds_until_cap",
            "Seconds until the byte cap or the disk reserve is reached at the current net rate.", *until_cap);
  }
  e.gauge("tidegate_buffer_evicting_seconds", "Seconds the buffer has been evicting without a break (0: not now).",
          s.evicting_since_ns ? seconds(s.now_ns - s.evicting_since_ns) : 0.0);
  e.counter("tidegate_buffer_expired_records_total", "Delivered records removed by retention or the cap.",
            b.expired_total);
  e.family("tidegate_buffer_refused_records_total", "counter", "Records the buffer refused, by reason.")
      .sample(static_cast<double>(b.rejected_total), "reason", "backpressure")
      .sample(static_cast<double>(b.disk_full_total), "reason", "disk_full")
      .sample(static_cast<double>(b.io_error_total), "reason", "io_error");
  e.gauge("tidegate_buffer_dead_letters", "Records in the dead-letter table.", static_cast<double>(b.dead_letters));
  e.counter("tidegate_buffer_commits_total", "Group commits.", b.commits_total);
  e.family("tidegate_buffer_read_records_total", "counter",
           "Records read by sinks and derived streams, by where from: the newest commits kept in memory, or the file.")
      .sample(static_cast<double>(b.read_from_memory_total), "from", "memory")
      .sample(static_cast<double>(b.read_from_file_total), "from", "file");
  e.gauge("tidegate_buffer_recovered_at_start",
          "1 when the buffer file was damaged at start, moved aside and salvaged (until the next start).",
          s.open_report.recovered ? 1.0 : 0.0);
  e.gauge("tidegate_buffer_salvaged_records", "Records salvaged from a damaged buffer file at start.",
          static_cast<double>(s.open_report.salvaged_records));
  e.gauge("tidegate_buffer_commit_latency_seconds", "Latency of the last group commit (queue, write, sync).",
          static_cast<double>(b.commit_latency_last_us) / 1e6);

  using Src = SourceView;
  per(e, s.sources, "tidegate_source_connected", "gauge", "1 while the source is connected.", "source",
      [](const Src& v) { return v.stats.connected ? 1.0 : 0.0; });
  per(e, s.sources, "tidegate_source_received_messages_total", "counter", "Messages or readings taken in.", "source",
      [](const Src& v) { return static_cast<double>(v.stats.received_total); });
  per(e, s.sources, "tidegate_source_received_bytes_total", "counter", "Payload bytes of what was taken in.",
      "source", [](const Src& v) { return static_cast<double>(v.stats.received_bytes_total); });
  per(e, s.sources, "tidegate_source_committed_messages_total", "counter", "Of those, committed to the buffer.",
      "source", [](const Src& v) { return static_cast<double>(v.stats.committed_total); });
  per(e, s.sources, "tidegate_source_dead_lettered_messages_total", "counter", "Refused as bad input.", "source",
      [](const Src& v) { return static_cast<double>(v.stats.dead_lettered_total); });
  per(e, s.sources, "tidegate_source_errors_total", "counter", "Connection and protocol errors.", "source",
      [](const Src& v) { return static_cast<double>(v.stats.errors_total); });
  per(e, s.sources, "tidegate_source_last_message_timestamp_seconds", "gauge",
      "Unix time of the last message (0: none yet).", "source",
      [](const Src& v) { return seconds(v.stats.last_message_ns); });
  plugin_counters(e, s.sources, "source", "source");

  using Snk = SinkView;
  per(e, s.sinks, "tidegate_sink_up", "gauge", "0 while the sink's sends are failing, else 1.", "sink",
      [](const Snk& k) { return k.stats.consecutive_failures > 0 ? 0.0 : 1.0; });
  per(e, s.sinks, "tidegate_sink_paused", "gauge", "1 while an operator paused the sink.", "sink",
      [](const Snk& k) { return k.paused ? 1.0 : 0.0; });
  per(e, s.sinks, "tidegate_sink_lag_records", "gauge", "Records not yet acknowledged by the upstream.", "sink",
      [](const Snk& k) { return static_cast<double>(k.lag.lag_records); });
  per(e, s.sinks, "tidegate_sink_lag_bytes", "gauge", "Accounted bytes not yet acknowledged.", "sink",
      [](const Snk& k) { return static_cast<double>(k.lag.lag_bytes); });
  per(e, s.sinks, "tidegate_sink_lag_seconds", "gauge", "Age of the oldest undelivered record (0 when caught up).",
      "sink", [&](const Snk& k) { return age(s, k.lag.oldest_undelivered_ingest_ns); });
  per(e, s.sinks, "tidegate_sink_lost_records_total", "counter", "Undelivered records the buffer's cap evicted.",
      "sink", [](const Snk& k) { return static_cast<double>(k.lag.lost_by_eviction); });
  per(e, s.sinks, "tidegate_sink_sent_records_total", "counter", "Records acknowledged by the upstream.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.sent_records_total); });
  per(e, s.sinks, "tidegate_sink_sent_bytes_total", "counter", "Accounted bytes acknowledged by the upstream.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.sent_bytes_total); });
  per(e, s.sinks, "tidegate_sink_batches_total", "counter", "Batches delivered.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.batches_total); });
  per(e, s.sinks, "tidegate_sink_retries_total", "counter", "Send attempts that did not complete a batch.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.retries_total); });
  per(e, s.sinks, "tidegate_sink_resent_records_total", "counter",
      "Records sent more than once (possible duplicates upstream).", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.resent_records_total); });
  per(e, s.sinks, "tidegate_sink_dead_lettered_records_total", "counter", "Records the upstream will never accept.",
      "sink", [](const Snk& k) { return static_cast<double>(k.stats.dead_lettered_total); });
  per(e, s.sinks, "tidegate_sink_last_success_timestamp_seconds", "gauge",
      "Unix time of the last acknowledged send (0: none yet).", "sink",
      [](const Snk& k) { return seconds(k.stats.last_success_ns); });
  per(e, s.sinks, "tidegate_sink_send_latency_seconds", "gauge", "Duration of the last send.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.last_send_latency_us) / 1e6; });
  per(e, s.sinks, "tidegate_sink_exceptions_total", "counter",
      "Sends (or buffer reads) that threw: a bug or exhausted memory, retried instead of crashing.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.exceptions_total); });
  per(e, s.sinks, "tidegate_sink_not_routed_records_total", "counter",
      "Records the sink's route did not select: moved past, never sent.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.not_routed_total); });
  per(e, s.sinks, "tidegate_sink_filtered_records_total", "counter",
      "Records the sink's processors filtered out on purpose.", "sink",
      [](const Snk& k) { return static_cast<double>(k.stats.filtered_total); });
  plugin_counters(e, s.sinks, "sink", "sink");
  processor_families(e, s.sinks);
  per(e, retired_sinks(s), "tidegate_retired_sink_lag_records", "gauge",
      "Records held for a sink no longer configured (tidegate sink forget NAME releases them).", "sink",
      [](const buffer::SinkStats& c) { return static_cast<double>(c.lag_records); });
  return e.str();
}

}  // namespace tidegate::status
