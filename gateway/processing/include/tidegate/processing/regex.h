// POSIX extended regular expressions (glibc's regcomp/regexec), for the
// patterns operators write in filters and redactions. Not std::regex: its
// recursive matcher can exhaust the stack on a long payload, and a payload
// is outside input.
#pragma once

#include <regex.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tidegate::processing {

class RegexError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Regex {
 public:
  // Throws RegexError with regcomp's message if `pattern` is not valid ERE.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) = delete;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  const std::string& pattern() const { return pattern_; }
  bool search(std::string_view text) const;
  // Every non-overlapping match replaced by replace(match).
  template <typename Replace>
  std::string replace_all(std::string_view text, Replace&& replace) const {
    std::string out;
    std::size_t at = 0;
    std::size_t start = 0, end = 0;
    while (at <= text.size() && next(text, at, start, end)) {
      out.append(text.substr(at, start - at));
      out += replace(text.substr(start, end - start));
      // An empty match moves on by one character so the loop ends.
      if (end == start) {
        if (end < text.size()) out.push_back(text[end]);
        at = end + 1;
      } else {
        at = end;
      }
    }
    if (at < text.size()) out.append(text.substr(at));
    return out;
  }

 private:
  // The first match at or after `from`: [start, end).
  bool next(std::string_view text, std::size_t from, std::size_t& start, std::size_t& end) const;

  std::string pattern_;
  std::unique_ptr<regex_t> re_;
};

}  // namespace tidegate::processing
