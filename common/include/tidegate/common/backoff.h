// Exponential backoff with full jitter (the delay is uniform in
// [0, min(max, base * 2^attempt)]), so a fleet of gateways does not retry a
// recovering broker or endpoint in lockstep.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace tidegate::common {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max, std::uint32_t seed = std::random_device{}());
  std::chrono::milliseconds next();
  void reset() { attempt_ = 0; }
  std::uint32_t attempts() const { return attempt_; }

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds max_;
  std::uint32_t attempt_ = 0;
  std::mt19937 rng_;
};

}  // namespace tidegate::common
