// Small text helpers for the line-oriented files operators write by hand
// (password, ACL and environment files).
#pragma once

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

}  // namespace tidegate::common
