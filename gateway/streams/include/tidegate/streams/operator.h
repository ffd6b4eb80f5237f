// The logic of a stateful processor (window, deadband), apart from the
// stream that runs it: records in, records out, state as key/value entries.
// An operator is deterministic in its input and the times it is given, which
// is what lets a derived stream replay it after a crash and get the same
// state and output (docs/processing.md, "Derived streams").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tidegate/buffer/record.h"
#include "tidegate/common/counter.h"

namespace tidegate::streams {

// The key a record's state is kept under: its device; with per_topic and
// group_by values, a JSON array of the device, the topic and those values
// (unambiguous whatever they hold).
std::string device_key(const buffer::Record& r, bool per_topic, const std::vector<nlohmann::json>& groups);

class StreamOperator {
 public:
  virtual ~StreamOperator() = default;

  // Takes back one entry that changes() once gave (key without the stream's
  // prefix). Throws std::runtime_error on a value it cannot read.
  virtual void restore(const std::string& key, const std::string& value) = 0;
  // Forgets every entry and pending change (a rewind, a changed
  // definition, a refused commit): the stream deletes what the file holds.
  virtual void clear() = 0;
  // How many devices (keys of state) it holds now.
  virtual std::size_t devices() const = 0;

  // One input record the stream's route selected; outputs go to `out`.
  virtual void feed(const buffer::Record& record, std::vector<buffer::NewRecord>& out) = 0;
  // Time passes. `caught_up`: every committed record has been fed, so what
  // the clock says can close windows or end silences without waiting for
  // input that is already in the buffer.
  virtual void tick(std::int64_t now_ns, bool caught_up, std::vector<buffer::NewRecord>& out) = 0;
  // The wall time of the next tick() that may emit something; 0: none.
  virtual std::int64_t next_deadline_ns() const = 0;

  // The entries changed since the last call, as the stream commits them:
  // key -> value, or key -> nullopt for an entry to delete.
  virtual void changes(std::vector<buffer::StateChange>& out) = 0;

  // Its figures for the status page. The stream snapshots them before a
  // batch and puts them back when the batch's commit is refused, so a
  // record is counted once however often it is fed.
  std::vector<common::Counter> counters() const { return counters_; }
  void set_counters(std::vector<common::Counter> c) { counters_ = std::move(c); }

 protected:
  // Declares a counter; returns its index for count().
  std::size_t declare(std::string name, std::string help, bool loss_or_refusal = false) {
    counters_.push_back({std::move(name), std::move(help), 0, common::Counter::Type::kCounter, loss_or_refusal});
    return counters_.size() - 1;
  }
  void count(std::size_t index, double n = 1) { counters_[index].value += n; }

  // The state entry of `key` in `devices`, made if there is room for one
  // more; nullptr (counted in `over_limit`) if max_devices have state.
  template <typename Map>
  typename Map::mapped_type* admit(Map& devices, const std::string& key, std::size_t max_devices,
                                   std::size_t over_limit) {
    auto it = devices.find(key);
    if (it != devices.end()) return &it->second;
    if (devices.size() >= max_devices) {
      count(over_limit);
      return nullptr;
    }
    return &devices[key];
  }

 private:
  std::vector<common::Counter> counters_;
};

}  // namespace tidegate::streams
