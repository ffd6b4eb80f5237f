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

#include <nlohmann/json.hpp>

#include "tidegate/common/clock.h"
#include "tidegate/processing/json_view.h"

namespace tidegate::streams {

using common::utc_text;

class FieldValues {
 public:
  explicit FieldValues(std::vector<std::string> paths, std::vector<std::string> group_paths = {})
      : paths_(std::move(paths)), group_paths_(std::move(group_paths)) {}
  const std::vector<std::string>& paths() const { return paths_; }
  // Reads `payload`; false when it is not a JSON object (no field has a
  // value). groups() then holds the group_by values of this payload.
  bool read(std::string_view payload, std::vector<std::optional<double>>& values);
  const std::vector<nlohmann::json>& groups() const { return groups_; }

 private:
  // The group_by values through the view; false where it cannot answer.
  bool read_groups_fast();

  std::vector<std::string> paths_;
  std::vector<std::string> group_paths_;
  std::vector<nlohmann::json> groups_;
  processing::JsonView view_;
};

}  // namespace tidegate::streams
