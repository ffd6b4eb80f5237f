// Explicit results at the buffer's boundary: no exceptions on the data plane.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace tidegate::buffer {

enum class Status {
  kOk,
  kBackpressure,     // cap reached under the reject-new policy: retry later
  kDiskFull,         // SQLITE_FULL / ENOSPC: nothing written, retry later
  kClosed,           // the buffer is shutting down
  kIoError,          // any other SQLite or filesystem error (message says which)
  kInvalidArgument,  // caller error, e.g. ack beyond the newest record
  kNotFound,         // unknown sink
};

const char* to_string(Status status);

// What became of one append() call. Either every record of the call was
// committed (kOk, seqs first_seq .. first_seq + count - 1) or none was.
struct AppendOutcome {
  Status status = Status::kOk;
  std::uint64_t first_seq = 0;
  std::uint32_t count = 0;
  std::string error;  // human-readable detail when status != kOk

  bool ok() const { return status == Status::kOk; }
  std::uint64_t last_seq() const { return count == 0 ? 0 : first_seq + count - 1; }
};

// Runs on the buffer's writer thread right after the transaction holding the
// records committed (or failed). Keep it short: it delays the next commit.
// It must not throw; an exception escaping it is caught and logged.
using CommitCallback = std::function<void(const AppendOutcome&)>;

}  // namespace tidegate::buffer
