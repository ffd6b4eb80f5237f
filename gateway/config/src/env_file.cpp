#include "tidegate/config/env_file.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tidegate/common/text.h"

namespace tidegate::config {
namespace {

using common::trim;

bool valid_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// The value after '=': quoted (the quotes removed, escapes in double quotes
// resolved) or bare (trimmed). nullopt if a quote is not closed.
std::optional<std::string> unquote(const std::string& raw) {
  const std::string v = trim(raw);
  if (v.empty() || (v[0] != '"' && v[0] != '\'')) return v;
  const char q = v[0];
  std::string out;
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (q == '"' && v[i] == '\\' && i + 1 < v.size()) {
      out += v[++i];
    } else if (v[i] == q) {
      return trim(v.substr(i + 1)).empty() ? std::optional<std::string>(out) : std::nullopt;
    } else {
      out += v[i];
    }
  }
  return std::nullopt;
}

}  // namespace

EnvFile parse_env_file(const std::string& text, const std::string& file_name) {
  EnvFile out;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    const int first = ++number;
    while (!line.empty() && line.back() == '\\' && in) {  // continuation
      std::string next;
      if (!std::getline(in, next)) break;
      ++number;
      line.pop_back();
      line += next;
    }
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    const auto where = file_name + ":" + std::to_string(first) + ": ";
    const auto eq = t.find('=');
    if (eq == std::string::npos) {
      out.errors.push_back(where + "expected NAME=VALUE");
      continue;
    }
    const std::string name = trim(t.substr(0, eq));
    if (!valid_name(name)) {
      out.errors.push_back(where + "'" + name + "' is not a variable name (letters, digits, _; 'export' is not allowed)");
      continue;
    }
    auto value = unquote(t.substr(eq + 1));
    if (!value) {
      out.errors.push_back(where + "the quoted value of " + name + " is not closed");
      continue;
    }
    out.vars[name] = *value;
  }
  return out;
}

std::optional<EnvFile> read_env_file(const std::filesystem::path& path, bool must_exist, std::string& error) {
  std::error_code ec;
  if (!must_exist && !std::filesystem::exists(path, ec) && !ec) return EnvFile{};
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_env_file(text.str(), path.string());
}

}  // namespace tidegate::config
