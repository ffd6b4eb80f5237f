#include "tidegate/common/patterns.h"

namespace tidegate::common {

bool topic_matches(std::string_view filter, std::string_view topic) {
  if (!topic.empty() && topic[0] == '$' && !filter.empty() && (filter[0] == '+' || filter[0] == '#')) return false;
  // Walk both level by level; a level ends at '/' or at the end.
  auto next_level = [](std::string_view& s, bool& more) {
    const auto slash = s.find('/');
    std::string_view level = s.substr(0, slash);
    more = slash != std::string_view::npos;
    s = more ? s.substr(slash + 1) : std::string_view();
    return level;
  };
  bool filter_more = true, topic_more = true;
  while (filter_more) {
    const auto f = next_level(filter, filter_more);
    if (f == "#") return true;  // also matches the parent level ("a/#" matches "a")
    if (!topic_more) return false;
    const auto t = next_level(topic, topic_more);
    if (f != "+" && f != t) return false;
  }
  return !topic_more;
}

bool glob_matches(std::string_view pattern, std::string_view text) {
  // Iterative with one backtrack point: linear for the patterns people write.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

}  // namespace tidegate::common
