// Linear unit conversions for building data: each unit as (dimension,
// factor, offset) to its dimension's base unit.
#include <map>

#include "tidegate/processors/convert.h"

namespace tidegate::processors {
namespace {

struct Unit {
  const char* dimension;
  double factor;  // base = value * factor + offset
  double offset;
};

const std::map<std::string, Unit>& units() {
  static const std::map<std::string, Unit> table = {
      // temperature, base degC
      {"degC", {"temperature", 1, 0}},
      {"degF", {"temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0}},
      {"K", {"temperature", 1, -273.15}},
      // pressure, base Pa
      {"Pa", {"pressure", 1, 0}},
      {"hPa", {"pressure", 100, 0}},
      {"kPa", {"pressure", 1000, 0}},
      {"mbar", {"pressure", 100, 0}},
      {"bar", {"pressure", 100000, 0}},
      {"psi", {"pressure", 6894.757293168, 0}},
      {"inH2O", {"pressure", 249.08891, 0}},
      // power, base W
      {"W", {"power", 1, 0}},
      {"kW", {"power", 1000, 0}},
      {"MW", {"power", 1e6, 0}},
      {"BTU/h", {"power", 0.29307107017, 0}},
      {"TR", {"power", 3516.8528421, 0}},  // ton of refrigeration
      // energy, base Wh
      {"Wh", {"energy", 1, 0}},
      {"kWh", {"energy", 1000, 0}},
      {"MWh", {"energy", 1e6, 0}},
      {"J", {"energy", 1.0 / 3600.0, 0}},
      {"kJ", {"energy", 1000.0 / 3600.0, 0}},
      {"MJ", {"energy", 1e6 / 3600.0, 0}},
      // volume flow, base m3/h
      {"m3/h", {"flow", 1, 0}},
      {"m3/s", {"flow", 3600, 0}},
      {"l/s", {"flow", 3.6, 0}},
      {"l/min", {"flow", 0.06, 0}},
      {"cfm", {"flow", 1.69901082, 0}},
      // ratio, base 1
      {"%", {"ratio", 0.01, 0}},
      {"ratio", {"ratio", 1, 0}},
      {"ppm", {"ratio", 1e-6, 0}},
      // length, base m
      {"m", {"length", 1, 0}},
      {"mm", {"length", 0.001, 0}},
      {"cm", {"length", 0.01, 0}},
      {"ft", {"length", 0.3048, 0}},
      {"in", {"length", 0.0254, 0}},
  };
  return table;
}

}  // namespace

std::optional<LinearMap> unit_conversion(const std::string& from, const std::string& to) {
  const auto a = units().find(from);
  const auto b = units().find(to);
  if (a == units().end() || b == units().end()) return std::nullopt;
  if (std::string(a->second.dimension) != b->second.dimension) return std::nullopt;
  // to = (from * fa + oa - ob) / fb
  return LinearMap{a->second.factor / b->second.factor, (a->second.offset - b->second.offset) / b->second.factor};
}

std::string known_units() {
  std::string out;
  for (const auto& [name, unit] : units())
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace tidegate::processors
