// The one small interface every source (mqtt/, modbus/, sim/) implements.
// Sources write into the buffer and acknowledge their producer only after the
// buffer reports the commit (see tidegate/buffer/status.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tidegate/common/counter.h"

namespace tidegate::drivers {

struct SourceStats {
  std::string name;
  bool connected = false;
  std::uint64_t received_total = 0;      // messages or readings taken in
  std::uint64_t received_bytes_total = 0; // their payload bytes
  std::uint64_t committed_total = 0;     // of those, committed to the buffer
  std::uint64_t dead_lettered_total = 0; // refused as bad input
  std::uint64_t errors_total = 0;
  std::int64_t last_message_ns = 0;
  std::string last_error;
  std::string kind;  // the plugin's kind ("mqtt", "sim"), set by the daemon
  // The kind's own figures (refusals, redeliveries, ...), rendered on
  // /metrics, /api/status and, those meaning loss or refusal, the page.
  std::vector<common::Counter> counters;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const std::string& name() const = 0;
  // start() returns once the source runs on its own threads; stop() returns
  // once nothing more will be appended.
  virtual void start() = 0;
  virtual void stop() = 0;
  // Backpressure from the buffer: stop taking input, then take it again.
  virtual void pause() = 0;
  virtual void resume() = 0;
  virtual SourceStats stats() const = 0;
};

}  // namespace tidegate::drivers
