// The wall clock, in the unit records and status figures use.
#pragma once

#include <cstdint>
#include <string>

namespace tidegate::common {

// Nanoseconds since the epoch from the system's wall clock.
std::int64_t wall_now_ns();

// "2026-12-06T07:00:00.000Z": UTC with milliseconds, exact for 64-bit times
// (not gmtime: time_t is 32 bits on armhf).
std::string utc_text(std::int64_t ns);

}  // namespace tidegate::common
