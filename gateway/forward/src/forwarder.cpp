#include "tidegate/forward/forwarder.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "tidegate/common/backoff.h"
#include "tidegate/common/exception_text.h"

namespace tidegate::forward {

using buffer::LogLevel;
using SteadyClock = std::chrono::steady_clock;

std::optional<double> estimated_drain_seconds(const ForwarderStats& stats, std::uint64_t lag_records) {
  if (lag_records == 0) return 0.0;
  if (stats.delivery_rate_per_s <= 0) return std::nullopt;
  return static_cast<double>(lag_records) / stats.delivery_rate_per_s;
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kRetry:
      return "retry";
    case Outcome::kReject:
      return "reject";
    case Outcome::kUnsent:
      return "unsent";
  }
  return "?";
}

// A batch read from the buffer, with what this sink's route and chain made
// of each record: done before sending, on the thread that read it.
struct Prepared {
  enum class Fate : std::uint8_t { kSend, kOtherSink, kSkip, kDeadLetter };
  std::vector<buffer::Record> records;
  std::vector<Fate> fate;
  std::vector<std::string> reasons;  // kDeadLetter's, in record order
  bool empty() const { return records.empty(); }
};

class Forwarder::Impl {
 public:
  Impl(buffer::Buffer& buffer, std::unique_ptr<Sink> sink, ForwarderOptions options, buffer::LogFn log,
       std::string kind, std::unique_ptr<processing::Chain> chain)
      : buffer_(buffer),
        sink_(std::move(sink)),
        chain_(chain && !chain->empty() ? std::move(chain) : nullptr),
        opts_(options),
        log_(std::move(log)),
        name_(sink_->name()),
        backoff_(opts_.retry_min, opts_.retry_max) {
    tokens_ = static_cast<double>(opts_.max_bytes_per_s);  // a full bucket to start
    const auto limits = sink_->limits();
    max_records_ = std::max<std::size_t>(1, std::min(opts_.max_records, limits.max_records));
    max_bytes_ = std::max<std::size_t>(1, limits.max_bytes);
    max_record_bytes_ = limits.max_record_bytes;
    stats_.sink = name_;
    stats_.kind = std::move(kind);
    stats_.destination = sink_->describe();
    stats_.state = "idle";
  }

  ~Impl() { stop(); }

