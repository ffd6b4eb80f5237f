#include "tidegate/streams/derived_stream.h"

#include <future>
#include <stdexcept>
#include <utility>

#include "tidegate/common/exception_text.h"

namespace tidegate::streams {
namespace {

using buffer::LogLevel;
using buffer::NewRecord;
using buffer::StateChange;

constexpr auto kRetryAfter = std::chrono::seconds(1);
// Longest wait for input while caught up: a stop or a rewind is served
// within it.
constexpr auto kLongestWait = std::chrono::milliseconds(250);

std::optional<std::uint64_t> parse_seq(const std::string& text) {
  try {
    std::size_t used = 0;
    const auto v = std::stoull(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

DerivedStream::DerivedStream(DerivedStreamOptions options, std::unique_ptr<StreamOperator> op, buffer::Buffer& buffer,
                             buffer::LogFn log)
    : options_(std::move(options)),
      op_(std::move(op)),
      buffer_(buffer),
      log_(std::move(log)),
      cursor_(cursor_name(options_.name)),
      prefix_(state_prefix(options_.name)) {
  stats_.name = options_.name;
  op_counters_ = op_->counters();
  committed_counters_ = op_counters_;
}

DerivedStream::~DerivedStream() { stop(); }

void DerivedStream::log(LogLevel level, const std::string& text) const {
  if (log_) log_(level, options_.kind + " '" + options_.name + "': " + text);
}

void DerivedStream::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void DerivedStream::stop() {
  {
    std::lock_guard lock(rewind_mu_);
    stopping_ = true;
  }
  rewind_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool DerivedStream::selects(const buffer::Record& r) const {
  if (r.source == options_.name) return false;  // its own output
  if (!r.only_sink.empty() && r.only_sink != cursor_) return false;
  if (options_.other_streams.count(r.source)) {
    bool named = false;
    for (const auto& s : options_.route.sources) named = named || s == r.source;
    if (!named) return false;
  }
  return options_.route.selects(r);
}

bool DerivedStream::load() {
  op_->clear();
  stored_keys_.clear();
  std::optional<std::uint64_t> position;
  std::optional<std::string> definition;
  std::vector<std::pair<std::string, std::string>> entries;
  for (auto& [key, value] : buffer_.source_state(prefix_)) {
    const std::string rest = key.substr(prefix_.size());
    if (rest == "position") {
      position = parse_seq(value);
      if (!position) log(LogLevel::kError, "stored position '" + value + "' is unreadable; starting from the cursor");
    } else if (rest == "definition") {
      definition = std::move(value);
    } else if (rest.rfind("k/", 0) == 0) {
      entries.emplace_back(rest.substr(2), std::move(value));
    }
  }

  std::vector<StateChange> changes;
  auto drop_all = [&] {
    for (const auto& [k, v] : entries) changes.push_back({prefix_ + "k/" + k, std::nullopt});
  };
  if (!position) {
    if (buffer_.ensure_sink(cursor_, options_.start) != buffer::Status::kOk) {
      log(LogLevel::kError, "cannot create its cursor in the buffer");
      return false;
    }
    position_ = buffer_.acked_seq(cursor_).value_or(0);
    drop_all();
    changes.push_back({prefix_ + "definition", options_.definition});
    log(LogLevel::kInfo, "new: reads records after sequence " + std::to_string(position_));
  } else {
    position_ = *position;
    if (!definition || *definition != options_.definition) {
      drop_all();
      changes.push_back({prefix_ + "definition", options_.definition});
      log(LogLevel::kWarning, "its definition changed: the state of the old one (" + std::to_string(entries.size()) +
                                  " entries: open windows, last reported values) is dropped and it starts fresh "
                                  "after sequence " + std::to_string(position_));
    } else {
      for (const auto& [k, v] : entries) {
        try {
          op_->restore(k, v);
          stored_keys_.insert(k);
        } catch (const std::exception& e) {
          log(LogLevel::kError, "state entry '" + k + "' is unreadable (" + e.what() + "): dropped");
          changes.push_back({prefix_ + "k/" + k, std::nullopt});
        }
      }
    }
    // The cursor holds the input back from retention: never ahead of the
    // position (a crash may leave it behind, which only keeps more).
    buffer_.ensure_sink(cursor_, buffer::StartPosition::kEarliest);
    const auto acked = buffer_.acked_seq(cursor_);
    if (acked && *acked < position_) buffer_.ack(cursor_, position_);
    if (acked && *acked > position_) buffer_.rewind_to_seq(cursor_, position_ + 1);
  }
  committed_position_ = position_;
  if (!changes.empty() && !commit({}, std::move(changes))) return false;
  loaded_ = true;
  std::lock_guard lock(stats_mu_);
  stats_.connected = true;
  devices_ = op_->devices();
  return true;
}

bool DerivedStream::commit(std::vector<NewRecord> out, std::vector<StateChange> extra) {
  std::vector<StateChange> changes = std::move(extra);
  std::vector<StateChange> op_changes;
  op_->changes(op_changes);
  for (const auto& c : op_changes) changes.push_back({prefix_ + "k/" + c.key, c.value});
  changes.push_back({prefix_ + "position", std::to_string(position_)});
  for (auto& r : out) r.source = options_.name;
  const auto emitted = out.size();

  const auto started = std::chrono::steady_clock::now();
  std::promise<buffer::AppendOutcome> done;
  auto outcome_future = done.get_future();
  buffer_.append(std::move(out), std::move(changes),
                 [&done](const buffer::AppendOutcome& outcome) { done.set_value(outcome); });
  const auto outcome = outcome_future.get();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!outcome.ok()) {
    roll_back("commit refused by the buffer (" + std::string(buffer::to_string(outcome.status)) +
              (outcome.error.empty() ? "" : ": " + outcome.error) + ")");
    return false;
  }
  for (const auto& c : op_changes) {
    if (c.value)
      stored_keys_.insert(c.key);
    else
      stored_keys_.erase(c.key);
  }
  committed_position_ = position_;
  committed_counters_ = op_->counters();
  fed_since_commit_ = 0;
  last_commit_ = std::chrono::steady_clock::now();
  // The cursor follows the committed position; it reaches the file with the
  // buffer's next maintenance pass, which is all retention needs.
  if (position_ > 0) buffer_.ack(cursor_, position_);
  std::lock_guard lock(stats_mu_);
  stats_.committed_total += emitted;
  commits_ += 1;
  commit_seconds_ += waited;
  committed_received_ = stats_.received_total;
  committed_received_bytes_ = stats_.received_bytes_total;
  if (emitted) stats_.last_message_ns = buffer_.clock().wall_ns();
  op_counters_ = committed_counters_;
  devices_ = op_->devices();
  return true;
}

void DerivedStream::commit_fed() {
  if (loaded_ && position_ != committed_position_.load()) commit(std::exchange(pending_out_, {}));
}

void DerivedStream::roll_back(const std::string& why) {
  log(LogLevel::kWarning, why + "; it goes back to its last commit (sequence " +
                              std::to_string(committed_position_.load()) + ") and tries again");
  op_->clear();
  op_->set_counters(committed_counters_);
  pending_out_.clear();  // made again from the input after the last commit
  loaded_ = false;
  std::lock_guard lock(stats_mu_);
  stats_.errors_total += 1;
  stats_.last_error = why;
  stats_.connected = false;
  stats_.received_total = committed_received_;  // fed again from the last commit
  stats_.received_bytes_total = committed_received_bytes_;
}

void DerivedStream::wait_for_input(std::chrono::milliseconds at_most) {
  auto wait = std::min(at_most, std::chrono::duration_cast<std::chrono::milliseconds>(kLongestWait));
  if (wait.count() <= 0) return;
  buffer_.wait_for_records_after(position_, wait);
}

void DerivedStream::run() {
  while (!stopping_) {
    {
      std::unique_lock lock(rewind_mu_);
      if (rewind_request_) {
        auto request = std::move(rewind_request_);
        rewind_request_ = nullptr;
        lock.unlock();
        // What was fed before the request is committed first, as if the
        // request had come a moment later.
        commit_fed();
        auto result = loaded_ || load() ? request() : buffer::RewindResult{buffer::Status::kIoError, 0, false,
                                                                           "the stream could not load its state"};
        if (result.status == buffer::Status::kOk) {
          std::vector<StateChange> deletes;
          for (const auto& k : stored_keys_) deletes.push_back({prefix_ + "k/" + k, std::nullopt});
          op_->clear();
          position_ = result.acked_seq;
          if (commit({}, std::move(deletes))) {
            stored_keys_.clear();
            log(LogLevel::kInfo, "rewound: recomputes its output from the records after sequence " +
                                     std::to_string(position_));
          } else {
            result.status = buffer::Status::kIoError;
            result.error = "the rewind could not be committed";
          }
        }
        lock.lock();
        rewind_result_ = result;
        rewind_cv_.notify_all();
        continue;
      }
    }
    if (!loaded_ && !load()) {
      std::unique_lock lock(rewind_mu_);
      rewind_cv_.wait_for(lock, kRetryAfter, [this] { return stopping_ || rewind_request_; });
      continue;
    }
    auto read = buffer_.read_after(position_, options_.batch_records, options_.batch_bytes);
    if (read.status != buffer::Status::kOk) {
      {
        std::lock_guard lock(stats_mu_);
        stats_.errors_total += 1;
        stats_.last_error = "reading the buffer: " + read.error;
      }
      std::unique_lock lock(rewind_mu_);
      rewind_cv_.wait_for(lock, kRetryAfter, [this] { return stopping_ || rewind_request_; });
      continue;
    }
    auto& out = pending_out_;
    std::uint64_t fed = 0, fed_bytes = 0;
    for (const auto& r : read.records) {
      position_ = r.seq;
      if (!selects(r)) continue;
      op_->feed(r, out);
      fed += 1;
      fed_bytes += r.payload.size();
    }
    const bool caught_up = read.records.empty();
    op_->tick(buffer_.clock().wall_ns(), caught_up, out);
    fed_since_commit_ += read.records.size();
    {
      std::lock_guard lock(stats_mu_);
      stats_.received_total += fed;
      stats_.received_bytes_total += fed_bytes;
    }
    const bool moved = position_ != committed_position_.load();
    const auto since_commit = std::chrono::steady_clock::now() - last_commit_;
    const bool output_due = !out.empty() && (caught_up || fed_since_commit_ >= options_.backlog_commit_records ||
                                             since_commit >= options_.backlog_commit_interval);
    const bool due = output_due || fed_since_commit_ >= options_.checkpoint_records ||
                     (moved && since_commit >= options_.checkpoint_interval);
    if (due && !commit(std::exchange(out, {}))) {
      std::unique_lock lock(rewind_mu_);
      rewind_cv_.wait_for(lock, kRetryAfter, [this] { return stopping_.load(); });
      continue;
    }
    if (!caught_up) continue;
    auto wait = kLongestWait;
    if (const auto deadline = op_->next_deadline_ns()) {
      const auto left = std::chrono::nanoseconds(deadline - buffer_.clock().wall_ns());
      wait = std::max(std::chrono::milliseconds(1),
                      std::min(kLongestWait, std::chrono::ceil<std::chrono::milliseconds>(left)));
    }
    wait_for_input(wait);
  }
  // A clean stop keeps what was fed since the last commit.
  commit_fed();
  std::lock_guard lock(stats_mu_);
  stats_.connected = false;
}

buffer::RewindResult DerivedStream::rewind(std::function<buffer::RewindResult()> move_cursor) {
  std::unique_lock lock(rewind_mu_);
  if (stopping_ || !thread_.joinable()) return {buffer::Status::kClosed, 0, false, "the stream is not running"};
  rewind_request_ = std::move(move_cursor);
  rewind_result_.reset();
  rewind_cv_.notify_all();
  rewind_cv_.wait(lock, [this] { return rewind_result_.has_value() || stopping_; });
  if (!rewind_result_) return {buffer::Status::kClosed, 0, false, "the stream stopped"};
  auto result = *rewind_result_;
  rewind_result_.reset();
  return result;
}

buffer::RewindResult DerivedStream::rewind_to_seq(std::uint64_t seq) {
  return rewind([this, seq] { return buffer_.rewind_to_seq(cursor_, seq); });
}

buffer::RewindResult DerivedStream::rewind_to_time(std::int64_t ingest_ns) {
  return rewind([this, ingest_ns] { return buffer_.rewind_to_time(cursor_, ingest_ns); });
}

buffer::RewindResult DerivedStream::rewind_offline(buffer::Buffer& buffer, const std::string& stream,
                                                  const std::function<buffer::RewindResult()>& move_cursor) {
  auto result = move_cursor();
  if (result.status != buffer::Status::kOk) return result;
  const std::string prefix = state_prefix(stream);
  std::vector<StateChange> changes;
  for (const auto& [key, value] : buffer.source_state(prefix + "k/")) changes.push_back({key, std::nullopt});
  changes.push_back({prefix + "position", std::to_string(result.acked_seq)});
  std::promise<buffer::AppendOutcome> done;
  auto outcome_future = done.get_future();
  buffer.append({}, std::move(changes), [&done](const buffer::AppendOutcome& o) { done.set_value(o); });
  const auto outcome = outcome_future.get();
  if (!outcome.ok()) return {outcome.status, 0, false, outcome.error};
  return result;
}

drivers::SourceStats DerivedStream::stats() const {
  std::lock_guard lock(stats_mu_);
  auto s = stats_;
  s.counters = op_counters_;
  s.counters.push_back({"state_devices", "Devices whose state it holds (open windows, last reported values).",
                        static_cast<double>(devices_), common::Counter::Type::kGauge, false});
  s.counters.push_back({"commits_total", "Transactions it committed: output, state and position together.",
                        static_cast<double>(commits_), common::Counter::Type::kCounter, false});
  s.counters.push_back({"commit_seconds_total", "Time it waited for those transactions to commit.", commit_seconds_,
                        common::Counter::Type::kCounter, false});
  s.counters.push_back({"position", "Sequence number of the last input record its committed state accounts for.",
                        static_cast<double>(committed_position_.load()), common::Counter::Type::kGauge, false});
  return s;
}

}  // namespace tidegate::streams
