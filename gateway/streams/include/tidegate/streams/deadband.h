// [[processors.deadband]]: report by exception. Per device (and topic, if
// asked), a record goes out when one of its fields leaves the band around
// the value last reported (absolute and/or percentage), the first time a
// device is seen, and when `max_silence` has passed since the last report
// while newer readings were held back (then the newest: a confirmation that
// the value is still in its band). The record that goes out is the input
// record as it was, with the processor's name as its source.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tidegate/streams/field_values.h"
#include "tidegate/streams/operator.h"

namespace tidegate::streams {

struct DeadbandOptions {
  std::string name;
  std::vector<std::string> fields;
  // A field leaves its band when it changed from the value last reported by
  // more than max(band, band_percent % of |reported|): both 0, any change.
  double band = 0;
  double band_percent = 0;
  std::int64_t max_silence_ns = 0;     // 0: no confirmations
  bool per_topic = false;
  std::vector<std::string> group_by;  // bands also per the values of these JSON fields
  std::size_t max_devices = 10'000;
};

class Deadband : public StreamOperator {
 public:
  explicit Deadband(DeadbandOptions options);

  void restore(const std::string& key, const std::string& value) override;
  void clear() override;
  std::size_t devices() const override { return devices_.size(); }
  void feed(const buffer::Record& record, std::vector<buffer::NewRecord>& out) override;
  void tick(std::int64_t now_ns, bool caught_up, std::vector<buffer::NewRecord>& out) override;
  std::int64_t next_deadline_ns() const override { return next_deadline_ns_; }
  void changes(std::vector<buffer::StateChange>& out) override;

 private:
  struct Device {
    std::vector<std::optional<double>> reported;  // per field, as last sent
    std::int64_t reported_ns = 0;                 // ingest time of the last report
    std::optional<buffer::Record> held;           // the newest reading not sent
    std::vector<std::optional<double>> held_values;
  };
  bool leaves_band(const Device& d) const;
  void report(const std::string& key, Device& d, const buffer::Record& r, const std::vector<std::optional<double>>& v,
              std::int64_t at_ns, std::vector<buffer::NewRecord>& out);

  DeadbandOptions o_;
  FieldValues reader_;
  std::vector<std::optional<double>> values_;
  std::map<std::string, Device> devices_;
  std::set<std::string> dirty_;
  std::int64_t next_deadline_ns_ = 0;
  std::size_t inputs_, no_fields_, reported_, confirmations_, suppressed_, over_limit_;
};

}  // namespace tidegate::streams
