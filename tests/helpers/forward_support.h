// Forwarder settings for tests: a short linger and retry delays scaled to
// the test's peer, so failures are retried within the test's patience.
#pragma once

#include <chrono>

#include "tidegate/forward/forwarder.h"

namespace tidegate::testing {

inline forward::ForwarderOptions quick_forwarder(std::chrono::milliseconds retry_min,
                                                 std::chrono::milliseconds retry_max) {
  forward::ForwarderOptions f;
  f.linger = std::chrono::milliseconds(5);
  f.retry_min = retry_min;
  f.retry_max = retry_max;
  return f;
}

}  // namespace tidegate::testing
