#include "tidegate/gateway/logger.h"

#include <chrono>
#include <cstdlib>

namespace tidegate::gateway {

Logger::Logger(std::ostream& out, buffer::LogLevel min_level)
    : out_(out), min_level_(min_level), journald_(std::getenv("JOURNAL_STREAM") != nullptr) {}

void Logger::write(buffer::LogLevel level, std::string_view component, std::string_view message) {
  if (level >= buffer::LogLevel::kWarning) {
    Line l;
    l.t_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count();
    l.level = level;
    l.text = component.empty() ? std::string(message) : std::string(component) + ": " + std::string(message);
    std::lock_guard lock(mu_);
    recent_.push_back(std::move(l));
    if (recent_.size() > kRecentWarnings) recent_.pop_front();
  }
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

std::vector<Logger::Line> Logger::recent_warnings() const {
  std::lock_guard lock(mu_);
  return {recent_.begin(), recent_.end()};
}

buffer::LogFn Logger::fn(std::string component) {
  return [this, component = std::move(component)](buffer::LogLevel level, std::string_view message) {
    write(level, component, message);
  };
}

}  // namespace tidegate::gateway
