// UTC calendar dates to seconds since 1970 in 64 bits. Not timegm(): time_t
// is 32 bits on armhf (Debian 12), where timegm fails for dates from 2038
// on, and timegm is not standard C++.
#pragma once

#include <cstdint>
#include <ctime>

namespace tidegate::common {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil), exact for any 64-bit year.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Seconds since 1970 of a broken-down UTC time as std::get_time fills it
// (tm_year from 1900, tm_mon from 0); fields are taken as they are, not
// normalised.
constexpr std::int64_t unix_seconds(const std::tm& t) {
  return days_from_civil(std::int64_t{t.tm_year} + 1900, static_cast<unsigned>(t.tm_mon + 1),
                         static_cast<unsigned>(t.tm_mday)) *
             86'400 +
         std::int64_t{t.tm_hour} * 3'600 + std::int64_t{t.tm_min} * 60 + t.tm_sec;
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11'017);
static_assert(days_from_civil(2038, 1, 20) == 24'856);  // past time_t's 32 bits

}  // namespace tidegate::common
