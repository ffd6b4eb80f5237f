#include "tidegate/drivers/modbus/exception_report.h"

#include <algorithm>
#include <cmath>

namespace tidegate::drivers::modbus {

ExceptionReport::ExceptionReport(const std::vector<Point>& points)
    : points_(points), last_(points.size()), sent_(points.size()), sent_ns_(points.size()) {}

bool ExceptionReport::leaves_band(const Point& p, const nlohmann::ordered_json& last,
                                  const nlohmann::ordered_json& now) {
  if (last.is_number() && now.is_number()) {
    const double a = last.get<double>(), b = now.get<double>();
    const double band = std::max(p.deadband, p.deadband_percent / 100.0 * std::fabs(a));
    return std::fabs(b - a) > band;
  }
  return last != now;
}

std::vector<bool> ExceptionReport::select(const std::vector<bool>& read,
                                          const std::vector<nlohmann::ordered_json>& values, std::int64_t now_ns,
                                          bool& full) {
  std::vector<bool> carry(points_.size());
  full = false;
  for (std::size_t i = 0; i < points_.size(); ++i) {
    if (!read[i]) continue;
    const Point& p = points_[i];
    if (!p.by_exception || !sent_[i]) {
      carry[i] = true;
      continue;
    }
    const auto silent_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(p.max_silence).count();
    if (now_ns - sent_ns_[i] >= silent_ns) full = true;
    carry[i] = leaves_band(p, last_[i], values[i]);
  }
  for (std::size_t i = 0; i < points_.size(); ++i) {
    if (!read[i]) continue;
    if (full) carry[i] = true;
    if (!carry[i]) continue;
    last_[i] = values[i];
    sent_[i] = true;
    sent_ns_[i] = now_ns;
  }
  return carry;
}

void ExceptionReport::forget(const std::vector<std::size_t>& points) {
  for (const auto i : points) sent_.at(i) = false;
}

}  // namespace tidegate::drivers::modbus
