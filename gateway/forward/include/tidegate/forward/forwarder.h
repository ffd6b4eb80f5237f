// One forwarder per sink: reads batches after the sink's cursor, sends them,
// and moves the cursor only once every record of the batch was acknowledged
// by the upstream or dead-lettered. A crash at any point means re-sending,
// never skipping (at-least-once). A slow or broken sink holds back only its
// own cursor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tidegate/buffer/buffer.h"
#include "tidegate/common/counter.h"
#include "tidegate/forward/sink.h"
#include "tidegate/processing/chain.h"

namespace tidegate::forward {

// The order a backlog leaves in after an outage.
enum class DrainOrder {
  // Strictly by sequence: each device's readings reach the upstream in order;
  // live readings wait until the backlog is through.
  kOldestFirst,
  // Once the oldest undelivered record is older than live_lag, readings that
  // arrive from then on go first, with one backlog batch between live
  // batches: live readings wait for at most one batch, and per device the
  // newest readings arrive before older backlogged ones (consumers order by
  // sequence or device time).
  kLiveFirst,
};

struct ForwarderOptions {
  buffer::StartPosition start = buffer::StartPosition::kEarliest;  // for a new sink
  // Batching: send once max_records (from the sink's limits, or this if
  // smaller) are waiting, or the oldest waiting record is this old.
  std::size_t max_records = 2000;
  std::chrono::milliseconds linger{20};
  // Retries: exponential backoff with full jitter between these.
  std::chrono::milliseconds retry_min{200};
  std::chrono::milliseconds retry_max{60'000};
  // Cap on upstream bandwidth (accounted bytes per second, metered links).
  // 0 = none.
  std::uint64_t max_bytes_per_s = 0;
  DrainOrder drain = DrainOrder::kOldestFirst;
  std::chrono::milliseconds live_lag{60'000};  // for kLiveFirst
};

struct ForwarderStats {
  std::string sink;
  std::string destination;
  std::string state;  // "idle", "sending", "backing-off", "paused", "stopped"
  std::uint64_t sent_records_total = 0;
  std::uint64_t sent_bytes_total = 0;
  std::uint64_t batches_total = 0;
  std::uint64_t retries_total = 0;         // send attempts that did not complete a batch
  std::uint64_t resent_records_total = 0;  // records sent more than once (possible duplicates upstream)
  std::uint64_t dead_lettered_total = 0;
  // The sink's code (or reading the buffer) threw: a bug or resource
  // exhaustion, turned into a retry of the batch instead of a crash.
  std::uint64_t exceptions_total = 0;
  std::int64_t last_success_ns = 0;
  std::int64_t last_error_ns = 0;
  std::string last_error;
  std::uint64_t last_send_latency_us = 0;
  std::uint64_t consecutive_failures = 0;
  // Delivery rate while there was something to send (records/s, smoothed
  // over about ten batches); with the sink's lag it gives the time to drain.
  double delivery_rate_per_s = 0;
  std::string kind;  // the sink plugin's kind ("kinesis"), set by the daemon
  std::vector<common::Counter> counters;  // the sink's own (Sink::counters())
  bool live_first = false;                  // live records are going ahead of a backlog now
  std::uint64_t delivered_ahead_total = 0;  // live records sent ahead of a backlog
  // Replayed dead letters meant for another sink, passed over (not sent).
  std::uint64_t for_other_sinks_total = 0;
  // After an operator's rewind: the sink replays until its cursor passes
  // replay_through_seq (the newest record at the rewind); 0: no replay.
  std::uint64_t replay_through_seq = 0;
  std::int64_t replay_from_ingest_ns = 0;  // ingest time of the first record replayed
  // The sink's route and processors (docs/processing.md): records its route
  // does not select (moved past, never sent), records its processors
  // filtered out, and each processor's own counts.
  std::uint64_t not_routed_total = 0;
  std::uint64_t filtered_total = 0;
  std::vector<processing::ProcessorStats> processors;
};

// Where an operator sends a sink back to.
struct RewindTarget {
  enum class Kind { kSeq, kTime, kEarliest };
  Kind kind = Kind::kEarliest;
  std::uint64_t seq = 0;       // kSeq: the first record to send again
  std::int64_t ingest_ns = 0;  // kTime: the first record ingested at or after this
};

// Seconds until a backlog of `lag_records` is delivered at the recent rate;
// nullopt while nothing has been delivered yet (no rate to go by).
std::optional<double> estimated_drain_seconds(const ForwarderStats& stats, std::uint64_t lag_records);

class Forwarder {
 public:
  // `chain` (may be null: everything, unchanged) routes and processes each
  // record before the sink sees it.
  Forwarder(buffer::Buffer& buffer, std::unique_ptr<Sink> sink, ForwarderOptions options, buffer::LogFn log,
            std::string kind = "", std::unique_ptr<processing::Chain> chain = nullptr);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void start();
  // Finishes the send in progress (its result is applied), then stops.
  void stop();
  // Operator hold: the send in progress finishes, then nothing is sent until
  // resume(). Records keep arriving in the buffer; the state reads "paused".
  void pause();
  void resume();
  // Moves the sink's cursor back (replay): taken between two batches, so a
  // send in flight cannot move it forward again; a batch failing in its
  // backoff is given up and sent again from the new position. A target
  // older than the retained records clamps to the oldest (result.clamped).
  buffer::RewindResult rewind(const RewindTarget& target);
  ForwarderStats stats() const;
  const std::string& sink_name() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::forward
