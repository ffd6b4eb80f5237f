#include "tidegate/common/clock.h"

#include <chrono>
#include <cstdio>

namespace tidegate::common {

std::int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string utc_text(std::int64_t ns) {
  // Floor division, so times before 1970 print correctly too.
  std::int64_t ms = ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0);
  std::int64_t days = ms / 86'400'000 - (ms % 86'400'000 < 0 ? 1 : 0);
  const std::int64_t in_day = ms - days * 86'400'000;
  // Howard Hinnant's civil_from_days.
  days += 719'468;
  const std::int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
  const auto doe = static_cast<unsigned>(days - era * 146'097);
  const unsigned yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  char text[96];
  std::snprintf(text, sizeof text, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(y), m, d,
                static_cast<long long>(in_day / 3'600'000), static_cast<long long>(in_day / 60'000 % 60),
                static_cast<long long>(in_day / 1'000 % 60), static_cast<long long>(in_day % 1'000));
  return text;
}

}  // namespace tidegate::common
