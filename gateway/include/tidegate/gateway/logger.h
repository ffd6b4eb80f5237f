// Log lines on stderr, one per message, systemd style: under journald
// (JOURNAL_STREAM set) each line starts with its syslog priority ("<4>"), so
// `journalctl -p warning` works; otherwise with the level name.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tidegate/buffer/environment.h"

namespace tidegate::gateway {

class Logger {
 public:
  Logger(std::ostream& out, buffer::LogLevel min_level);
  void set_level(buffer::LogLevel level) { min_level_ = level; }
  void write(buffer::LogLevel level, std::string_view component, std::string_view message);
  // A LogFn for libraries; `component` prefixes each line ("" for none).
  buffer::LogFn fn(std::string component = "");

  // The latest warnings and errors (whatever the level filter), newest last,
  // for the status page.
  struct Line {
    std::int64_t t_ns = 0;
    buffer::LogLevel level = buffer::LogLevel::kWarning;
    std::string text;
  };
  std::vector<Line> recent_warnings() const;
  static constexpr std::size_t kRecentWarnings = 50;

 private:
  std::ostream& out_;
  std::atomic<buffer::LogLevel> min_level_;
  bool journald_;
  mutable std::mutex mu_;
  std::deque<Line> recent_;
};

}  // namespace tidegate::gateway
