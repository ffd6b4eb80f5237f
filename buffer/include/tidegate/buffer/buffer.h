// The ordered, durable ring buffer between sources and sinks.
//
// Threading: append() may be called from any number of ingest threads, read()
// and ack() from one forwarder thread per sink, stats() from a status thread,
// all at once. A single writer thread owns the SQLite write connection and
// commits appends in groups; readers use their own connections (WAL mode lets
// them run beside the writer).
//
// Failure rule: an append either commits every record of the call, reported
// through its callback with kOk, or none, reported with the reason. A source
// acknowledges its producer only on kOk.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tidegate/buffer/options.h"
#include "tidegate/buffer/record.h"
#include "tidegate/buffer/stats.h"
#include "tidegate/buffer/status.h"

namespace tidegate::buffer {

// Thrown only by open(), when no buffer can be had at all (unwritable
// directory, a database from a newer tidegate, a file that is not ours).
class BufferError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by open() for writing while another process has the buffer open for
// writing (a running gateway): one writer per file.
class BufferInUse : public BufferError {
 public:
  using BufferError::BufferError;
};

struct ReadResult {
  Status status = Status::kOk;
  std::vector<Record> records;  // ascending seq
  std::string error;
};

struct RewindResult {
  Status status = Status::kOk;
  std::uint64_t acked_seq = 0;  // the cursor after the rewind
  bool clamped = false;         // the target was older than the oldest retained record
  std::string error;
};

struct DeadLetter {
  std::int64_t id = 0;
  std::optional<std::uint64_t> seq;  // nullopt: rejected before it got one
  std::string sink;                  // empty: rejected at ingest
  std::string reason;
  std::int64_t failed_ns = 0;
  NewRecord record;
};

// Which dead letters an operator means: these ids, and/or those that failed
// before a time; `all` for every one.
struct DeadLetterSelection {
  std::vector<std::int64_t> ids;
  std::optional<std::int64_t> failed_before_ns;
  bool all = false;
};

struct DeadLetterChange {
  Status status = Status::kOk;
  std::uint64_t count = 0;      // dead letters replayed or removed
  std::uint64_t first_seq = 0;  // replay: the first new sequence number (0: none)
  std::string error;
};

class Buffer {
 public:
  // Opens or creates the buffer. A corrupt or unreadable database is moved
  // aside, salvaged as far as readable, and replaced (see open_report()).
  static std::unique_ptr<Buffer> open(BufferOptions options);

  // Commits everything still queued, then closes.
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const OpenReport& open_report() const;
  const BufferOptions& options() const;
  // The wall clock that stamps ingest times (options().clock, or the
  // system's): whoever compares with ingest times uses this one.
  Clock& clock() const;

  // Queues records for the next group commit; `on_commit` runs once they are
  // committed or refused. Blocks while max_queued_records are waiting.
  void append(std::vector<NewRecord> records, CommitCallback on_commit);
  // Same, with changes to the sources' state committed in the same
  // transaction (and refused with the records if they are refused). An
  // append of state alone is never refused for room.
  void append(std::vector<NewRecord> records, std::vector<StateChange> state, CommitCallback on_commit);
  // The sources' state whose keys start with `prefix`, in key order.
  std::vector<std::pair<std::string, std::string>> source_state(std::string_view prefix) const;
  // Same, waiting for the outcome.
  AppendOutcome append_wait(std::vector<NewRecord> records);
  // Returns once everything queued before the call is committed or refused.
  void flush();

  // Sinks and their cursors. ensure_sink creates a cursor if missing.
  Status ensure_sink(std::string_view sink, StartPosition start);
  // Forgets a retired sink: its cursor goes, and what only it was waiting
  // for counts as delivered from then on (retention may remove it).
  Status remove_sink(std::string_view sink);
  std::vector<std::string> sinks() const;
  std::optional<std::uint64_t> acked_seq(std::string_view sink) const;

  // Up to max_records records after the sink's cursor, stopping before
  // max_bytes accounted bytes (but always at least one record if any).
  ReadResult read(std::string_view sink, std::size_t max_records, std::size_t max_bytes) const;
  // Same from an explicit position, for forwarders that pipeline batches.
  ReadResult read_after(std::uint64_t after_seq, std::size_t max_records,
                        std::size_t max_bytes) const;
  // Waits until a record after `after_seq` is committed, the timeout passes
  // or the buffer closes; true if there is one. Forwarders wait here instead
  // of polling.
  bool wait_for_records_after(std::uint64_t after_seq, std::chrono::milliseconds timeout) const;
  // Moves the sink's cursor to `seq`. An ack at or below the cursor is a
  // no-op (acks may arrive out of order); beyond the newest is an error. The
  // cursor reaches the file with the next maintenance pass (or a clean
  // close), so a crash re-sends what was acknowledged since: at-least-once.
  Status ack(std::string_view sink, std::uint64_t seq);
  // The same for a batch the sink sent: records of it that the cap evicted
  // while it was in flight reached the sink after all, so they are taken
  // off its lost_by_eviction (and off evicted_total when no other sink was
  // still waiting for them).
  Status ack(std::string_view sink, std::uint64_t seq, std::span<const Record> delivered);

  // Replay: the next read starts at `seq`, or at the first record ingested at
  // or after `ingest_ns`. Targets older than the retained data clamp to the
  // oldest record.
  RewindResult rewind_to_seq(std::string_view sink, std::uint64_t seq);
  RewindResult rewind_to_time(std::string_view sink, std::int64_t ingest_ns);

  // Dead letters: records no sink will ever accept, or input refused at
  // ingest. The caller still acks past a dead-lettered record.
  Status add_dead_letter(std::string_view sink, std::optional<std::uint64_t> seq,
                         const NewRecord& record, std::string_view reason);
  std::vector<DeadLetter> dead_letters(std::size_t limit, std::int64_t after_id = 0) const;
  std::optional<DeadLetter> dead_letter(std::int64_t id) const;
  Status clear_dead_letters();
  DeadLetterChange clear_dead_letters(const DeadLetterSelection& which);
  // Puts the selected dead letters back as new records (new sequence
  // numbers, their original ingest time) and removes them from the dead
  // letters, in one transaction, through the writer like any append (the
  // cap and the disk reserve apply). Each goes to `to_sink` if given, else
  // to the sink that refused it (every sink for input refused at ingest).
  // Waits for the commit.
  DeadLetterChange replay_dead_letters(const DeadLetterSelection& which, std::string_view to_sink = {});

  // An operator's hold on a sink ("sink pause"), kept in the file so that a
  // restart does not release it (key "sinks/NAME/held" of the state table).
  Status set_sink_held(std::string_view sink, bool held);
  bool sink_held(std::string_view sink) const;

  // An operator has seen the losses so far: evicted_acknowledged becomes
  // evicted_total (durably), and only later evictions count as news.
  Status acknowledge_evictions();

  // A reload: takes the caps, full policy, retention and disk reserve of
  // `limits` (the rest of it is ignored) from the next commit on. A lower
  // cap evicts (drop-oldest) or refuses (reject-new) as at the next append.
  void apply_limits(const BufferOptions& limits);

  BufferStats stats() const;
  IntegrityReport verify(IntegrityCheck depth = IntegrityCheck::kFull) const;

  // One bounded pass of retention now (it also runs in the background).
  // Returns how many records were deleted.
  std::uint64_t run_maintenance();

  class Impl;

 private:
  explicit Buffer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::buffer
