#include "tidegate/streams/field_values.h"
#include "tidegate/streams/operator.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "tidegate/common/json_path.h"

namespace tidegate::streams {
namespace {

std::optional<double> finite(double v) { return std::isfinite(v) ? std::optional<double>(v) : std::nullopt; }

std::optional<double> number_of(const nlohmann::json& node) {
  if (node.is_boolean()) return node.get<bool>() ? 1.0 : 0.0;
  if (node.is_number()) return finite(node.get<double>());
  return std::nullopt;
}

}  // namespace

bool FieldValues::read(std::string_view payload, std::vector<std::optional<double>>& values) {
  values.assign(paths_.size(), std::nullopt);
  const auto parsed = view_.parse(payload);
  if (parsed == processing::JsonView::Parse::kNotJson || parsed == processing::JsonView::Parse::kNotObject) {
    return false;
  }
  bool fallback = parsed == processing::JsonView::Parse::kUnsupported;
  for (std::size_t i = 0; i < paths_.size() && !fallback; ++i) {
    std::uint32_t key = 0, value = 0;
    switch (view_.find(paths_[i], key, value)) {
      case processing::JsonView::Find::kMissing:
        break;
      case processing::JsonView::Find::kUnsupported:
        fallback = true;
        break;
      case processing::JsonView::Find::kFound:
        switch (view_.type(value)) {
          case processing::JsonView::Type::kNumber: {
            double v = 0;
            if (view_.number(value, v)) values[i] = finite(v);
            break;
          }
          case processing::JsonView::Type::kTrue: values[i] = 1.0; break;
          case processing::JsonView::Type::kFalse: values[i] = 0.0; break;
          default: break;
        }
        break;
    }
  }
  if (!fallback) return true;
  // The reference path: a full parse.
  values.assign(paths_.size(), std::nullopt);
  auto doc = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (const auto* node = common::find_json_path(doc, paths_[i])) values[i] = number_of(*node);
  }
  return true;
}

std::string device_key(const buffer::Record& r, bool per_topic) {
  return per_topic ? nlohmann::json::array({r.partition_key, r.topic}).dump() : r.partition_key;
}

}  // namespace tidegate::streams
