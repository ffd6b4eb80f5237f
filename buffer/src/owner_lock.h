// One writer per buffer file. A gateway (or an offline command) that opens
// the buffer for writing holds an advisory lock on "<db>.lock" for as long as
// the buffer is open; a second writer is refused with BufferInUse instead of
// forwarding the same records twice and fighting over the cursors. The kernel
// drops the lock when the holder exits, kill -9 included, so a stale lock
// cannot outlive its process. Read-only inspection takes no lock.
#pragma once

#include <filesystem>

namespace tidegate::buffer {

class OwnerLock {
 public:
  // Throws BufferInUse when another open file description holds the lock,
  // BufferError when the lock file cannot be opened.
  explicit OwnerLock(const std::filesystem::path& db_path);
  ~OwnerLock();
  OwnerLock(const OwnerLock&) = delete;
  OwnerLock& operator=(const OwnerLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace tidegate::buffer
