// [[processors.convert]]: per field, value * scale + offset (or a named unit
// conversion, degF to degC), the unit recorded beside it, and a type
// coercion. A value that cannot be converted (text where a number is
// needed) dead-letters the record with the field and the value.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tidegate/processing/processor.h"

namespace tidegate::processors {

// value_in_to = value_in_from * scale + offset, for two units of one
// dimension (temperature, pressure, power, energy, flow, ...); nullopt if
// either is unknown or they measure different things.
struct LinearMap {
  double scale = 1;
  double offset = 0;
};
std::optional<LinearMap> unit_conversion(const std::string& from, const std::string& to);
// Every unit unit_conversion() knows, for the reference and errors.
std::string known_units();

struct ConvertRule {
  std::string field;
  double scale = 1;
  double offset = 0;
  std::string unit;        // recorded in unit_field when not empty
  std::string unit_field;  // default: <field>_unit
  enum class Type { kKeep, kFloat, kInt, kString, kBool } type = Type::kKeep;
};

struct ConvertOptions {
  std::string name;
  std::string files_read;
  std::vector<ConvertRule> rules;
};

class Convert : public processing::Processor {
 public:
  explicit Convert(const ConvertOptions& o) : opts_(o) {}
  processing::Verdict process(processing::Message& message) override;

 private:
  ConvertOptions opts_;
};

}  // namespace tidegate::processors
