// The byte rule every read of records follows, from the file or from memory:
// records are taken while their accounted bytes stay within max_bytes, but
// the first is always taken (a record larger than the limit is still
// delivered, alone).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tidegate/buffer/record.h"

namespace tidegate::buffer {

class ReadLimit {
 public:
  explicit ReadLimit(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // Whether `r` joins a batch that holds `taken` records so far; counts it if so.
  bool admits(const Record& r, std::size_t taken) {
    const std::uint64_t size = accounted_size(r);
    if (taken > 0 && bytes_ + size > max_bytes_) return false;
    bytes_ += size;
    return true;
  }

 private:
  const std::uint64_t max_bytes_;
  std::uint64_t bytes_ = 0;
};

}  // namespace tidegate::buffer
