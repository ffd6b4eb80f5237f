#include "tidegate/gateway/logger.h"

#include <cstdlib>

namespace tidegate::gateway {

Logger::Logger(std::ostream& out, buffer::LogLevel min_level)
    : out_(out), min_level_(min_level), journald_(std::getenv("JOURNAL_STREAM") != nullptr) {}

void Logger::write(buffer::LogLevel level, std::string_view component, std::string_view message) {
  if (level < min_level_.load()) return;
  std::string line;
  if (journald_) {
    static const char* kPriority[] = {"<7>", "<6>", "<4>", "<3>"};
    line = kPriority[static_cast<int>(level)];
  } else {
    line = buffer::to_string(level);
    line += ' ';
  }
  if (!component.empty()) {
    line.append(component);
    line += ": ";
  }
  line.append(message);
  line += '\n';
  std::lock_guard lock(mu_);
  out_ << line << std::flush;
}

buffer::LogFn Logger::fn(std::string component) {
  return [this, component = std::move(component)](buffer::LogLevel level, std::string_view message) {
    write(level, component, message);
  };
}

}  // namespace tidegate::gateway
