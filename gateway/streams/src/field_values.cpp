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

bool FieldValues::read_groups_fast() {
  for (std::size_t i = 0; i < group_paths_.size(); ++i) {
    std::uint32_t key = 0, value = 0;
    switch (view_.find(group_paths_[i], key, value)) {
      case processing::JsonView::Find::kMissing: break;
      case processing::JsonView::Find::kUnsupported: return false;
      case processing::JsonView::Find::kFound:
        switch (view_.type(value)) {
          case processing::JsonView::Type::kString: {
            std::string text;
            view_.decode(value, [&](char c) { text.push_back(c); });
            groups_[i] = std::move(text);
            break;
          }
          case processing::JsonView::Type::kNumber: {
            const auto raw = view_.raw(value);
            groups_[i] = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
            break;
          }
          case processing::JsonView::Type::kTrue: groups_[i] = true; break;
          case processing::JsonView::Type::kFalse: groups_[i] = false; break;
          case processing::JsonView::Type::kNull: break;
          default: return false;  // an object or array: the full parse writes it canonically
        }
        break;
    }
  }
  return true;
}

bool FieldValues::read(std::string_view payload, std::vector<std::optional<double>>& values) {
  values.assign(paths_.size(), std::nullopt);
  groups_.assign(group_paths_.size(), nullptr);
  const auto parsed = view_.parse(payload);
  if (parsed == processing::JsonView::Parse::kNotJson || parsed == processing::JsonView::Parse::kNotObject) {
    return false;
  }
  bool fallback = parsed == processing::JsonView::Parse::kUnsupported || !read_groups_fast();
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
  groups_.assign(group_paths_.size(), nullptr);
  auto doc = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (const auto* node = common::find_json_path(doc, paths_[i])) values[i] = number_of(*node);
  }
  for (std::size_t i = 0; i < group_paths_.size(); ++i) {
    if (const auto* node = common::find_json_path(doc, group_paths_[i])) groups_[i] = *node;
  }
  return true;
}

std::string device_key(const buffer::Record& r, bool per_topic, const std::vector<nlohmann::json>& groups) {
  if (!per_topic && groups.empty()) return r.partition_key;
  auto key = nlohmann::json::array({r.partition_key});
  if (per_topic) key.push_back(r.topic);
  for (const auto& g : groups) key.push_back(g);
  return key.dump();
}

}  // namespace tidegate::streams
