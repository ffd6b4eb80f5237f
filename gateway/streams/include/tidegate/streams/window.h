// [[processors.window]]: tumbling and hopping windows per device over named
// JSON fields, on ingest time or device time, with count, min, max, mean,
// sum, first, last and standard deviation. One output record per window and
// device, when the window closes: when the time it is kept open for late
// input has passed, judged by the input itself (a replayed backlog closes
// its windows as it goes) or, once the stream has read everything, by the
// clock (a silent device's window still closes on time).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tidegate/drivers/ingest_support.h"
#include "tidegate/streams/field_values.h"
#include "tidegate/streams/operator.h"

namespace tidegate::streams {

enum class WindowTime { kIngest, kDevice };
enum class LatePolicy { kDrop, kCorrect };

struct WindowOptions {
  std::string name;
  std::vector<std::string> fields;      // dotted JSON paths
  std::vector<std::string> aggregates;  // of kAggregateNames; empty: all
  int decimals = -1;                    // figures rounded to this many decimals; -1: as computed
  std::int64_t size_ns = 60'000'000'000;
  std::int64_t hop_ns = 0;  // 0: tumbling (= size); else size must be a multiple of it
  WindowTime time = WindowTime::kIngest;
  std::int64_t allowed_lateness_ns = 1'000'000'000;
  LatePolicy late = LatePolicy::kDrop;
  // kCorrect: how long after closing a window is kept for late input.
  std::int64_t correction_horizon_ns = 0;  // 0: one window size
  bool per_topic = false;                  // windows per device and topic
  std::vector<std::string> group_by;       // and per the values of these JSON fields
  std::string topic = "{name}/{device}";   // of the output records; also {group}
  std::size_t max_devices = 10'000;
};

inline const std::vector<std::string>& aggregate_names() {
  static const std::vector<std::string> names = {"count", "min", "max", "mean", "sum", "first", "last", "stddev"};
  return names;
}

// One field's figures in one window. first/last go by the record's time
// (ingest or device), ties by arrival; stddev is the sample standard
// deviation (n - 1), 0 for one value.
struct FieldAggregate {
  std::uint64_t count = 0;
  double sum = 0, min = 0, max = 0, first = 0, last = 0;
  std::int64_t first_ts = 0, last_ts = 0;
  double mean = 0, m2 = 0;  // Welford's running mean and sum of squared deviations

  void add(double v, std::int64_t ts);
  double stddev() const;
};

class Window : public StreamOperator {
 public:
  explicit Window(WindowOptions options);

  void restore(const std::string& key, const std::string& value) override;
  void clear() override;
  std::size_t devices() const override { return devices_.size(); }
  void feed(const buffer::Record& record, std::vector<buffer::NewRecord>& out) override;
  void tick(std::int64_t now_ns, bool caught_up, std::vector<buffer::NewRecord>& out) override;
  std::int64_t next_deadline_ns() const override { return next_deadline_ns_; }
  void changes(std::vector<buffer::StateChange>& out) override;

 private:
  struct Pane {
    std::uint64_t inputs = 0;
    std::uint32_t emitted = 0;  // how often it went out: a correction has 1 or more
    bool revised = false;       // late input since it went out
    std::vector<FieldAggregate> fields;
  };
  struct Device {
    std::string device, topic;
    nlohmann::ordered_json group;  // group_by path -> value
    std::map<std::int64_t, Pane> open, closed;  // by window start
    std::int64_t watermark = 0;    // device time: the newest device time seen (or estimated)
    std::int64_t offset_ns = 0;    // ingest minus device time of its newest record
    std::int64_t last_ingest_ns = 0;
  };

  // Closes the device's windows that end (plus the lateness) at or before
  // `watermark`, and forgets closed ones past the correction horizon.
  void close_through(const std::string& key, Device& d, std::int64_t watermark, std::vector<buffer::NewRecord>& out);
  // Ingest time: closes every device's windows through the watermark.
  void close_all(std::vector<buffer::NewRecord>& out);
  double rounded(double v) const;
  void emit(const Device& d, std::int64_t start, Pane& pane, std::vector<buffer::NewRecord>& out);
  void touch(const std::string& key) { dirty_.insert(key); }
  std::int64_t horizon() const { return o_.correction_horizon_ns > 0 ? o_.correction_horizon_ns : o_.size_ns; }

  WindowOptions o_;
  std::vector<bool> wanted_;  // by aggregate_names()
  FieldValues reader_;
  std::vector<std::optional<double>> values_;
  drivers::ClockSyncProbe clock_sync_;
  std::map<std::string, Device> devices_;  // ordered: output in the same order on a replay
  std::int64_t ingest_watermark_ = 0;  // ingest time: the newest ingest time seen (or the clock's)
  bool watermark_dirty_ = false;
  std::int64_t earliest_close_ns_ = 0;  // ingest time: the next window end + lateness; 0: none open
  std::set<std::string> dirty_;         // device keys changed since changes()
  std::set<std::string> revised_;       // device keys with late input to re-emit
  std::int64_t next_deadline_ns_ = 0;
  std::int64_t next_forget_scan_ns_ = 0;
  std::size_t inputs_, no_fields_, no_device_time_, late_dropped_, corrections_, windows_, over_limit_;
};

}  // namespace tidegate::streams
