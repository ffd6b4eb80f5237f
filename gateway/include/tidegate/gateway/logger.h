// Log lines on stderr, one per message, systemd style: under journald
// (JOURNAL_STREAM set) each line starts with its syslog priority ("<4>"), so
// `journalctl -p warning` works; otherwise with the level name.
#pragma once

#include <atomic>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "tidegate/buffer/environment.h"

namespace tidegate::gateway {

class Logger {
 public:
  Logger(std::ostream& out, buffer::LogLevel min_level);
  void set_level(buffer::LogLevel level) { min_level_ = level; }
  void write(buffer::LogLevel level, std::string_view component, std::string_view message);
  // A LogFn for libraries; `component` prefixes each line ("" for none).
  buffer::LogFn fn(std::string component = "");

 private:
  std::ostream& out_;
  std::atomic<buffer::LogLevel> min_level_;
  bool journald_;
  std::mutex mu_;
};

}  // namespace tidegate::gateway
