#include "tidegate/processing/regex.h"

namespace tidegate::processing {

Regex::Regex(const std::string& pattern) : pattern_(pattern), re_(std::make_unique<regex_t>()) {
  const int rc = regcomp(re_.get(), pattern.c_str(), REG_EXTENDED);
  if (rc != 0) {
    char message[256];
    regerror(rc, re_.get(), message, sizeof message);
    re_.reset();
    throw RegexError("invalid regular expression \"" + pattern + "\": " + message);
  }
}

Regex::~Regex() {
  if (re_) regfree(re_.get());
}

Regex::Regex(Regex&& other) noexcept : pattern_(std::move(other.pattern_)), re_(std::move(other.re_)) {}

bool Regex::next(std::string_view text, std::size_t from, std::size_t& start, std::size_t& end) const {
  // REG_STARTEND (glibc, BSD): the range is given, so the text need not be
  // NUL-terminated and may hold NULs.
  regmatch_t m[1];
  m[0].rm_so = static_cast<regoff_t>(from);
  m[0].rm_eo = static_cast<regoff_t>(text.size());
  const int flags = REG_STARTEND | (from > 0 ? REG_NOTBOL : 0);
  if (regexec(re_.get(), text.data() ? text.data() : "", 1, m, flags) != 0) return false;
  start = static_cast<std::size_t>(m[0].rm_so);
  end = static_cast<std::size_t>(m[0].rm_eo);
  return true;
}

bool Regex::search(std::string_view text) const {
  std::size_t start = 0, end = 0;
  return next(text, 0, start, end);
}

}  // namespace tidegate::processing
