// The wall clock, in the unit records and status figures use.
#pragma once

#include <cstdint>

namespace tidegate::common {

// Nanoseconds since the epoch from the system's wall clock.
std::int64_t wall_now_ns();

}  // namespace tidegate::common
