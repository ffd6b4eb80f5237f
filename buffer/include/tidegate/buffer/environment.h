// Seams to the outside world, injected so tests can move time and fill disks
// without patching globals.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

namespace tidegate::buffer {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall clock, nanoseconds since the Unix epoch (may jump). Used for ingest
  // times and retention; commit windows use std::chrono::steady_clock.
  virtual std::int64_t wall_ns() = 0;
};

std::shared_ptr<Clock> system_clock();

class DiskSpace {
 public:
  virtual ~DiskSpace() = default;
  // Bytes available to unprivileged writers on the filesystem holding `dir`,
  // or nullopt when it cannot be determined (the reserve check is skipped).
  virtual std::optional<std::uint64_t> available_bytes(const std::filesystem::path& dir) = 0;
};

// statvfs(3)-backed implementation.
std::shared_ptr<DiskSpace> system_disk_space();

enum class LogLevel { kDebug, kInfo, kWarning, kError };
const char* to_string(LogLevel level);
using LogFn = std::function<void(LogLevel, std::string_view)>;

// Default logger: one line per message on stderr ("<level> buffer: message").
LogFn stderr_log();

}  // namespace tidegate::buffer
