// Report by exception for one device's points: which of the values a poll
// read go into its record. A point with a deadband is sent when it leaves
// the band around the value it last sent (or was never sent); when any such
// point has not been sent for its max_silence, the record carries every
// point, so a steady device is still confirmed in full that often. Points
// without a deadband are sent at every poll.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "tidegate/drivers/modbus/register_map.h"

namespace tidegate::drivers::modbus {

class ExceptionReport {
 public:
  explicit ExceptionReport(const std::vector<Point>& points);

  // For each point (by index) whether this poll's record carries it; `read`
  // says which points the poll read, `values` their values. Marks the
  // chosen ones as sent at `now_ns`. `full` tells whether a max_silence
  // made it a full confirmation.
  std::vector<bool> select(const std::vector<bool>& read, const std::vector<nlohmann::ordered_json>& values,
                           std::int64_t now_ns, bool& full);
  // The record holding these points was not stored: they count as never
  // sent, so the next poll carries them again.
  void forget(const std::vector<std::size_t>& points);

  // Whether `now` is outside the point's band around `last`: numbers by
  // |now - last| > max(deadband, deadband_percent % of |last|), anything
  // else (bool, text, null) by any change.
  static bool leaves_band(const Point& p, const nlohmann::ordered_json& last, const nlohmann::ordered_json& now);

 private:
  const std::vector<Point>& points_;
  std::vector<nlohmann::ordered_json> last_;  // value last sent, per point
  std::vector<bool> sent_;                    // sent since start (or since forget)
  std::vector<std::int64_t> sent_ns_;
};

}  // namespace tidegate::drivers::modbus
