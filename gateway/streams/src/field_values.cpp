#include "tidegate/streams/field_values.h"
#include "tidegate/streams/operator.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

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

std::string utc_text(std::int64_t ns) {
  // Floor division, so times before 1970 print correctly too.
  std::int64_t ms = ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0);
  std::int64_t days = ms / 86'400'000 - (ms % 86'400'000 < 0 ? 1 : 0);
  const std::int64_t in_day = ms - days * 86'400'000;
  // Howard Hinnant's civil_from_days.
  days += 719'468;
  const std::int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
  const auto doe = static_cast<unsigned>(days - era * 146'097);
  const unsigned yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  char text[96];
  std::snprintf(text, sizeof text, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(y), m, d,
                static_cast<long long>(in_day / 3'600'000), static_cast<long long>(in_day / 60'000 % 60),
                static_cast<long long>(in_day / 1'000 % 60), static_cast<long long>(in_day % 1'000));
  return text;
}

}  // namespace tidegate::streams
