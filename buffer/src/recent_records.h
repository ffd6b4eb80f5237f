// The newest committed records, kept in memory for readers that are caught
// up. A live sink reads a batch right after it was committed; reading it back
// from SQLite cost about a fifth of the gateway's instructions per reading
// (callgrind, bench_compare): a reader connection drops its page cache after
// every write, so each read walks the WAL index and copies pages again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "tidegate/buffer/record.h"

namespace tidegate::buffer {

class RecentRecords {
 public:
  // `max_bytes`: accounted bytes (plus each entry's own size) kept at most;
  // 0 keeps nothing and every read goes to the file.
  explicit RecentRecords(std::uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Records of one commit, in sequence order, all after the ones held: the
  // writer calls this once the transaction is durable, before readers learn
  // of the new records. The oldest go once the bytes exceed the cap.
  void add(std::vector<Record> committed);

  // Rows deleted from the file (delivered, expired or evicted) leave memory
  // too, so that a read never returns what the file no longer has.
  void forget_through(std::uint64_t seq);

  // The records after `after`, as Queries::read_after would return them, or
  // nullopt when memory does not hold everything after `after` (the reader
  // must go to the file). Empty when nothing newer was committed.
  std::optional<std::vector<Record>> read_after(std::uint64_t after, std::size_t max_records,
                                                std::size_t max_bytes) const;

 private:
  static std::uint64_t footprint(const Record& r) { return accounted_size(r) + sizeof(Record); }
  void trim();  // mu_ held

  const std::uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::deque<Record> records_;  // ascending seq
  std::uint64_t bytes_ = 0;     // footprint of records_
};

}  // namespace tidegate::buffer
