// A sidecar file beside the database holding a floor for sequence numbers.
//
// Sequence numbers must never be reused, even when the database itself is
// lost to corruption. Before the buffer hands out a sequence at or above the
// recorded floor, it raises the floor by a block (written atomically: temp
// file, fsync, rename, fsync of the directory). A fresh database made after a
// corrupt one was moved aside starts at least at the floor. The cost is one
// small synced write per kBlock records.
#pragma once

#include <cstdint>
#include <filesystem>

namespace tidegate::buffer {

class SeqFloor {
 public:
  static constexpr std::uint64_t kBlock = 1'000'000;

  explicit SeqFloor(std::filesystem::path db_path);

  // The recorded floor, or 0 if no readable sidecar exists.
  std::uint64_t load();
  // Ensures the floor is above `seq`; throws std::system_error on I/O failure.
  void cover(std::uint64_t seq);
  std::uint64_t value() const { return floor_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::uint64_t floor_ = 0;
};

}  // namespace tidegate::buffer
