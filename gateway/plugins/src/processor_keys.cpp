#include "tidegate/plugins/processor_plugin.h"

namespace tidegate::plugins {

processing::Json toml_to_json(const toml::node& node) {
  if (const auto* t = node.as_table()) {
    auto out = processing::Json::object();
    for (const auto& [k, v] : *t)
      out[std::string(k.str())] = toml_to_json(v);
    return out;
  }
  if (const auto* a = node.as_array()) {
    auto out = processing::Json::array();
    for (const auto& v : *a)
      out.push_back(toml_to_json(v));
    return out;
  }
  if (auto v = node.value_exact<std::string>()) return *v;
  if (auto v = node.value_exact<std::int64_t>()) return *v;
  if (auto v = node.value_exact<double>()) return *v;
  if (auto v = node.value_exact<bool>()) return *v;
  // Dates and times: as TOML writes them.
  std::ostringstream text;
  node.visit([&](const auto& n) { text << n; });
  return text.str();
}

}  // namespace tidegate::plugins
