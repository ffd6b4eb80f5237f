#include "tidegate/buffer/environment.h"

#include <sys/statvfs.h>

#include <cstdio>
#include <string>

#include "tidegate/buffer/options.h"
#include "tidegate/buffer/status.h"

namespace tidegate::buffer {
namespace {

class SystemClock final : public Clock {
 public:
  std::int64_t wall_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class StatvfsDiskSpace final : public DiskSpace {
 public:
  std::optional<std::uint64_t> available_bytes(const std::filesystem::path& dir) override {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
  static auto clock = std::make_shared<SystemClock>();
  return clock;
}

std::shared_ptr<DiskSpace> system_disk_space() {
  static auto disk = std::make_shared<StatvfsDiskSpace>();
  return disk;
}

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}

LogFn stderr_log() {
  return [](LogLevel level, std::string_view message) {
    std::string line = std::string(to_string(level)) + " buffer: ";
    line.append(message);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

const char* to_string(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kBackpressure: return "backpressure";
    case Status::kDiskFull: return "disk-full";
    case Status::kClosed: return "closed";
    case Status::kIoError: return "io-error";
    case Status::kInvalidArgument: return "invalid-argument";
    case Status::kNotFound: return "not-found";
  }
  return "?";
}

const char* to_string(Durability value) {
  return value == Durability::kPowerSafe ? "power-safe" : "crash-safe";
}

const char* to_string(FullPolicy value) {
  return value == FullPolicy::kRejectNew ? "reject-new" : "drop-oldest";
}

const char* to_string(IntegrityCheck value) {
  switch (value) {
    case IntegrityCheck::kNone: return "none";
    case IntegrityCheck::kQuick: return "quick";
    case IntegrityCheck::kFull: return "full";
  }
  return "?";
}

const char* to_string(StartPosition value) {
  return value == StartPosition::kLatest ? "latest" : "earliest";
}

}  // namespace tidegate::buffer