  void start() {
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (!thread_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
    set_state("stopped");
  }

  void set_paused(bool paused) {
    // Kept in the file: a restart does not release a held sink.
    if (const auto st = buffer_.set_sink_held(name_, paused); st != buffer::Status::kOk) {
      log(LogLevel::kError, std::string("the hold could not be stored (") + buffer::to_string(st) +
                                "); it lasts until the next restart only");
    }
    {
      std::lock_guard lock(mu_);
      if (paused_ == paused) return;
      paused_ = paused;
    }
    cv_.notify_all();
    log(LogLevel::kWarning, paused ? "paused by an operator: records wait in the buffer" : "resumed by an operator");
  }

  buffer::RewindResult rewind(const RewindTarget& target) {
    std::future<buffer::RewindResult> done;
    {
      std::lock_guard lock(mu_);
      if (thread_.joinable()) {
        rewind_requests_.emplace_back(target, std::promise<buffer::RewindResult>());
        done = rewind_requests_.back().second.get_future();
      }
    }
    // Not forwarding: nothing is in flight, the cursor moves at once
    // (apply_rewind takes mu_ itself).
    if (!done.valid()) return apply_rewind(target);
    cv_.notify_all();
    return done.get();
  }

  ForwarderStats stats() const {
    auto counters = sink_->counters();
    std::lock_guard lock(mu_);
    auto out = stats_;
    out.counters = std::move(counters);
    if (chain_) {
      out.not_routed_total = chain_->not_routed_total();
      out.processors = chain_->stats();
      for (const auto& p : out.processors)
        out.filtered_total += p.dropped_total;
    }
    return out;
  }

  const std::string& name() const { return name_; }

 private:
  void log(LogLevel level, const std::string& message) {
    if (log_) log_(level, "sink '" + name_ + "': " + message);
  }

  void set_state(const char* state) {
    std::lock_guard lock(mu_);
    stats_.state = state;
  }

  // Sleeps, waking early on stop() or an operator's rewind. Returns false
  // if stopping or a rewind waits (the caller gives up its batch).
  bool pause_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopping_ || !rewind_requests_.empty(); });
    return !stopping_ && rewind_requests_.empty();
  }

  bool rewind_waiting() {
    std::lock_guard lock(mu_);
    return !rewind_requests_.empty();
  }

  // On the forwarder's thread, between batches: the rewinds operators asked
  // for, in order. True if there were any (the round starts afresh).
  bool serve_rewinds(std::future<Prepared>& ahead) {
    std::deque<std::pair<RewindTarget, std::promise<buffer::RewindResult>>> requests;
    {
      std::lock_guard lock(mu_);
      requests.swap(rewind_requests_);
    }
    if (requests.empty()) return false;
    discard(ahead);
    live_from_.reset();
    {
      std::lock_guard lock(mu_);
      stats_.live_first = false;
    }
    for (auto& [target, promise] : requests) promise.set_value(apply_rewind(target));
    return true;
  }

  // The cursor moves back; the replay runs through what is stored now.
  buffer::RewindResult apply_rewind(const RewindTarget& target) {
    const auto newest = buffer_.stats().next_seq - 1;
    auto r = target.kind == RewindTarget::Kind::kTime
                 ? buffer_.rewind_to_time(name_, target.ingest_ns)
                 : buffer_.rewind_to_seq(name_, target.kind == RewindTarget::Kind::kSeq ? target.seq : 0);
    if (r.status != buffer::Status::kOk) {
      log(LogLevel::kError, "rewind refused: " + (r.error.empty() ? std::string(buffer::to_string(r.status)) : r.error));
      return r;
    }
    const auto first = buffer_.read_after(r.acked_seq, 1, SIZE_MAX);
    const std::int64_t from_ns = first.records.empty() ? 0 : first.records.front().ingest_ns;
    const std::uint64_t to_go = newest > r.acked_seq ? newest - r.acked_seq : 0;
    {
      std::lock_guard lock(mu_);
      stats_.replay_through_seq = to_go > 0 ? newest : 0;
      stats_.replay_from_ingest_ns = to_go > 0 ? from_ns : 0;
    }
    log(LogLevel::kWarning, "rewound by an operator to sequence " + std::to_string(r.acked_seq + 1) +
                                (r.clamped ? " (the oldest retained record: the target was older)" : "") + ": " +
                                std::to_string(to_go) + " records to send again");
    return r;
  }

  // While an operator holds the sink, nothing is read or sent; the batch in
  // flight when pause() came was finished first. True if it waited.
  bool wait_while_paused() {
    std::unique_lock lock(mu_);
    if (!paused_) return false;
    stats_.state = "paused";
    // A rewind is served while paused too (the replay starts on resume).
    cv_.wait(lock, [&] { return stopping_ || !paused_ || !rewind_requests_.empty(); });
    if (!stopping_ && !paused_) stats_.state = "idle";
    return true;
  }

  // Wall time from the buffer's clock, the one that stamps ingest times.
  std::int64_t now_ns() const { return buffer_.clock().wall_ns(); }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void note_failure(const std::string& error) {
    std::lock_guard lock(mu_);
    stats_.last_error = error;
    stats_.last_error_ns = now_ns();
    stats_.consecutive_failures += 1;
  }

  void run() {
    while (buffer_.ensure_sink(name_, opts_.start) != buffer::Status::kOk) {
      log(LogLevel::kError, "cannot create the sink's cursor in the buffer; retrying");
      if (!pause_for(backoff_.next())) return;
    }
    backoff_.reset();
    if (buffer_.sink_held(name_)) {
      {
        std::lock_guard lock(mu_);
        paused_ = true;
      }
      log(LogLevel::kWarning, "held by an operator since before this start: records wait in the buffer "
                              "(tidegate sink resume " + name_ + " releases it)");
    }
    log(LogLevel::kInfo, "forwarding to " + stats_.destination + " from sequence " +
                             std::to_string(buffer_.acked_seq(name_).value_or(0) + 1));
    // While a backlog drains, the batch after the one in flight is read and
    // run through the chain meanwhile (another core, another SQLite
    // connection), so the sink waits for neither. It is used only if this
    // batch's cursor move lands: otherwise the next batch is read from the
    // cursor again. The chain is never used by two threads at once: the
    // batch in flight was prepared before the next one started.
    std::future<Prepared> ahead;
    while (!stopping()) {
      try {
        forward_once(ahead);
      } catch (...) {
        survive(common::current_exception_text(), ahead);
      }
    }
    try {
      serve_rewinds(ahead);  // asked for while stopping: nobody waits forever
      discard(ahead);
    } catch (...) {
    }
  }

  // The outer error boundary of the forwarder's thread (reading the buffer,
  // a std::bad_alloc): counted, logged, and the batch is read again from the
  // cursor after a backoff, so nothing is skipped.
  void survive(const std::string& what, std::future<Prepared>& ahead) {
    try {
      discard(ahead);
    } catch (...) {
      ahead = {};
    }
    count_exception();
    note_failure("forwarding threw: " + what);
    log(LogLevel::kError, "forwarding threw (" + what + "); reading again from the cursor after a pause");
    pause_for(backoff_.next());
  }

  // One round: pause, read (or take the read-ahead), send, move the cursor.
  void forward_once(std::future<Prepared>& ahead) {
    if (serve_rewinds(ahead)) return;
    if (wait_while_paused()) {
      discard(ahead);
      return;
    }
    if (live_from_) {
      live_first_round();
      return;
    }
    auto batch = take(ahead);
    if (batch.empty()) {
      auto read = next_batch();
      if (read.empty()) {
        sink_->idle();
        return;
      }
      if (opts_.drain == DrainOrder::kLiveFirst && is_backlog(read.front())) {
        enter_live_first();
        return;
      }
      batch = prepare(std::move(read));
    }
    // Only a full batch means backlog; live traffic is better served by
    // the next batch's linger than by sending what arrived meanwhile at once.
    if (batch.records.size() >= max_records_ &&
        buffer_.wait_for_records_after(batch.records.back().seq, std::chrono::milliseconds(0))) {
      ahead = std::async(std::launch::async, [this, after = batch.records.back().seq] {
        auto r = buffer_.read_after(after, max_records_, max_bytes_);
        return r.status == buffer::Status::kOk ? prepare(std::move(r.records)) : Prepared{};
      });
    }
    const auto started = SteadyClock::now();
    if (send_all(batch) && commit_cursor(batch.records)) {
      batch_done(batch.records.size(), started);
    } else {
      discard(ahead);
    }
  }

  // The read-ahead batch, empty if there is none or its read failed (then
  // the next batch is read from the cursor as usual).
  static Prepared take(std::future<Prepared>& ahead) { return ahead.valid() ? ahead.get() : Prepared{}; }

  // Routes and processes each record, once per batch: a retry sends what
  // this made. Records a dead letter replayed for another sink are passed.
  Prepared prepare(std::vector<buffer::Record> records) {
    Prepared p;
    p.fate.assign(records.size(), Prepared::Fate::kSend);
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (!records[i].only_sink.empty() && records[i].only_sink != name_) {
        p.fate[i] = Prepared::Fate::kOtherSink;
        continue;
      }
      if (!chain_) continue;
      auto r = chain_->apply(records[i]);
      switch (r.kind) {
        case processing::ChainResult::Kind::kSend:
          break;
        case processing::ChainResult::Kind::kNotRouted:
        case processing::ChainResult::Kind::kDropped:
          p.fate[i] = Prepared::Fate::kSkip;
          break;
        case processing::ChainResult::Kind::kDeadLetter:
          p.fate[i] = Prepared::Fate::kDeadLetter;
          p.reasons.push_back(std::move(r.reason));
          break;
      }
    }
    p.records = std::move(records);
    return p;
  }

  static void discard(std::future<Prepared>& ahead) {
    if (ahead.valid()) ahead.get();
  }

  // live-first: a backlog starts when the oldest undelivered record is older
  // than live_lag. Everything stored at that moment is backlog; what arrives
  // after it is live and goes first, one backlog batch between live batches,
  // so live readings wait for at most one batch.
  bool is_backlog(const buffer::Record& oldest) const {
    return now_ns() - oldest.ingest_ns > std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.live_lag).count();
  }

  void enter_live_first() {
    const auto stats = buffer_.stats();
    live_from_ = stats.next_seq;
    live_sent_ = stats.next_seq - 1;
    const auto acked = buffer_.acked_seq(name_).value_or(0);
    log(LogLevel::kInfo, "backlog of " + std::to_string(live_sent_ - acked) +
                             " records: live readings go first, the backlog in between (drain = live-first)");
    std::lock_guard lock(mu_);
    stats_.live_first = true;
  }

  // A failed read of the buffer: counted, then a short pause before the
  // next attempt. False if it failed.
  bool read_ok(const buffer::ReadResult& r) {
    if (r.status == buffer::Status::kOk) return true;
    note_failure("reading the buffer: " + r.error);
    pause_for(std::chrono::milliseconds(500));
    return false;
  }

  // One live batch (if any arrived), then one backlog batch. The durable
  // cursor follows the backlog only; live records delivered ahead are
  // remembered here and covered by the cursor once the backlog reaches them.
  // A crash in between re-sends them (at-least-once; duplicates carry their
  // identity).
  void live_first_round() {
    auto live = buffer_.read_after(live_sent_, max_records_, max_bytes_);
    if (!read_ok(live)) return;
    if (!live.records.empty()) {
      const auto started = SteadyClock::now();
      auto batch = prepare(std::move(live.records));
      if (!send_all(batch)) return;
      live_sent_ = batch.records.back().seq;
      batch_done(batch.records.size(), started);
      std::lock_guard lock(mu_);
      stats_.delivered_ahead_total += batch.records.size();
    }
    if (stopping()) return;

    auto backlog = buffer_.read(name_, max_records_, max_bytes_);
    if (!read_ok(backlog)) return;
    std::erase_if(backlog.records, [&](const buffer::Record& r) { return r.seq >= *live_from_; });
    if (backlog.records.empty()) {
      // The backlog is through: the cursor jumps over what went ahead.
      if (live_sent_ > buffer_.acked_seq(name_).value_or(0) && !commit_cursor(live_sent_)) return;
      log(LogLevel::kInfo, "backlog delivered; back to sending in order");
      live_from_.reset();
      std::lock_guard lock(mu_);
      stats_.live_first = false;
      return;
    }
    const auto started = SteadyClock::now();
    auto batch = prepare(std::move(backlog.records));
    if (send_all(batch) && commit_cursor(batch.records)) {
      batch_done(batch.records.size(), started);
    }
  }

  // A batch after the cursor: full, or as full as `linger` allows.
  std::vector<buffer::Record> next_batch() {
    const std::uint64_t acked = buffer_.acked_seq(name_).value_or(0);
    if (!buffer_.wait_for_records_after(acked, std::chrono::milliseconds(200))) return {};
    auto read = [&] {
      auto r = buffer_.read(name_, max_records_, max_bytes_);
      return read_ok(r) ? std::move(r.records) : std::vector<buffer::Record>{};
    };
    auto batch = read();
    if (batch.empty()) return batch;
    // linger counts from the oldest record's ingest, not from this read: a
    // reading waits at most `linger` for company, its commit window included.
    // (A wall clock step only shortens or lengthens one batch's wait.)
    const auto age = std::chrono::nanoseconds(now_ns() - batch.front().ingest_ns);
    const auto wait = std::clamp(std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.linger) - age,
                                 std::chrono::nanoseconds(0), std::chrono::nanoseconds(opts_.linger));
    const auto deadline = SteadyClock::now() + wait;
    while (!batch.empty() && batch.size() < max_records_ && SteadyClock::now() < deadline && !stopping()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (!buffer_.wait_for_records_after(batch.back().seq, left + std::chrono::milliseconds(1))) break;
      batch = read();
    }
    return batch;
  }

  void throttle_bandwidth(std::uint64_t bytes) {
    if (opts_.max_bytes_per_s == 0) return;
    // Token bucket of one second's worth: sends wait until their bytes fit.
    const auto now = SteadyClock::now();
    const double elapsed = std::chrono::duration<double>(now - bucket_time_).count();
    bucket_time_ = now;
    const double cap = static_cast<double>(opts_.max_bytes_per_s);
    tokens_ = std::min(cap, tokens_ + elapsed * cap) - static_cast<double>(bytes);
    if (tokens_ < 0) pause_for(std::chrono::milliseconds(static_cast<std::int64_t>(-tokens_ / cap * 1000.0)));
  }

  // Sends until every record of the batch is acknowledged or dead-lettered;
  // false if it stopped first (stopping, or a dead letter could not be
  // stored): then the batch comes again.
  bool send_all(Prepared& prepared) {
    auto& batch = prepared.records;
    std::vector<bool> done(batch.size(), false);
    std::vector<bool> sent_before(batch.size(), false);  // what a retry counts as sent again
    std::size_t remaining = batch.size();
    std::uint64_t for_others = 0;
    std::size_t reason = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      using Fate = Prepared::Fate;
      const Fate fate = prepared.fate[i];
      // A dead letter replayed for another sink: this one had it already.
      if (fate == Fate::kOtherSink) for_others += 1;
      if (fate == Fate::kDeadLetter && !dead_letter(batch[i], prepared.reasons[reason++])) {
        return false;  // the batch comes again, from the buffer
      }
      if (fate != Fate::kSend) {
        done[i] = true;
        remaining -= 1;
        continue;
      }
      if (buffer::accounted_size(batch[i]) > max_record_bytes_) {
        if (!dead_letter(batch[i], "record of " + std::to_string(batch[i].payload.size()) +
                                       " bytes exceeds the sink's limit of " + std::to_string(max_record_bytes_))) {
          return false;  // the cursor stays: the batch comes again
        }
        done[i] = true;
        remaining -= 1;
      }
    }
    if (for_others > 0) {
      std::lock_guard lock(mu_);
      stats_.for_other_sinks_total += for_others;
    }
    while (remaining > 0) {
      if (stopping() || rewind_waiting()) return false;
      // The whole batch goes as it is; only a retry or a batch with dead
      // letters sends a copy of what is left.
      std::vector<buffer::Record> rest;
      std::vector<std::size_t> index;
      std::uint64_t bytes = 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (done[i]) continue;
        index.push_back(i);
        bytes += buffer::accounted_size(batch[i]);
        if (remaining < batch.size()) rest.push_back(batch[i]);
      }
      const auto& subset = remaining < batch.size() ? rest : batch;
      throttle_bandwidth(bytes);
      set_state("sending");
      const auto t0 = SteadyClock::now();
      SendResult result = guarded_send(subset);
      const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0).count();

      std::uint64_t ok = 0, ok_bytes = 0, retry = 0, resent = 0;
      for (std::size_t k = 0; k < subset.size(); ++k) {
        const auto outcome = result.outcome_of(k);
        if (sent_before[index[k]]) resent += 1;
        if (outcome != Outcome::kUnsent) sent_before[index[k]] = true;
        switch (outcome) {
          case Outcome::kOk:
            done[index[k]] = true;
            remaining -= 1;
            ok += 1;
            ok_bytes += buffer::accounted_size(subset[k]);
            break;
          case Outcome::kReject:
            if (!dead_letter(subset[k], result.error.empty() ? "rejected by the upstream" : result.error)) return false;
            done[index[k]] = true;
            remaining -= 1;
            break;
          case Outcome::kRetry:
          case Outcome::kUnsent:
            retry += 1;
            break;
        }
      }
      {
        std::lock_guard lock(mu_);
        stats_.sent_records_total += ok;
        stats_.sent_bytes_total += ok_bytes;
        stats_.last_send_latency_us = static_cast<std::uint64_t>(latency);
        stats_.resent_records_total += resent;
        if (ok > 0 && retry == 0) {
          stats_.last_success_ns = now_ns();
          stats_.consecutive_failures = 0;
        }
      }
      if (retry == 0 && !result.throttled) break;
      {
        std::lock_guard lock(mu_);
        stats_.retries_total += 1;
      }
      note_failure(result.error.empty() ? "upstream did not acknowledge" : result.error);
      const auto delay = backoff_.next();
      if (backoff_.attempts() == 1 || backoff_.attempts() % 10 == 0) {
        log(LogLevel::kWarning, std::to_string(retry) + " of " + std::to_string(subset.size()) +
                                    " records not acknowledged (" + result.error + "); retrying in " +
                                    std::to_string(delay.count()) + " ms (attempt " +
                                    std::to_string(backoff_.attempts()) + ")");
      }
      set_state("backing-off");
      if (!pause_for(delay)) return false;
      wait_while_paused();  // an operator may hold a failing sink
    }
    if (backoff_.attempts() > 0) {
      log(LogLevel::kInfo, "delivering again after " + std::to_string(backoff_.attempts()) + " failed attempt(s)");
      backoff_.reset();
    }
    return true;
  }

  // The error boundary around the sink's code: an exception (a library's,
  // std::bad_alloc) becomes a retry of the batch, counted and logged, and
  // never reaches std::terminate on this thread.
  SendResult guarded_send(const std::vector<buffer::Record>& batch) {
    std::string what;
    try {
      return sink_->send(batch);
    } catch (...) {
      what = common::current_exception_text();
    }
    count_exception();
    log(LogLevel::kError, "the sink threw while sending (" + what + "); the batch will be sent again");
    SendResult failed;
    failed.batch = Outcome::kRetry;
    failed.error = "the sink threw: " + what;
    return failed;
  }

  void count_exception() {
    std::lock_guard lock(mu_);
    stats_.exceptions_total += 1;
  }

  // Moves the durable cursor; on failure the batch will be sent again
  // (duplicates upstream), never skipped.
  // Past a batch that was sent: the buffer learns which records reached the
  // sink, so those the cap evicted meanwhile are not reported as lost.
  bool commit_cursor(const std::vector<buffer::Record>& sent) { return commit_cursor(sent.back().seq, sent); }

  bool commit_cursor(std::uint64_t seq, std::span<const buffer::Record> sent = {}) {
    const auto st = buffer_.ack(name_, seq, sent);
    if (st == buffer::Status::kOk) {
      bool replayed = false;
      {
        std::lock_guard lock(mu_);
        if (stats_.replay_through_seq != 0 && seq >= stats_.replay_through_seq) {
          stats_.replay_through_seq = 0;
          stats_.replay_from_ingest_ns = 0;
          replayed = true;
        }
      }
      if (replayed) log(LogLevel::kInfo, "replay done: back to live data");
      return true;
    }
    note_failure(std::string("moving the cursor failed: ") + buffer::to_string(st));
    log(LogLevel::kError,
        std::string("moving the cursor failed (") + buffer::to_string(st) + "); the batch will be sent again");
    pause_for(std::chrono::seconds(1));
    return false;
  }

  void batch_done(std::size_t records, SteadyClock::time_point started) {
    std::lock_guard lock(mu_);
    stats_.batches_total += 1;
    stats_.state = "idle";
    // The rate counts the time from read to ack, retries included, so the
    // estimate reflects what the uplink really achieves.
    const double secs = std::max(1e-6, std::chrono::duration<double>(SteadyClock::now() - started).count());
    const double rate = static_cast<double>(records) / secs;
    stats_.delivery_rate_per_s = stats_.delivery_rate_per_s == 0 ? rate : 0.9 * stats_.delivery_rate_per_s + 0.1 * rate;
  }

  bool dead_letter(const buffer::Record& record, const std::string& reason) {
    if (buffer_.add_dead_letter(name_, record.seq, record, reason) != buffer::Status::kOk) {
      note_failure("could not store a dead letter for seq " + std::to_string(record.seq));
      pause_for(std::chrono::seconds(1));
      return false;
    }
    {
      std::lock_guard lock(mu_);
      stats_.dead_lettered_total += 1;
    }
    log(LogLevel::kWarning, "record " + std::to_string(record.seq) + " dead-lettered: " + reason);
    return true;
  }

  buffer::Buffer& buffer_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<processing::Chain> chain_;  // null: every record as stored
  ForwarderOptions opts_;
  buffer::LogFn log_;
  std::string name_;
  common::Backoff backoff_;
  std::size_t max_records_ = 500;
  std::size_t max_bytes_ = 5u << 20;
  std::size_t max_record_bytes_ = 1u << 20;
  double tokens_ = 0;
  SteadyClock::time_point bucket_time_ = SteadyClock::now();

  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool paused_ = false;
  std::deque<std::pair<RewindTarget, std::promise<buffer::RewindResult>>> rewind_requests_;
  ForwarderStats stats_;
  // live-first while a backlog drains: the first live sequence, and the
  // last live record delivered ahead of the cursor.
  std::optional<std::uint64_t> live_from_;
  std::uint64_t live_sent_ = 0;
};

Forwarder::Forwarder(buffer::Buffer& buffer, std::unique_ptr<Sink> sink, ForwarderOptions options, buffer::LogFn log,
                     std::string kind, std::unique_ptr<processing::Chain> chain)
    : impl_(std::make_unique<Impl>(buffer, std::move(sink), options, std::move(log), std::move(kind),
                                   std::move(chain))) {}
Forwarder::~Forwarder() = default;
void Forwarder::start() {
  impl_->start();
}
void Forwarder::stop() {
  impl_->stop();
}
void Forwarder::pause() {
  impl_->set_paused(true);
}
void Forwarder::resume() {
  impl_->set_paused(false);
}
buffer::RewindResult Forwarder::rewind(const RewindTarget& target) {
  return impl_->rewind(target);
}
ForwarderStats Forwarder::stats() const {
  return impl_->stats();
}
const std::string& Forwarder::sink_name() const {
  return impl_->name();
}

}  // namespace tidegate::forward
