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

#include "tidegate/common/clock.h"
#include "tidegate/processing/json_view.h"

namespace tidegate::streams {

using common::utc_text;

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

}  // namespace tidegate::streams
