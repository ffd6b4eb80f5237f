// The numbers a stateful processor reads from a record: named JSON fields
// (dotted paths) of its payload, through the JsonView fast path and, where
// the view cannot answer (escaped keys), a full parse. A field that is
// missing, not a number (true/false count as 1/0) or not finite has no value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tidegate/processing/json_view.h"

namespace tidegate::streams {

class FieldValues {
 public:
  explicit FieldValues(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  const std::vector<std::string>& paths() const { return paths_; }
  // Reads `payload`; false when it is not a JSON object (no field has a value).
  bool read(std::string_view payload, std::vector<std::optional<double>>& values);

 private:
  std::vector<std::string> paths_;
  processing::JsonView view_;
};

// "2026-12-06T07:00:00.000Z": UTC with milliseconds, exact for 64-bit times
// (not gmtime: time_t is 32 bits on armhf).
std::string utc_text(std::int64_t ns);

}  // namespace tidegate::streams
