// Helpers every source uses to turn input into records: the clock's sync
// state, partition keys from topic patterns, fields from JSON payloads, and
// reconnect backoff (from tidegate::common).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tidegate/common/backoff.h"
#include "tidegate/common/clock.h"

namespace tidegate::drivers {

// Whether the kernel considers the system clock synchronized (NTP,
// systemd-timesyncd, chrony): adjtimex(2) reports no STA_UNSYNC. Boards
// without a real-time clock boot with a wrong time until then. Cached for a
// second: the answer changes rarely and sources ask per message.
class ClockSyncProbe {
 public:
  using Query = std::function<bool()>;
  ClockSyncProbe();                       // the kernel's answer
  explicit ClockSyncProbe(Query query);   // for tests
  bool synchronized();

 private:
  Query query_;
  bool cached_ = false;
  std::chrono::steady_clock::time_point next_check_{};
};

bool kernel_clock_synchronized();

// A topic pattern such as "sensors/{device}/#": literal levels, "+" for any
// one level, "{name}" to capture one level, "#" for the rest (last only).
class TopicPattern {
 public:
  TopicPattern() = default;
  // Throws std::invalid_argument with the reason for a malformed pattern.
  explicit TopicPattern(std::string_view pattern);
  bool empty() const { return levels_.empty(); }
  bool has_capture() const;
  // The captured levels joined by "/" if the topic matches, else nullopt.
  std::optional<std::string> capture(std::string_view topic) const;

 private:
  enum class Kind { kLiteral, kAny, kCapture, kRest };
  struct Level {
    Kind kind;
    std::string text;
  };
  std::vector<Level> levels_;
};

// A field of a JSON object by dotted path ("meta.device"), as text: strings
// as they are, numbers and booleans as written. nullopt if the payload is not
// a JSON object or has no such scalar field.
std::optional<std::string> json_field(std::string_view payload, std::string_view path);
bool is_json(std::string_view payload);

// A device timestamp from JSON text: a number (seconds, or milliseconds when
// above 1e11, or microseconds above 1e14) or an RFC 3339 UTC string
// ("2026-11-25T22:17:08.5Z"). Nanoseconds since the epoch.
std::optional<std::int64_t> parse_timestamp(std::string_view text);

// Shared with the forwarder; named here for the drivers' code.
using common::Backoff;
using common::wall_now_ns;

}  // namespace tidegate::drivers
