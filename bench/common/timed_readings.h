// What the MQTT benchmarks send and measure: fixed-size JSON readings that
// carry their number and the moment they were published (one machine, one
// steady clock), latency percentiles over their arrivals, and the disk bytes
// a process wrote.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace tidegate::bench {

inline std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// `bytes` of JSON: {"t":<publish time>,"n":<number>,"v":21.5,"p":"xx..."}.
inline std::string timed_reading(std::uint64_t n, std::int64_t now_ns, std::size_t bytes) {
  std::string s = "{\"t\":" + std::to_string(now_ns) + ",\"n\":" + std::to_string(n) + ",\"v\":21.5,\"p\":\"";
  s.append(bytes - std::min(bytes, s.size() + 2), 'x');
  s += "\"}";
  return s;
}

// The q-quantile of latencies in nanoseconds, as milliseconds; 0 if none.
inline double percentile_ms(std::vector<std::int64_t> latencies_ns, double q) {
  if (latencies_ns.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(latencies_ns.size() - 1));
  std::nth_element(latencies_ns.begin(), latencies_ns.begin() + static_cast<std::ptrdiff_t>(k), latencies_ns.end());
  return static_cast<double>(latencies_ns[k]) / 1e6;
}

// Bytes a process caused to be written to disk so far: /proc/PID/io
// write_bytes minus cancelled_write_bytes (pages dirtied then truncated away).
// The kernel counts a page when it becomes dirty.
inline std::uint64_t written_bytes(pid_t pid) {
  std::uint64_t write = 0, cancelled = 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("write_bytes:", 0) == 0) write = std::stoull(line.substr(12));
    if (line.rfind("cancelled_write_bytes:", 0) == 0) cancelled = std::stoull(line.substr(22));
  }
  return write - std::min(write, cancelled);
}

}  // namespace tidegate::bench
