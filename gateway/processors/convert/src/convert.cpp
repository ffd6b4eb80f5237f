#include <charconv>
#include <cmath>
#include <limits>

#include "tidegate/common/json_path.h"
#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/processors/convert.h"

namespace tidegate::processors {

using processing::Json;
using processing::Verdict;

namespace {

std::optional<double> number_in(const std::string& text) {
  double d = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, d);
  if (ec != std::errc() || p != end || !std::isfinite(d)) return std::nullopt;
  return d;
}

// The value as a number: numbers, numeric text, booleans as 1/0.
std::optional<double> as_number(const Json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_string()) return number_in(v.get_ref<const std::string&>());
  return std::nullopt;
}

std::string shown(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 40 ? s.substr(0, 40) + "..." : s;
}

}  // namespace

processing::Verdict Convert::process(processing::Message& message) {
  std::string error;
  auto* doc = message.fields(error);
  if (!doc) return Verdict::dead_letter(error);
  bool changed = false;
  for (const auto& rule : opts_.rules) {
    Json* v = common::find_json_path(*doc, rule.field);
    if (!v || v->is_null()) continue;  // a reading without this field: nothing to convert
    auto fail = [&](const char* need) {
      return Verdict::dead_letter("." + rule.field + " is " + shown(*v) + ", not " + need);
    };
    if (rule.scale != 1 || rule.offset != 0) {
      auto n = as_number(*v);
      if (!n) return fail("a number");
      *v = *n * rule.scale + rule.offset;
    }
    switch (rule.type) {
      case ConvertRule::Type::kKeep:
        break;
      case ConvertRule::Type::kFloat: {
        auto n = as_number(*v);
        if (!n) return fail("a number");
        *v = *n;
        break;
      }
      case ConvertRule::Type::kInt: {
        auto n = as_number(*v);
        if (!n || std::fabs(*n) >= 9.2e18) return fail("an integer");
        *v = static_cast<std::int64_t>(std::llround(*n));
        break;
      }
      case ConvertRule::Type::kString:
        if (!v->is_string()) *v = v->dump(-1, ' ', false, Json::error_handler_t::replace);
        break;
      case ConvertRule::Type::kBool:
        if (v->is_boolean()) break;
        if (v->is_number()) {
          *v = v->get<double>() != 0;
        } else if (v->is_string()) {
          const auto& s = v->get_ref<const std::string&>();
          if (s == "true" || s == "on" || s == "1") {
            *v = true;
          } else if (s == "false" || s == "off" || s == "0") {
            *v = false;
          } else {
            return fail("a boolean (true/false, on/off, 1/0)");
          }
        } else {
          return fail("a boolean");
        }
        break;
    }
    if (!rule.unit.empty() &&
        !common::set_json_path(*doc, rule.unit_field.empty() ? rule.field + "_unit" : rule.unit_field,
                               Json(rule.unit))) {
      return Verdict::dead_letter("cannot record the unit of ." + rule.field + ": a level on the way is not an object");
    }
    changed = true;
  }
  if (changed) message.fields_changed();
  return Verdict::pass();
}

namespace {

void read_options(config::Section& s, ConvertOptions& o) {
  s.tables("rules", s.doc_section() + ".rules", "One field's conversion; rules apply in order.",
           [&](config::Section& r, std::size_t) {
             ConvertRule rule;
             rule.field = r.text("field", "", "Required. The field (dotted name for a nested one). A record "
                                              "without it passes unchanged.");
             const std::string from = r.text("from_unit", "", "Convert from this unit (with to_unit): one of " +
                                                                  known_units() + ".");
             const std::string to = r.text("to_unit", "",
                                           "Convert to this unit, and record it. Without from_unit: only record it.");
             rule.scale = r.number("scale", 1, -1e300, 1e300, "value * scale + offset (instead of units).");
             rule.offset = r.number("offset", 0, -1e300, 1e300, "Added after scale.");
             rule.unit_field = r.text("unit_field", "", "Where the unit is recorded. Empty: <field>_unit.");
             const auto type = r.choice("type", "", {"", "float", "int", "string", "bool"},
                                        "Coerce the value: float, int (rounded), string, bool (true/false, "
                                        "on/off, 1/0). Empty: keep its type. Numeric text converts to numbers.");
             rule.type = type == "float"    ? ConvertRule::Type::kFloat
                         : type == "int"    ? ConvertRule::Type::kInt
                         : type == "string" ? ConvertRule::Type::kString
                         : type == "bool"   ? ConvertRule::Type::kBool
                                            : ConvertRule::Type::kKeep;
             rule.unit = to;
             if (!r.context().docs) {
               if (rule.field.empty()) r.context().error(r.key_path("field"), "required: the field to convert");
               if (!from.empty()) {
                 if (to.empty()) r.context().error(r.key_path("to_unit"), "from_unit needs to_unit");
                 if (r.present("scale") || r.present("offset")) {
                   r.context().error(r.key_path("from_unit"), "give either units or scale/offset, not both");
                 }
                 if (auto map = unit_conversion(from, to)) {
                   rule.scale = map->scale;
                   rule.offset = map->offset;
                 } else if (!to.empty()) {
                   r.context().error(r.key_path("from_unit"), "no conversion from \"" + from + "\" to \"" + to +
                                                                  "\" (known: " + known_units() + ")");
                 }
               }
             }
             o.rules.push_back(std::move(rule));
           });
  if (!s.context().docs && o.rules.empty()) {
    s.context().error(s.key_path("rules"), "required: at least one [[" + s.key_path("rules") + "]]");
  }
}

}  // namespace
}  // namespace tidegate::processors

namespace tidegate::plugins {

ProcessorDescriptor convert_processor_plugin() {
  return processor_descriptor<processors::Convert, processors::ConvertOptions>(
      "convert", "Scales, offsets and converts units of JSON fields, recording the unit; coerces types.",
      processors::read_options);
}

}  // namespace tidegate::plugins
