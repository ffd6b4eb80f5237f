#include "tidegate/common/backoff.h"

#include <algorithm>

namespace tidegate::common {

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max, std::uint32_t seed)
    : base_(base), max_(max), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  const std::uint32_t shift = std::min<std::uint32_t>(attempt_, 20);
  attempt_ += 1;
  const auto ceiling = std::min<std::int64_t>(max_.count(), base_.count() << shift);
  std::uniform_int_distribution<std::int64_t> dist(0, std::max<std::int64_t>(ceiling, 1));
  return std::chrono::milliseconds(dist(rng_));
}

}  // namespace tidegate::common
