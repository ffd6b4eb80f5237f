// Small text helpers: for the line-oriented files operators write by hand
// (password, ACL and environment files), for topic templates, and sizes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace tidegate::common {

// `s` without leading and trailing blanks (spaces, tabs, a CR left by CRLF).
inline std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return std::string(s.substr(first, last - first + 1));
}

// Replaces every `what` in `text` by `with`, scanning on after each
// replacement (a `with` that contains `what` is not expanded again):
// "{device}" in a topic template.
inline void replace_all(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
}

// A size for people: "12.3 MiB" (logs, operator commands).
inline std::string mib_text(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

}  // namespace tidegate::common
