#include "tidegate/config/schema.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace tidegate::config {

std::string ConfigError::text() const {
  std::string out = file;
  if (!key.empty()) out += ": " + key;
  return out + ": " + reason;
}

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string unit(ptr, text.data() + text.size());
  while (!unit.empty() && unit.front() == ' ')
    unit.erase(0, 1);
  for (auto& c : unit)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, std::uint64_t> kUnits[] = {{"", 1},
                                                                 {"b", 1},
                                                                 {"k", 1ull << 10},
                                                                 {"kib", 1ull << 10},
                                                                 {"kb", 1000},
                                                                 {"m", 1ull << 20},
                                                                 {"mib", 1ull << 20},
                                                                 {"mb", 1000'000},
                                                                 {"g", 1ull << 30},
                                                                 {"gib", 1ull << 30},
                                                                 {"gb", 1000'000'000}};
  for (const auto& [name, factor] : kUnits) {
    if (unit != name) continue;
    if (value > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;  // would wrap
    return value * factor;
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_duration_ms(std::string_view text) {
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data() || value < 0) return std::nullopt;
  const std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  std::int64_t factor = 0;
  if (unit == "ms") factor = 1;
  if (unit == "s") factor = 1000;
  if (unit == "m") factor = 60'000;
  if (unit == "h") factor = 3'600'000;
  if (unit == "d") factor = 86'400'000;
  // Durations become std::chrono nanoseconds downstream: at most ~292 years
  // (found by fuzz/operator_text_fuzz: "2006742056742050006m" overflowed).
  constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / 1'000'000;
  std::int64_t ms = 0;
  if (factor == 0 || __builtin_mul_overflow(value, factor, &ms) || ms > kMaxMs) return std::nullopt;
  return ms;
}

std::string format_duration(std::int64_t ms) {
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

// Reads one TOML table against declared keys. Every getter declares its key
// (describe mode records it; normal mode marks it known); finish() reports
// any key of the table that nobody declared.
bool check_readable_file(Context& ctx, const std::string& key, const std::string& path, const char* what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  char c;
  const bool ok = fd >= 0 && ::read(fd, &c, 1) >= 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) ctx.error(key, std::string(what) + " " + in_quotes(path) + " is not readable: " + std::strerror(error));
  return ok;
}

void check_creatable_file(Context& ctx, const std::string& key, const std::filesystem::path& path) {
  if (path.empty()) return ctx.error(key, "must not be empty");
  std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && ::access(path.c_str(), R_OK | W_OK) != 0) {
    return ctx.error(key, in_quotes(path.string()) + " exists but is not readable and writable");
  }
  while (!std::filesystem::exists(dir, ec)) {
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  if (!std::filesystem::is_directory(dir, ec) || ::access(dir.c_str(), W_OK | X_OK) != 0) {
    ctx.error(key, "directory " + in_quotes(dir.string()) + " is not writable, so " + in_quotes(path.string()) +
                       " cannot be created");
  }
}

std::string env_name(const char* kind, const std::string& name, const char* what) {
  std::string out = std::string("TIDEGATE_") + kind + "_";
  for (char c : name)
    out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
  return out + "_" + what;
}

void split_host_port(const std::string& text, std::string& host, std::string& port_text) {
  port_text.clear();
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) {  // unbalanced: no host at all
      host.clear();
      return;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size() && text[close + 1] == ':') port_text = text.substr(close + 2);
    return;
  }
  const auto colon = text.rfind(':');
  host = text.substr(0, colon);
  if (colon != std::string::npos) port_text = text.substr(colon + 1);
}

bool parse_port(const std::string& text, unsigned min, std::uint16_t& port) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < min || value > 65535) {
    return false;
  }
  port = static_cast<std::uint16_t>(value);
  return true;
}

bool parse_broker_url(const std::string& url, std::string& host, std::uint16_t& port, bool& tls) {
  std::string rest = url;
  tls = false;
  if (rest.rfind("mqtts://", 0) == 0) {
    tls = true;
    rest = rest.substr(8);
  } else if (rest.rfind("mqtt://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return false;
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port_text;
  split_host_port(rest, host, port_text);
  if (host.empty()) return false;
  port = tls ? 8883 : 1883;
  return port_text.empty() || parse_port(port_text, 1, port);
}

bool parse_listen(const std::string& text, std::string& address, std::uint16_t& port) {
  std::string host, port_text;
  split_host_port(text, host, port_text);
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec || !parse_port(port_text, 0, port)) return false;
  address = host;
  return true;
}

}  // namespace tidegate::config
