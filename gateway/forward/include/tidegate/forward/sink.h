// The interface every upstream (file, MQTT, Kinesis, HTTP) implements. A
// forwarder thread owns one sink and calls it synchronously.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tidegate/buffer/record.h"
#include "tidegate/common/counter.h"

namespace tidegate::forward {

// Fluent Bit's FLB_OK / FLB_RETRY / FLB_ERROR, per record.
enum class Outcome {
  kOk,      // the upstream acknowledged it
  kRetry,   // not taken this time (network, throttling, 5xx): send again later
  kReject,  // the upstream will never take it: dead letter, then move on
  kUnsent,  // not sent at all (an earlier call of the batch failed): send later,
            // not counted as a re-send when it goes
};

const char* to_string(Outcome outcome);

struct SendResult {
  Outcome batch = Outcome::kOk;  // for the whole batch, when per_record is empty
  // Per record (same order and size as the batch) for upstreams that accept
  // part of a batch (Kinesis PutRecords): only the kRetry ones are sent again.
  std::vector<Outcome> per_record;
  std::string error;  // why, when anything is not kOk
  // Upstream asked to slow down (throttling): back off even on partial success.
  bool throttled = false;

  Outcome outcome_of(std::size_t i) const { return per_record.empty() ? batch : per_record[i]; }
};

struct SinkLimits {
  std::size_t max_records = 500;       // per send() call
  std::size_t max_bytes = 5u << 20;    // accounted bytes per call
  std::size_t max_record_bytes = 1u << 20;  // larger records are rejected without sending
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual const std::string& name() const = 0;
  virtual SinkLimits limits() const = 0;
  // Sends a batch (ascending seq) and reports what the upstream acknowledged.
  // Failures are results; an exception that escapes anyway is caught by the
  // forwarder, counted (exceptions_total) and the batch is sent again.
  virtual SendResult send(const std::vector<buffer::Record>& batch) = 0;
  // Called between sends when there is nothing to send (about every 200 ms
  // while idle), on the forwarder's thread: keep a connection alive, notice
  // that the upstream closed it.
  virtual void idle() {}
  // A short description of where it sends, for logs and the status page.
  virtual std::string describe() const = 0;
  // The sink's own figures beyond the forwarder's, for /metrics,
  // /api/status and the page. Called from the status thread while send()
  // may run: read atomics or take a lock.
  virtual std::vector<common::Counter> counters() const { return {}; }
};

}  // namespace tidegate::forward
