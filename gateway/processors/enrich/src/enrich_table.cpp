// Reading enrich tables from CSV and TOML files.
#include <toml++/toml.h>

#include <charconv>
#include <sstream>
#include <stdexcept>

#include "tidegate/common/text.h"
#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/processors/enrich.h"

namespace tidegate::processors {
namespace {

// One CSV line (RFC 4180 quoting, on one line) into cells.
std::vector<std::string> csv_cells(const std::string& line, const std::string& where) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell.push_back(c);
      }
    } else if (c == '"' && common::trim(cell).empty()) {
      quoted = was_quoted = true;
      cell.clear();
    } else if (c == ',') {
      cells.push_back(was_quoted ? cell : common::trim(cell));
      cell.clear();
      was_quoted = false;
    } else {
      cell.push_back(c);
    }
  }
  if (quoted) throw std::runtime_error(where + "a quoted cell is not closed");
  cells.push_back(was_quoted ? cell : common::trim(cell));
  return cells;
}

// A cell as the value it stands for: numbers and true/false as such,
// anything else as text.
processing::Json cell_value(const std::string& cell) {
  if (cell == "true") return true;
  if (cell == "false") return false;
  std::int64_t i = 0;
  const char* end = cell.data() + cell.size();
  if (auto [p, ec] = std::from_chars(cell.data(), end, i); ec == std::errc() && p == end) return i;
  double d = 0;
  if (auto [p, ec] = std::from_chars(cell.data(), end, d); ec == std::errc() && p == end) return d;
  return cell;
}

std::vector<EnrichRule> load_csv(const std::string& path, const std::string& text) {
  std::vector<EnrichRule> rules;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> header;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (common::trim(line).empty() || common::trim(line)[0] == '#') continue;
    auto cells = csv_cells(line, where);
    if (header.empty()) {
      if (cells[0] != "device" && cells[0] != "topic") {
        throw std::runtime_error(where + "the first column must be \"device\" or \"topic\", not \"" + cells[0] + "\"");
      }
      for (std::size_t i = 1; i < cells.size(); ++i) {
        if (cells[i].empty()) throw std::runtime_error(where + "column " + std::to_string(i + 1) + " has no name");
      }
      header = std::move(cells);
      continue;
    }
    if (cells.size() != header.size()) {
      throw std::runtime_error(where + std::to_string(cells.size()) + " cells where the header has " +
                               std::to_string(header.size()));
    }
    EnrichRule rule;
    (header[0] == "device" ? rule.device : rule.topic) = cells[0];
    rule.fields = processing::Json::object();
    for (std::size_t i = 1; i < cells.size(); ++i) {
      if (!cells[i].empty()) rule.fields[header[i]] = cell_value(cells[i]);  // an empty cell adds nothing
    }
    rules.push_back(std::move(rule));
  }
  if (header.empty()) throw std::runtime_error(path + ": no header line (device or topic, then field names)");
  return rules;
}

std::vector<EnrichRule> load_toml(const std::string& path, const std::string& text) {
  toml::table doc;
  try {
    doc = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  std::vector<EnrichRule> rules;
  const auto* arr = doc.get_as<toml::array>("rules");
  if (!arr) throw std::runtime_error(path + ": expected [[rules]] tables (device, topic, fields)");
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string where = path + ": rules[" + std::to_string(i) + "]: ";
    const auto* t = (*arr)[i].as_table();
    if (!t) throw std::runtime_error(where + "expected a table");
    EnrichRule rule;
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      if (key == "device" || key == "topic") {
        auto s = v.value_exact<std::string>();
        if (!s) throw std::runtime_error(where + key + ": expected a string");
        (key == "device" ? rule.device : rule.topic) = *s;
      } else if (key == "fields" && v.is_table()) {
        rule.fields = plugins::toml_to_json(v);
      } else {
        throw std::runtime_error(where + key + ": unknown key (device, topic and fields = { ... })");
      }
    }
    if (rule.fields.is_null()) throw std::runtime_error(where + "has no fields = { ... }");
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace

std::vector<EnrichRule> load_enrich_file(const std::string& path, const std::string& text) {
  const bool is_toml = path.size() >= 5 && path.compare(path.size() - 5, 5, ".toml") == 0;
  return is_toml ? load_toml(path, text) : load_csv(path, text);
}

}  // namespace tidegate::processors
