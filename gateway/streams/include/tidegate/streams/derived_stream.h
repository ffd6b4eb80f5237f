// A derived stream: a stateful processor (window, deadband) run on its own
// thread like a source. It reads the buffer after its position, feeds the
// records its route selects to its operator, and commits in ONE buffer
// transaction the operator's output records (with the processor's name as
// their source), the operator's changed state and its new position. After a
// kill -9 anywhere it starts again from the last such transaction, so every
// output is in the buffer exactly once and no input is counted twice or
// missed (docs/processing.md, "Derived streams").
//
// It also keeps a cursor in the buffer ("stream:NAME"), moved behind its
// committed position, so that retention and the cap treat it like a sink.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/source.h"
#include "tidegate/processing/route.h"
#include "tidegate/streams/operator.h"

namespace tidegate::streams {

struct DerivedStreamOptions {
  std::string name;  // the processor's name: its output's source, its state's prefix
  std::string kind;  // "window", "deadband"
  // Its definition as written: when it differs from the one its state was
  // made with, the state is dropped (and the log says so).
  std::string definition;
  processing::Route route;
  // Other derived streams: their output is not read unless route.sources
  // names it (a window over a deadband's output must say so).
  std::set<std::string> other_streams;
  buffer::StartPosition start = buffer::StartPosition::kLatest;  // where a new stream starts
  std::size_t batch_records = 2'000;
  std::size_t batch_bytes = 4 << 20;
  // A stream with state but no output commits its position and state at
  // least this often (and at a clean stop): a crash re-reads at most this
  // much input. Output is committed as soon as the stream has read all there
  // is; working through a backlog, it gathers output over several batches
  // (up to backlog_commit_records of input or backlog_commit_interval), so a
  // backlog costs a few commits rather than one per batch read.
  std::chrono::milliseconds checkpoint_interval{10'000};
  std::size_t checkpoint_records = 50'000;
  std::size_t backlog_commit_records = 20'000;
  std::chrono::milliseconds backlog_commit_interval{200};
};

class DerivedStream : public drivers::Source {
 public:
  DerivedStream(DerivedStreamOptions options, std::unique_ptr<StreamOperator> op, buffer::Buffer& buffer,
                buffer::LogFn log);
  ~DerivedStream() override;

  static std::string cursor_name(const std::string& stream) { return "stream:" + stream; }
  static std::string state_prefix(const std::string& stream) { return "streams/" + stream + "/"; }

  const std::string& name() const override { return options_.name; }
  void start() override;
  void stop() override;
  void pause() override {}
  void resume() override {}
  drivers::SourceStats stats() const override;

  // Recomputes from the retained input: the position moves back, the state
  // is dropped, and the output is made again. Waits until it is committed.
  buffer::RewindResult rewind_to_seq(std::uint64_t seq);
  buffer::RewindResult rewind_to_time(std::int64_t ingest_ns);

  // The same on a buffer no gateway runs (the operator's CLI): the cursor
  // goes back, the state is dropped and the position set, in the file; the
  // stream recomputes at its next start. `move_cursor` rewinds the cursor.
  static buffer::RewindResult rewind_offline(buffer::Buffer& buffer, const std::string& stream,
                                             const std::function<buffer::RewindResult()>& move_cursor);

  // For tests: the committed position (the last input seq it accounts for).
  std::uint64_t committed_position() const { return committed_position_.load(); }

 private:
  void run();
  bool load();  // the committed state and position; false (logged) if the buffer refused
  bool selects(const buffer::Record& r) const;
  // Commits outputs, changes and position; false if refused (then the
  // stream goes back to its committed state).
  bool commit(std::vector<buffer::NewRecord> out, std::vector<buffer::StateChange> extra = {});
  // Commits what was fed since the last commit (its gathered output), if any.
  void commit_fed();
  void roll_back(const std::string& why);
  void log(buffer::LogLevel level, const std::string& text) const;
  void wait_for_input(std::chrono::milliseconds at_most);
  buffer::RewindResult rewind(std::function<buffer::RewindResult()> move_cursor);

  DerivedStreamOptions options_;
  std::unique_ptr<StreamOperator> op_;
  buffer::Buffer& buffer_;
  buffer::LogFn log_;
  const std::string cursor_;
  const std::string prefix_;

  // The stream thread's own.
  std::uint64_t position_ = 0;         // fed through this seq
  std::set<std::string> stored_keys_;  // operator keys the file holds
  std::vector<common::Counter> committed_counters_;
  std::uint64_t fed_since_commit_ = 0;
  std::vector<buffer::NewRecord> pending_out_;  // output not yet committed (a backlog's batches)
  std::chrono::steady_clock::time_point last_commit_{};
  bool loaded_ = false;

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> committed_position_{0};

  // A rewind asked of the stream thread.
  std::mutex rewind_mu_;
  std::condition_variable rewind_cv_;
  std::function<buffer::RewindResult()> rewind_request_;
  std::optional<buffer::RewindResult> rewind_result_;

  mutable std::mutex stats_mu_;
  drivers::SourceStats stats_;
  std::vector<common::Counter> op_counters_;  // as of the last commit
  std::uint64_t committed_received_ = 0, committed_received_bytes_ = 0;
  std::size_t devices_ = 0;
  std::uint64_t commits_ = 0;
  double commit_seconds_ = 0;  // waiting for its transactions to commit
};

}  // namespace tidegate::streams
