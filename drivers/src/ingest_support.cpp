#include "tidegate/drivers/ingest_support.h"

#include <sys/timex.h>

#include <cctype>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tidegate/common/civil_time.h"
#include "tidegate/common/json_path.h"

namespace tidegate::drivers {

bool kernel_clock_synchronized() {
  timex tx{};
  const int state = ::adjtimex(&tx);
  return state != -1 && state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

ClockSyncProbe::ClockSyncProbe() : query_(kernel_clock_synchronized) {}
ClockSyncProbe::ClockSyncProbe(Query query) : query_(std::move(query)) {}

bool ClockSyncProbe::synchronized() {
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_check_) {
    cached_ = query_();
    next_check_ = now + std::chrono::seconds(1);
  }
  return cached_;
}

TopicPattern::TopicPattern(std::string_view pattern) {
  if (pattern.empty()) return;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = pattern.find('/', start);
    const std::string_view level = pattern.substr(start, slash == std::string_view::npos ? pattern.npos : slash - start);
    if (!levels_.empty() && levels_.back().kind == Kind::kRest) {
      throw std::invalid_argument("'#' must be the last level");
    }
    if (level == "#") {
      levels_.push_back({Kind::kRest, {}});
    } else if (level == "+") {
      levels_.push_back({Kind::kAny, {}});
    } else if (level.size() >= 2 && level.front() == '{' && level.back() == '}') {
      levels_.push_back({Kind::kCapture, std::string(level.substr(1, level.size() - 2))});
    } else if (level.find_first_of("+#{}") != std::string_view::npos) {
      throw std::invalid_argument("level '" + std::string(level) + "' mixes text with '+', '#' or braces");
    } else {
      levels_.push_back({Kind::kLiteral, std::string(level)});
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

bool TopicPattern::has_capture() const {
  for (const auto& l : levels_) {
    if (l.kind == Kind::kCapture) return true;
  }
  return false;
}

std::optional<std::string> TopicPattern::capture(std::string_view topic) const {
  std::string captured;
  std::size_t start = 0;
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    const auto& l = levels_[i];
    if (l.kind == Kind::kRest) return captured;
    if (start > topic.size()) return std::nullopt;  // topic has fewer levels
    const std::size_t slash = topic.find('/', start);
    const std::string_view level = topic.substr(start, slash == std::string_view::npos ? topic.npos : slash - start);
    if (l.kind == Kind::kLiteral && level != l.text) return std::nullopt;
    if (l.kind == Kind::kCapture) {
      if (level.empty()) return std::nullopt;
      if (!captured.empty()) captured += '/';
      captured.append(level);
    }
    start = slash == std::string_view::npos ? topic.size() + 1 : slash + 1;
  }
  if (start <= topic.size()) return std::nullopt;  // topic has more levels
  return captured;
}

std::optional<std::string> json_field(std::string_view payload, std::string_view path) {
  auto doc = nlohmann::json::parse(payload, nullptr, false);
  if (doc.is_discarded()) return std::nullopt;
  const auto* node = common::find_json_path(doc, path);
  if (!node) return std::nullopt;
  if (node->is_string()) return node->get<std::string>();
  if (node->is_number() || node->is_boolean()) return node->dump();
  return std::nullopt;
}

bool is_json(std::string_view payload) { return nlohmann::json::accept(payload); }

std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // Integers exactly (a double cannot hold nanoseconds since 1970).
  std::int64_t whole = 0;
  auto [iptr, iec] = std::from_chars(text.data(), text.data() + text.size(), whole);
  if (iec == std::errc() && iptr == text.data() + text.size()) {
    if (whole < 0) return std::nullopt;
    const std::int64_t scale = whole > 100'000'000'000'000 ? 1'000 : whole > 100'000'000'000 ? 1'000'000 : 1'000'000'000;
    std::int64_t ns = 0;
    if (__builtin_mul_overflow(whole, scale, &ns)) return std::nullopt;  // past the year 2262
    return ns;
  }
  double number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec == std::errc() && ptr == text.data() + text.size()) {
    if (number < 0) return std::nullopt;
    const double ns = number > 1e14 ? number * 1e3 : number > 1e11 ? number * 1e6 : number * 1e9;
    if (!(ns < 9.2e18)) return std::nullopt;  // would not fit 64-bit nanoseconds (NaN too)
    return std::llround(ns);
  }
  // RFC 3339, UTC ("Z") only: YYYY-MM-DDTHH:MM:SS[.fraction]Z
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second,
                  &consumed) != 6) {
    return std::nullopt;
  }
  std::int64_t fraction_ns = 0;
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < s.size() && s[i] == '.') {
    std::int64_t scale = 100'000'000;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      fraction_ns += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i + 1 != s.size() || (s[i] != 'Z' && s[i] != 'z')) return std::nullopt;
  // (sscanf's %2d reads "-1" too.)
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 60) {
    return std::nullopt;
  }
  // Not timegm(): see civil_time.h.
  const std::int64_t secs = common::days_from_civil(year, month, day) * 86'400 + hour * 3'600 + minute * 60 + second;
  // Before 1970 or after 2262 (a device with a wrong clock, found by the
  // payload fuzzer: "4052-11-25T..." overflowed) does not fit, as for numbers.
  std::int64_t ns = 0;
  if (secs < 0 || __builtin_mul_overflow(secs, std::int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, fraction_ns, &ns)) {
    return std::nullopt;
  }
  return ns;
}

}  // namespace tidegate::drivers
