#include "tidegate/buffer/buffer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "recent_records.h"
#include "recovery.h"
#include "schema.h"
#include "owner_lock.h"
#include "seq_floor.h"
#include "sqlite.h"
#include "store.h"

namespace tidegate::buffer {
namespace {

std::string held_key(std::string_view sink) { return "sinks/" + std::string(sink) + "/held"; }

using SteadyClock = std::chrono::steady_clock;

constexpr std::uint64_t kNoLimit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

struct Pending {
  std::vector<NewRecord> records;
  std::vector<StateChange> state;
  std::vector<std::int64_t> dead_letter_ids;  // a replay: removed in the same transaction
  CommitCallback on_commit;
  std::uint64_t bytes = 0;
  SteadyClock::time_point enqueued;
};

// Records the cap evicted above a cursor. Until the sink acknowledges past
// them they may still be in a batch in flight, and an ack naming them takes
// them back off the loss. In memory only: after a restart nothing is in flight.
struct EvictedAhead {
  std::uint64_t through_seq = 0;  // the newest evicted record above the cursor
  std::uint64_t records = 0;      // counted as lost, not yet delivered
  std::uint64_t sole_through = 0;  // through this seq no other sink waited for them
};

struct Cursor {
  std::uint64_t acked_seq = 0;
  std::uint64_t lost_by_eviction = 0;
  std::int64_t created_ns = 0;
  EvictedAhead evicted_ahead;
  // acked_seq as the file has it. Acks move acked_seq in memory; the
  // maintenance pass (and a clean stop) writes it, so each ack costs no
  // transaction of its own. After a crash a sink re-sends what it delivered
  // since: more, never less.
  std::uint64_t stored_seq = 0;
};

// In-memory mirror of what is committed. A transaction works on a copy that
// replaces it only after COMMIT, so a rollback leaves it as it was.
struct Committed {
  std::uint64_t next_seq = 1;
  std::int64_t next_ord = 0;
  std::int64_t next_off = 0;
  std::optional<RowPos> oldest;
  std::optional<RowPos> newest;
  std::map<std::string, Cursor, std::less<>> cursors;
  std::uint64_t evicted_total = 0;
  std::uint64_t evicted_acknowledged = 0;
  std::int64_t evicted_acknowledged_ns = 0;
  std::uint64_t expired_total = 0;
  std::uint64_t dead_lettered_total = 0;

  std::uint64_t records() const { return oldest ? static_cast<std::uint64_t>(next_ord - oldest->ord) : 0; }
  std::uint64_t bytes() const { return oldest ? static_cast<std::uint64_t>(next_off - oldest->off) : 0; }
  // Records at or below this were acknowledged by every sink (0 with no sinks:
  // nothing counts as delivered until some sink exists).
  std::uint64_t delivered_through() const {
    if (cursors.empty()) return 0;
    std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
    for (const auto& [name, c] : cursors) low = std::min(low, c.acked_seq);
    return low;
  }
  // Dense position and byte offset where the records after `seq` begin.
  std::pair<std::int64_t, std::int64_t> position_after(Queries& q, std::uint64_t seq) const {
    if (auto row = q.first_after(seq)) return {row->ord, row->off};
    return {next_ord, next_off};
  }
};

Status status_of(const sql::SqliteError& e) { return e.disk_full() ? Status::kDiskFull : Status::kIoError; }

Status status_of(const std::system_error& e) {
  return e.code().value() == ENOSPC || e.code().value() == EDQUOT ? Status::kDiskFull : Status::kIoError;
}

// Connections for reads, opened on demand and reused. WAL mode lets them read
// committed data while the writer commits.
class ReaderPool {
 public:
  struct Reader {
    explicit Reader(const std::filesystem::path& path)
        : db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX), queries((prepare(db), db)) {}
    static void prepare(sql::Db& db) {
      schema::configure_connection(db);
      db.exec("PRAGMA query_only = 1");
    }
    sql::Db db;
    Queries queries;
  };

  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<Reader> reader) : pool_(pool), reader_(std::move(reader)) {}
    ~Lease() { pool_.release(std::move(reader_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Reader* operator->() { return reader_.get(); }

   private:
    ReaderPool& pool_;
    std::unique_ptr<Reader> reader_;
  };

  explicit ReaderPool(std::filesystem::path path) : path_(std::move(path)) {}

  Lease acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto reader = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(reader));
      }
    }
    return Lease(*this, std::make_unique<Reader>(path_));
  }

  void clear() {
    std::lock_guard lock(mu_);
    idle_.clear();
  }

 private:
  void release(std::unique_ptr<Reader> reader) {
    if (!reader) return;
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(reader));
  }

  static constexpr std::size_t kMaxIdle = 4;
  std::filesystem::path path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Reader>> idle_;
};

// The top-level CMakeLists.txt sets _FILE_OFFSET_BITS=64; without it a
// 32-bit build's stat() fails on a file past 2 GiB and the size reads 0.
static_assert(sizeof(off_t) == 8, "32-bit builds need _FILE_OFFSET_BITS=64");

std::uint64_t bytes_on_disk(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

class Buffer::Impl {
 public:
  explicit Impl(BufferOptions options)
      : opts_(std::move(options)),
        log_(opts_.log ? opts_.log : stderr_log()),
        clock_(opts_.clock ? opts_.clock : system_clock()),
        disk_(opts_.disk_space ? opts_.disk_space : system_disk_space()),
        dir_(opts_.path.has_parent_path() ? opts_.path.parent_path() : std::filesystem::path(".")),
        floor_(opts_.path),
        readers_(opts_.path),
        recent_(opts_.read_only ? 0 : opts_.recent_records_bytes) {}

  ~Impl() { stop(); }

  void open();
  void stop();

  void append(std::vector<NewRecord> records, std::vector<StateChange> state, CommitCallback on_commit,
              std::vector<std::int64_t> dead_letter_ids = {});
  std::vector<std::pair<std::string, std::string>> source_state(std::string_view prefix) const;
  Status ensure_sink(std::string_view sink, StartPosition start);
  Status remove_sink(std::string_view sink);
  Status acknowledge_evictions();
  Status set_sink_held(std::string_view sink, bool held);
  std::vector<std::string> sinks() const;
  std::optional<std::uint64_t> acked_seq(std::string_view sink) const;
  bool wait_for_records_after(std::uint64_t after_seq, std::chrono::milliseconds timeout) const;
  ReadResult read_after(std::uint64_t after, std::size_t max_records, std::size_t max_bytes) const;
  Status ack(std::string_view sink, std::uint64_t seq, std::span<const Record> delivered);
  RewindResult rewind_to_seq(std::string_view sink, std::uint64_t seq);
  RewindResult rewind_to_time(std::string_view sink, std::int64_t ingest_ns);
  Status add_dead_letter(std::string_view sink, std::optional<std::uint64_t> seq, const NewRecord& record,
                         std::string_view reason);
  std::vector<DeadLetter> dead_letters(std::size_t limit, std::int64_t after_id) const;
  std::optional<DeadLetter> dead_letter(std::int64_t id) const;
  Status clear_dead_letters();
  DeadLetterChange clear_dead_letters(const DeadLetterSelection& which);
  DeadLetterChange replay_dead_letters(const DeadLetterSelection& which, std::string_view to_sink);
  void apply_limits(const BufferOptions& limits);
  BufferStats stats() const;
  IntegrityReport verify(IntegrityCheck depth) const;
  std::uint64_t run_maintenance();

  bool on_writer_thread() const { return std::this_thread::get_id() == writer_id_; }

  BufferOptions opts_;
  OpenReport report_;
  Clock& clock() const { return *clock_; }

 private:
  void open_database(bool fresh);
  void recover(const std::string& problem);
  void load_state();
  void writer_loop();
  SteadyClock::time_point next_wakeup() const;
  void maintain_if_due();
  void sync_wal_if_due();
  void commit_group(std::vector<Pending>& group);
  void keep_recent(std::vector<Pending>& group, const std::vector<AppendOutcome>& outcomes);
  bool below_disk_reserve();
  bool shrink_wal();
  // `reserve_cap`: below the disk reserve, the accounted bytes the buffer
  // may hold (what it holds plus the free pages inside its file).
  bool make_room(Committed& w, std::uint64_t records, std::uint64_t bytes, std::optional<std::uint64_t> reserve_cap);
  std::uint64_t reusable_bytes();
  bool evict_prefix(Committed& w, std::uint64_t need_records, std::uint64_t need_bytes, std::uint64_t limit_seq);
  bool cursors_unstored(const Committed& w) const;
  bool chunk_deletable(const Committed& w) const;
  // Retention keeps delivered records for replay (by time or bytes).
  bool keeps_delivered() const { return opts_.retention_time.count() > 0 || opts_.retention_bytes > 0; }
  // Delivered records still stored: the sequence span from the oldest to the
  // point every sink acknowledged (an upper bound where seqs have gaps).
  static std::uint64_t delivered_waiting(const Committed& w) {
    const std::uint64_t delivered = w.delivered_through();
    return w.oldest && delivered >= w.oldest->seq ? delivered - w.oldest->seq + 1 : 0;
  }
  void store_cursors(Committed& w);
  void delete_records_through(Committed& w, std::uint64_t upto);
  void note_append_result(Status status, const std::string& detail, std::uint64_t records);
  // Records meant for one sink: what read_after marks (only_sink).
  void mark_targets(std::vector<Record>& records) const;
  void forget_targets_before(std::uint64_t oldest_seq);
  template <typename Fn>
  Status write_transaction(const char* what, Fn&& fn);

  LogFn log_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<DiskSpace> disk_;
  const std::filesystem::path dir_;  // where the database lives: its filesystem is watched
  SeqFloor floor_;
  // Held while open for writing; declared before the connections so that it
  // is released after they are closed.
  std::optional<OwnerLock> owner_lock_;
  mutable ReaderPool readers_;
  RecentRecords recent_;  // the newest commits, for readers that are caught up
  mutable std::atomic<std::uint64_t> read_from_memory_total_{0};
  mutable std::atomic<std::uint64_t> read_from_file_total_{0};

  // Write side: the connection, the committed mirror and the counters below
  // are guarded by state_mu_.
  mutable std::mutex state_mu_;
  std::unique_ptr<sql::Db> db_;
  std::unique_ptr<Store> store_;
  Committed state_;
  std::uint64_t dead_letter_rows_ = 0;
  std::uint64_t evicted_at_open_ = 0;
  std::uint64_t appended_total_ = 0;
  std::uint64_t rejected_total_ = 0;
  std::uint64_t disk_full_total_ = 0;
  std::uint64_t io_error_total_ = 0;
  std::uint64_t commits_total_ = 0;
  std::uint64_t latency_last_us_ = 0;
  std::uint64_t latency_max_us_ = 0;
  std::uint64_t latency_sum_us_ = 0;
  std::optional<std::uint64_t> disk_available_;
  bool reserve_reached_ = false;
  Status failing_with_ = Status::kOk;  // last refusal logged, to log changes only
  std::uint64_t refused_since_logged_ = 0;

  // Records meant for one sink only (replayed dead letters), mirrored from
  // the table record_targets; few, usually none.
  mutable std::mutex targets_mu_;
  std::map<std::uint64_t, std::string> targets_;
  std::atomic<bool> have_targets_{false};
  std::mutex replay_mu_;  // one replay at a time: a dead letter goes back once

  // Readers waiting for new records (wait_for_records_after).
  mutable std::mutex new_records_mu_;
  mutable std::condition_variable new_records_cv_;
  std::atomic<std::uint64_t> last_committed_seq_{0};
  std::atomic<bool> closed_{false};

  // Queue between appenders and the writer thread.
  mutable std::mutex queue_mu_;
  std::condition_variable work_cv_;   // writer waits for work
  std::condition_variable space_cv_;  // appenders wait for room
  std::deque<Pending> queue_;
  std::size_t queued_records_ = 0;
  std::uint64_t queued_bytes_ = 0;  // accounted bytes of queued_records_
  // Enough waits for one transaction: it need not wait out the window.
  bool group_full() const {
    return queued_records_ >= opts_.commit_max_records ||
           (opts_.commit_max_bytes > 0 && queued_bytes_ >= opts_.commit_max_bytes);
  }
  bool stopping_ = false;
  std::thread writer_;
  std::thread::id writer_id_;
  SteadyClock::time_point next_maintenance_;
  SteadyClock::time_point last_maintenance_;
  // Crash-safe mode's periodic WAL sync (writer thread only).
  bool wal_dirty_ = false;
  SteadyClock::time_point next_sync_;
  std::atomic<std::uint64_t> wal_syncs_total_{0};
  // Set by ack() once a chunk's worth of delivered records may be deleted:
  // the writer then runs maintenance before its interval is up.
  std::atomic<bool> maintenance_wanted_{false};
};

// ---------------------------------------------------------------- opening

void Buffer::Impl::open() {
  if (opts_.path.empty()) throw BufferError("buffer path is empty");
  if (opts_.commit_max_records == 0) throw BufferError("commit_max_records must be at least 1");
  if (opts_.max_queued_records == 0) throw BufferError("max_queued_records must be at least 1");
  if (opts_.maintenance_chunk == 0) throw BufferError("maintenance_chunk must be at least 1");

  if (opts_.read_only) {
    try {
      open_database(false);
    } catch (const std::exception& e) {
      throw BufferError(opts_.path.string() + ": " + e.what());
    }
    report_.next_seq = state_.next_seq;
    evicted_at_open_ = state_.evicted_total;
    return;
  }

  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw BufferError("cannot create buffer directory " + dir_.string() + ": " + ec.message());
  if (::access(dir_.c_str(), W_OK | X_OK) != 0) {
    throw BufferError("buffer directory " + dir_.string() + " is not writable: " +
                      std::error_code(errno, std::generic_category()).message());
  }
  owner_lock_.emplace(opts_.path);

  floor_.load();
  const bool existed = std::filesystem::exists(opts_.path);
  try {
    open_database(false);
  } catch (const schema::IncompatibleError& e) {
    throw BufferError(opts_.path.string() + ": " + e.what());
  } catch (const sql::SqliteError& e) {
    const int rc = e.primary();
    const bool damage = rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_IOERR ||
                        rc == SQLITE_CANTOPEN || rc == SQLITE_PERM || rc == SQLITE_READONLY ||
                        rc == SQLITE_AUTH;
    if (!existed || !damage) throw BufferError(opts_.path.string() + ": " + e.what());
    recover(e.what());
  }
  report_.created = !existed;
  report_.next_seq = state_.next_seq;
  evicted_at_open_ = state_.evicted_total;
  last_committed_seq_ = state_.next_seq - 1;

  try {
    floor_.cover(state_.next_seq);
  } catch (const std::system_error& e) {
    log_(LogLevel::kWarning, std::string("cannot write sequence floor: ") + e.what());
  }

  last_maintenance_ = SteadyClock::now();
  next_maintenance_ = last_maintenance_ + opts_.maintenance_interval;
  writer_ = std::thread([this] { writer_loop(); });
  writer_id_ = writer_.get_id();
}

void Buffer::Impl::open_database(bool fresh) {
  store_.reset();
  const int flags = opts_.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  db_ = std::make_unique<sql::Db>(opts_.path, flags | SQLITE_OPEN_NOMUTEX);
  schema::configure_connection(*db_);
  db_->exec(opts_.durability == Durability::kPowerSafe ? "PRAGMA synchronous = FULL"
                                                      : "PRAGMA synchronous = NORMAL");
  // Keep the WAL from staying large after a burst (SD cards are small).
  db_->exec("PRAGMA journal_size_limit = 67108864");
  if (opts_.max_page_count > 0) db_->exec("PRAGMA max_page_count = " + std::to_string(opts_.max_page_count));

  const bool created = schema::create_or_validate(*db_, clock_->wall_ns(), opts_.read_only, opts_.page_size);
  // Checkpoint by WAL bytes (about 8 MiB), not by SQLite's 1,000 pages: a
  // checkpoint copies each page once however often the WAL rewrote it, and
  // with delivered records deleted in between, many of those pages were
  // reused. Fewer checkpoints, fewer bytes copied into the file.
  if (!opts_.read_only) {
    const auto page_size = db_->query_int("PRAGMA page_size").value_or(4096);
    db_->exec("PRAGMA wal_autocheckpoint = " + std::to_string(std::max<std::int64_t>(1000, (8 << 20) / page_size)));
  }
  if (!created && !fresh && opts_.integrity_check != IntegrityCheck::kNone) {
    const char* pragma = opts_.integrity_check == IntegrityCheck::kFull ? "PRAGMA integrity_check(5)"
                                                                        : "PRAGMA quick_check(5)";
    const auto result = db_->query_text(pragma).value_or("no result");
    if (result != "ok") throw sql::SqliteError(SQLITE_CORRUPT, std::string(pragma) + ": " + result);
  }
  store_ = std::make_unique<Store>(*db_);
  if (created && floor_.value() > 1) {
    // A new file where sequences were handed out before (the old file was
    // deleted or moved aside): continue above them, never reuse.
    store_->set_meta("next_seq", static_cast<std::int64_t>(floor_.value()));
  }
  load_state();
}

void Buffer::Impl::recover(const std::string& problem) {
  store_.reset();
  db_.reset();
  readers_.clear();
  std::filesystem::path aside;
  try {
    aside = recovery::move_aside(opts_.path, clock_->wall_ns());
  } catch (const std::filesystem::filesystem_error& e) {
    throw BufferError("buffer " + opts_.path.string() + " is damaged (" + problem +
                      ") and cannot be moved aside: " + e.what());
  }
  log_(LogLevel::kError, "buffer " + opts_.path.string() + " is damaged (" + problem + "); moved aside to " +
                             aside.string() + ", starting a fresh buffer and salvaging what is readable");
  try {
    open_database(true);
    const auto salvaged = recovery::salvage(aside, *store_, log_);
    const std::uint64_t next_seq = std::max({salvaged.next_seq, floor_.value(), std::uint64_t{1}});
    store_->begin();
    store_->set_meta("next_seq", static_cast<std::int64_t>(next_seq));
    store_->set_meta("next_ord", salvaged.next_ord);
    store_->set_meta("next_off", salvaged.next_off);
    store_->set_meta("dead_lettered_total", static_cast<std::int64_t>(salvaged.dead_letters));
    store_->commit();
    load_state();
    report_.salvaged_records = salvaged.records;
    report_.salvaged_cursors = salvaged.cursors;
  } catch (const sql::SqliteError& e) {
    throw BufferError("cannot start a fresh buffer at " + opts_.path.string() + ": " + e.what());
  }
  report_.recovered = true;
  report_.problem = problem;
  report_.moved_aside_to = aside;
  log_(LogLevel::kWarning, "buffer recovered: " + std::to_string(report_.salvaged_records) +
                               " records and " + std::to_string(report_.salvaged_cursors) +
                               " sink cursors salvaged; next sequence " + std::to_string(state_.next_seq));
}

void Buffer::Impl::load_state() {
  Committed s;
  auto& q = store_->queries();
  s.oldest = q.first_after(0);
  s.newest = q.newest();
  // meta holds the counters as of the last transaction that deleted rows;
  // appends since then are told by the newest row.
  s.next_seq = static_cast<std::uint64_t>(std::max<std::int64_t>(schema::meta_int(*db_, "next_seq"), 1));
  s.next_ord = schema::meta_int(*db_, "next_ord");
  s.next_off = schema::meta_int(*db_, "next_off");
  if (s.newest) {
    s.next_seq = std::max(s.next_seq, s.newest->seq + 1);
    s.next_ord = std::max(s.next_ord, s.newest->ord + 1);
    s.next_off = std::max(s.next_off, q.newest_end().value_or(s.newest->off + 1));
  }
  s.evicted_total = static_cast<std::uint64_t>(schema::meta_int(*db_, "evicted_total"));
  s.evicted_acknowledged = static_cast<std::uint64_t>(schema::meta_int(*db_, "evicted_acknowledged"));
  s.evicted_acknowledged_ns = schema::meta_int(*db_, "evicted_acknowledged_ns");
  s.expired_total = static_cast<std::uint64_t>(schema::meta_int(*db_, "expired_total"));
  s.dead_lettered_total = static_cast<std::uint64_t>(schema::meta_int(*db_, "dead_lettered_total"));
  for (auto& row : store_->load_cursors()) {
    s.cursors[row.sink] = Cursor{row.acked_seq, row.lost_by_eviction, row.created_ns, {}, row.acked_seq};
  }
  dead_letter_rows_ = static_cast<std::uint64_t>(db_->query_int("SELECT count(*) FROM dead_letters").value_or(0));
  {
    std::lock_guard lock(targets_mu_);
    targets_.clear();
    for (auto& [seq, sink] : load_targets(*db_)) targets_.emplace(seq, std::move(sink));
    have_targets_ = !targets_.empty();
  }
  state_ = std::move(s);
}

void Buffer::Impl::stop() {
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(new_records_mu_);
    closed_ = true;
  }
  new_records_cv_.notify_all();
  readers_.clear();
  std::lock_guard lock(state_mu_);
  // A clean stop leaves every sink's position in the file: nothing is sent
  // twice after a restart.
  if (store_ && !opts_.read_only && cursors_unstored(state_)) {
    Committed w = state_;
    if (write_transaction("store sink positions", [&] { store_cursors(w); }) == Status::kOk) state_ = std::move(w);
  }
  store_.reset();
  db_.reset();
}

// ---------------------------------------------------------------- appends

void Buffer::Impl::append(std::vector<NewRecord> records, std::vector<StateChange> state, CommitCallback on_commit,
                          std::vector<std::int64_t> dead_letter_ids) {
  Pending pending;
  pending.dead_letter_ids = std::move(dead_letter_ids);
  pending.enqueued = SteadyClock::now();
  for (const auto& r : records) pending.bytes += accounted_size(r);
  pending.records = std::move(records);
  pending.state = std::move(state);
  pending.on_commit = std::move(on_commit);
  const std::size_t n = pending.records.size();

  std::unique_lock lock(queue_mu_);
  if (opts_.read_only) stopping_ = true;
  // The writer thread itself (a callback appending) must never wait for room
  // only it can make.
  if (!on_writer_thread()) {
    space_cv_.wait(lock, [&] {
      return stopping_ || queued_records_ == 0 || queued_records_ + n <= opts_.max_queued_records;
    });
  }
  if (stopping_) {
    lock.unlock();
    if (pending.on_commit) pending.on_commit(AppendOutcome{Status::kClosed, 0, 0, "buffer is closing"});
    return;
  }
  const bool was_full = group_full();
  const bool wake = queue_.empty();
  queued_records_ += n;
  queued_bytes_ += pending.bytes;
  const bool wake_full = !was_full && group_full();
  queue_.push_back(std::move(pending));
  lock.unlock();
  if (wake || wake_full) work_cv_.notify_one();
}

void Buffer::Impl::writer_loop() {
  std::unique_lock lock(queue_mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) break;
      if (!maintenance_wanted_) work_cv_.wait_until(lock, next_wakeup());
      if (queue_.empty() && !stopping_) {
        lock.unlock();
        sync_wal_if_due();
        maintain_if_due();
        lock.lock();
      }
      continue;
    }
    // Group commit: wait for company until the window closes or enough
    // records are pending.
    const auto deadline = queue_.front().enqueued + opts_.commit_window;
    while (!stopping_ && !group_full() && SteadyClock::now() < deadline) {
      work_cv_.wait_until(lock, deadline);
    }
    std::vector<Pending> group;
    std::size_t taken = 0;
    std::uint64_t taken_bytes = 0;
    while (!queue_.empty() &&
           (group.empty() || taken + queue_.front().records.size() <= opts_.commit_max_records)) {
      taken += queue_.front().records.size();
      taken_bytes += queue_.front().bytes;
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_records_ -= taken;
    queued_bytes_ -= taken_bytes;
    lock.unlock();
    space_cv_.notify_all();

    commit_group(group);
    sync_wal_if_due();
    maintain_if_due();
    lock.lock();
  }
}

// A pass costs a transaction of a few pages whatever it holds. Without
// retention, one for a handful of delivered records (a quiet gateway's
// heartbeat) waits for more, up to kQuietPasses intervals; with retention the
// interval paces expiry as configured.
void Buffer::Impl::maintain_if_due() {
  constexpr int kQuietPasses = 10;
  constexpr std::uint64_t kWorthAPass = 64;
  const auto now = SteadyClock::now();
  if (!maintenance_wanted_ && now < next_maintenance_) return;
  if (!maintenance_wanted_ && !keeps_delivered() && now < last_maintenance_ + kQuietPasses * opts_.maintenance_interval) {
    std::uint64_t waiting = 0;
    {
      std::lock_guard lock(state_mu_);
      waiting = delivered_waiting(state_);
      for (const auto& [name, c] : state_.cursors) waiting = std::max(waiting, c.acked_seq - c.stored_seq);
    }
    if (waiting < kWorthAPass) {
      next_maintenance_ = now + opts_.maintenance_interval;
      return;
    }
  }
  run_maintenance();
  last_maintenance_ = SteadyClock::now();
  next_maintenance_ = last_maintenance_ + opts_.maintenance_interval;
}

SteadyClock::time_point Buffer::Impl::next_wakeup() const {
  return wal_dirty_ ? std::min(next_maintenance_, next_sync_) : next_maintenance_;
}

// fdatasync on our own descriptor of the WAL flushes what SQLite wrote to it
// (the kernel keeps one page cache per file), without holding the state lock.
void Buffer::Impl::sync_wal_if_due() {
  if (opts_.durability != Durability::kCrashSafe || opts_.sync_interval.count() == 0) return;
  if (!wal_dirty_) {
    next_sync_ = SteadyClock::now() + opts_.sync_interval;
    return;
  }
  if (SteadyClock::now() < next_sync_) return;
  const auto wal = std::filesystem::path(opts_.path).concat("-wal");
  const int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (::fdatasync(fd) != 0) {
      log_(LogLevel::kWarning, "fdatasync " + wal.string() + ": " + std::error_code(errno, std::generic_category()).message());
    } else {
      wal_syncs_total_ += 1;
    }
    ::close(fd);
  }
  wal_dirty_ = false;
  next_sync_ = SteadyClock::now() + opts_.sync_interval;
}

void Buffer::Impl::commit_group(std::vector<Pending>& group) {
  std::vector<AppendOutcome> outcomes(group.size());
  {
    std::lock_guard lock(state_mu_);
    bool reserve = below_disk_reserve();
    if (reserve && shrink_wal()) reserve = below_disk_reserve();
    if (reserve != reserve_reached_) {
      reserve_reached_ = reserve;
      log_(reserve ? LogLevel::kWarning : LogLevel::kInfo,
           reserve ? "free disk below the reserve of " + std::to_string(opts_.disk_reserve_bytes) +
                         " bytes: the buffer stops growing (" + to_string(opts_.full_policy) + ")"
                   : std::string("free disk above the reserve again: the buffer may grow"));
    }

    Committed w = state_;
    // Below the reserve the file may not grow, but the pages SQLite freed
    // inside it (a drained backlog) cost no disk: they are room.
    const auto reserve_cap = reserve ? std::optional<std::uint64_t>(w.bytes() + reusable_bytes()) : std::nullopt;
    bool refuse_rest = false;
    Status failed = Status::kOk;
    std::string failure;
    const std::int64_t now_ns = clock_->wall_ns();
    std::vector<std::pair<std::uint64_t, std::string>> new_targets;
    std::uint64_t letters_removed = 0;
    try {
      store_->begin();
      for (std::size_t i = 0; i < group.size(); ++i) {
        auto& p = group[i];
        const auto n = static_cast<std::uint32_t>(p.records.size());
        if (n == 0) {  // a flush marker, or state alone (never refused for room)
          for (const auto& change : p.state) store_->put_state(change);
          continue;
        }
        // Once one call is refused, later calls in the group are refused too,
        // so a source retrying never sees its records reordered.
        if (refuse_rest || !make_room(w, n, p.bytes, reserve_cap)) {
          refuse_rest = true;
          outcomes[i] = AppendOutcome{Status::kBackpressure, 0, 0,
                                      reserve ? "disk free space below the reserve"
                                              : "buffer full (reject-new policy)"};
          continue;
        }
        floor_.cover(w.next_seq + n - 1);
        outcomes[i].first_seq = w.next_seq;
        outcomes[i].count = n;
        for (auto& r : p.records) {
          // Stamped in the pending record itself: keep_recent hands readers
          // the same time the row holds.
          if (r.ingest_ns == 0) r.ingest_ns = now_ns;
          store_->insert(w.next_seq, w.next_ord, w.next_off, r.ingest_ns, r);
          if (!r.only_sink.empty()) {
            store_->insert_target(w.next_seq, r.only_sink);
            new_targets.emplace_back(w.next_seq, r.only_sink);
          }
          RowPos pos{w.next_seq, w.next_ord, w.next_off, r.ingest_ns};
          if (!w.oldest) w.oldest = pos;
          w.newest = pos;
          w.next_seq += 1;
          w.next_ord += 1;
          w.next_off += static_cast<std::int64_t>(accounted_size(r));
        }
        for (const auto& change : p.state) store_->put_state(change);
        for (const auto id : p.dead_letter_ids) letters_removed += store_->delete_dead_letter(id) ? 1 : 0;
      }
      // next_seq, next_ord and next_off are not written here: the newest row
      // says them (load_state), and a transaction that deletes rows writes
      // them first (delete_records_through). One page less per commit.
      store_->commit();
      state_ = std::move(w);
      wal_dirty_ = true;
      dead_letter_rows_ -= std::min(dead_letter_rows_, letters_removed);
      if (!new_targets.empty()) {
        std::lock_guard targets(targets_mu_);
        for (auto& [seq, sink] : new_targets) targets_.emplace(seq, std::move(sink));
        have_targets_ = true;
      }
      if (state_.oldest) forget_targets_before(state_.oldest->seq);
      keep_recent(group, outcomes);
      if (state_.next_seq - 1 > last_committed_seq_.load()) {
        {
          std::lock_guard waiters(new_records_mu_);
          last_committed_seq_ = state_.next_seq - 1;
        }
        new_records_cv_.notify_all();
      }
    } catch (const sql::SqliteError& e) {
      db_->rollback_quietly();
      failed = status_of(e);
      failure = e.what();
      if (failed == Status::kDiskFull) shrink_wal();
    } catch (const std::system_error& e) {
      db_->rollback_quietly();
      failed = status_of(e);
      failure = std::string("sequence floor: ") + e.what();
    }

    const auto done = SteadyClock::now();
    for (std::size_t i = 0; i < group.size(); ++i) {
      auto& o = outcomes[i];
      if (failed != Status::kOk && o.status == Status::kOk) o = AppendOutcome{failed, 0, 0, failure};
      const auto n = group[i].records.size();
      if (o.status == Status::kOk) appended_total_ += n;
      if (o.status == Status::kBackpressure) rejected_total_ += n;
      if (o.status == Status::kDiskFull) disk_full_total_ += n;
      if (o.status == Status::kIoError) io_error_total_ += n;
      if (n > 0) note_append_result(o.status, o.error, n);
    }
    const auto latency = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(done - group.front().enqueued).count());
    commits_total_ += 1;
    latency_last_us_ = latency;
    latency_max_us_ = std::max(latency_max_us_, latency);
    latency_sum_us_ += latency;
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (!group[i].on_commit) continue;
    try {
      group[i].on_commit(outcomes[i]);
    } catch (const std::exception& e) {
      log_(LogLevel::kError, std::string("commit callback threw: ") + e.what());
    } catch (...) {
      log_(LogLevel::kError, "commit callback threw a non-standard exception");
    }
  }
}

// The records the group committed, moved into memory for the readers (the
// group is not read again but for its sizes), ingest times already stamped.
void Buffer::Impl::keep_recent(std::vector<Pending>& group, const std::vector<AppendOutcome>& outcomes) {
  std::vector<Record> committed;
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (outcomes[i].status != Status::kOk || outcomes[i].count == 0) continue;
    std::uint64_t seq = outcomes[i].first_seq;
    for (auto& r : group[i].records) {
      Record& kept = committed.emplace_back();
      static_cast<NewRecord&>(kept) = std::move(r);
      kept.seq = seq++;
    }
  }
  recent_.add(std::move(committed));
}

bool Buffer::Impl::below_disk_reserve() {
  disk_available_ = disk_->available_bytes(dir_);
  return opts_.disk_reserve_bytes > 0 && disk_available_ && *disk_available_ < opts_.disk_reserve_bytes;
}

// When space is short the WAL is the part that can give some back: it grows
// with every commit until the next automatic checkpoint (about 4 MiB), and
// often holds many versions of the same pages. A TRUNCATE checkpoint copies
// the latest versions into the database (reusing its free pages) and cuts the
// WAL to zero. Returns true if it ran.
bool Buffer::Impl::shrink_wal() {
  constexpr std::uint64_t kWorthIt = 64 << 10;
  if (bytes_on_disk(std::filesystem::path(opts_.path).concat("-wal")) < kWorthIt) return false;
  int log_frames = 0;
  int checkpointed = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_->get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames, &checkpointed);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    log_(LogLevel::kWarning, std::string("WAL checkpoint to free disk space failed: ") + sqlite3_errmsg(db_->get()));
  }
  return rc == SQLITE_OK;
}

// Logs when appends start or stop being refused, not once per refusal.
void Buffer::Impl::note_append_result(Status status, const std::string& detail, std::uint64_t records) {
  if (status == Status::kOk) {
    if (failing_with_ != Status::kOk) {
      log_(LogLevel::kInfo, "appends accepted again after " + std::to_string(refused_since_logged_) +
                                " records were refused (" + to_string(failing_with_) + ")");
      failing_with_ = Status::kOk;
      refused_since_logged_ = 0;
    }
    return;
  }
  refused_since_logged_ += records;
  if (status != failing_with_) {
    log_(status == Status::kBackpressure ? LogLevel::kWarning : LogLevel::kError,
         std::string("appends refused: ") + to_string(status) + ": " + detail);
    failing_with_ = status;
  }
}

std::uint64_t Buffer::Impl::reusable_bytes() {
  try {
    const auto pages = db_->query_int("PRAGMA freelist_count").value_or(0);
    const auto page_size = db_->query_int("PRAGMA page_size").value_or(4096);
    return pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) : 0;
  } catch (const sql::SqliteError& e) {
    log_(LogLevel::kWarning, std::string("cannot read the free pages of the buffer file: ") + e.what());
    return 0;  // no room assumed: the reserve holds
  }
}

bool Buffer::Impl::make_room(Committed& w, std::uint64_t records, std::uint64_t bytes,
                             std::optional<std::uint64_t> reserve_cap) {
  std::uint64_t max_bytes = opts_.max_bytes > 0 ? opts_.max_bytes : kNoLimit;
  // Below the disk reserve the buffer may not grow the file: it behaves as
  // if the cap were what it holds plus the free pages inside the file.
  if (reserve_cap) max_bytes = std::min(max_bytes, *reserve_cap);
  const std::uint64_t max_records = opts_.max_records > 0 ? opts_.max_records : kNoLimit;
  if (records > max_records || bytes > max_bytes) return false;
  const std::uint64_t have_records = w.records();
  const std::uint64_t have_bytes = w.bytes();
  const std::uint64_t need_records = have_records + records > max_records ? have_records + records - max_records : 0;
  const std::uint64_t need_bytes = have_bytes + bytes > max_bytes ? have_bytes + bytes - max_bytes : 0;
  if (need_records == 0 && need_bytes == 0) return true;
  // reject-new may still drop records every sink already has.
  const std::uint64_t limit = opts_.full_policy == FullPolicy::kDropOldest ? kNoLimit : w.delivered_through();
  return evict_prefix(w, need_records, need_bytes, limit);
}

bool Buffer::Impl::evict_prefix(Committed& w, std::uint64_t need_records, std::uint64_t need_bytes,
                                std::uint64_t limit_seq) {
  if (!w.oldest || limit_seq < w.oldest->seq) return false;
  auto& q = store_->queries();
  const std::int64_t keep_ord = w.oldest->ord + static_cast<std::int64_t>(need_records);
  const std::int64_t keep_off = w.oldest->off + static_cast<std::int64_t>(need_bytes);
  std::uint64_t upto = 0;
  q.scan_prefix(limit_seq, [&](const RowPos& row) {
    if (row.ord >= keep_ord && row.off >= keep_off) return false;
    upto = row.seq;
    return true;
  });
  if (upto == 0) return false;
  const auto after = w.position_after(q, upto);
  if (after.first < keep_ord || after.second < keep_off) return false;  // not enough below the limit

  // Account before deleting: delivered records expire, the rest are lost to
  // every sink that had not acknowledged them.
  const std::uint64_t delivered = std::min(upto, w.delivered_through());
  const std::int64_t removed = after.first - w.oldest->ord;
  const std::int64_t expired = delivered >= w.oldest->seq ? w.position_after(q, delivered).first - w.oldest->ord : 0;
  for (auto& [name, cursor] : w.cursors) {
    if (cursor.acked_seq >= upto) continue;
    const std::int64_t lost = after.first - w.position_after(q, cursor.acked_seq).first;
    if (lost <= 0) continue;
    cursor.lost_by_eviction += static_cast<std::uint64_t>(lost);
    auto& ahead = cursor.evicted_ahead;
    if (ahead.records == 0) {  // later evictions keep this bound: it only errs towards "lost"
      ahead.sole_through = std::numeric_limits<std::uint64_t>::max();
      for (const auto& [other, c] : w.cursors) {
        if (other != name) ahead.sole_through = std::min(ahead.sole_through, c.acked_seq);
      }
    }
    ahead.through_seq = upto;
    ahead.records += static_cast<std::uint64_t>(lost);
    store_->upsert_cursor(CursorRow{name, cursor.acked_seq, cursor.lost_by_eviction, cursor.created_ns});
    cursor.stored_seq = cursor.acked_seq;
  }
  delete_records_through(w, upto);
  w.expired_total += static_cast<std::uint64_t>(expired);
  w.evicted_total += static_cast<std::uint64_t>(removed - expired);
  store_->set_meta("expired_total", static_cast<std::int64_t>(w.expired_total));
  store_->set_meta("evicted_total", static_cast<std::int64_t>(w.evicted_total));
  w.oldest = q.first_after(upto);
  if (!w.oldest) w.newest.reset();
  return true;
}

// ---------------------------------------------------------------- maintenance

// One transaction: the cursors acks moved since the last pass, and the
// oldest delivered records that retention no longer keeps (at most
// maintenance_chunk of them). Deleting in ranges at this cadence, instead of
// per ack, rewrites each page once for many records.
std::uint64_t Buffer::Impl::run_maintenance() {
  std::lock_guard lock(state_mu_);
  maintenance_wanted_ = false;
  if (!store_) return 0;
  const std::uint64_t delivered = state_.delivered_through();
  auto& q = store_->queries();
  std::uint64_t upto = 0;
  try {
    if (state_.oldest && delivered >= state_.oldest->seq) {
      const std::int64_t now = clock_->wall_ns();
      const std::int64_t keep_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.retention_time).count();
      const std::int64_t delivered_end = state_.position_after(q, delivered).second;
      std::size_t visited = 0;
      q.scan_prefix(delivered, [&](const RowPos& row) {
        if (visited++ >= opts_.maintenance_chunk) return false;
        // A record stamped in the future (clock stepped back) has no
        // meaningful age; it expires rather than pinning everything behind it.
        const bool too_old = keep_ns == 0 || row.ingest_ns <= now - keep_ns || row.ingest_ns > now;
        const bool too_many_bytes =
            opts_.retention_bytes > 0 && static_cast<std::uint64_t>(delivered_end - row.off) > opts_.retention_bytes;
        if (!too_old && !too_many_bytes) return false;
        upto = row.seq;
        return true;
      });
    }
    if (upto == 0 && !cursors_unstored(state_)) return 0;
    Committed w = state_;
    std::int64_t removed = 0;
    store_->begin();
    store_cursors(w);
    if (upto > 0) {
      removed = w.position_after(q, upto).first - w.oldest->ord;
      delete_records_through(w, upto);
      w.expired_total += static_cast<std::uint64_t>(removed);
      store_->set_meta("expired_total", static_cast<std::int64_t>(w.expired_total));
    }
    store_->commit();
    if (upto > 0) {
      w.oldest = q.first_after(upto);
      if (!w.oldest) w.newest.reset();
    }
    state_ = std::move(w);
    if (upto > 0) forget_targets_before(upto + 1);
    if (chunk_deletable(state_)) maintenance_wanted_ = true;  // a backlog just delivered: next chunk soon
    return static_cast<std::uint64_t>(removed);
  } catch (const sql::SqliteError& e) {
    db_->rollback_quietly();
    log_(LogLevel::kWarning, std::string("maintenance pass failed (will retry): ") + e.what());
    return 0;
  }
}

// Without retention, a full chunk of delivered records waits for deletion
// (with retention, records stay by design and the interval paces the passes).
bool Buffer::Impl::chunk_deletable(const Committed& w) const {
  return opts_.maintenance_after_records > 0 && !keeps_delivered() &&
         delivered_waiting(w) > opts_.maintenance_after_records;
}

bool Buffer::Impl::cursors_unstored(const Committed& w) const {
  for (const auto& [name, c] : w.cursors) {
    if (c.stored_seq != c.acked_seq) return true;
  }
  return false;
}

// Inside a transaction on `w`: writes the cursors whose acks are not in the
// file yet.
void Buffer::Impl::store_cursors(Committed& w) {
  for (auto& [name, c] : w.cursors) {
    if (c.stored_seq == c.acked_seq) continue;
    store_->upsert_cursor(CursorRow{name, c.acked_seq, c.lost_by_eviction, c.created_ns});
    c.stored_seq = c.acked_seq;
  }
}

// Inside a transaction on `w`: deletes records through `upto`, first writing
// the counters that appends leave to the newest row (it may be deleted).
void Buffer::Impl::delete_records_through(Committed& w, std::uint64_t upto) {
  store_->set_meta("next_seq", static_cast<std::int64_t>(w.next_seq));
  store_->set_meta("next_ord", w.next_ord);
  store_->set_meta("next_off", w.next_off);
  store_->delete_through(upto);
  recent_.forget_through(upto);  // also if the transaction rolls back: memory then holds less, never more
}

// ---------------------------------------------------------------- cursors

template <typename Fn>
Status Buffer::Impl::write_transaction(const char* what, Fn&& fn) {
  try {
    store_->begin();
    fn();
    store_->commit();
    return Status::kOk;
  } catch (const sql::SqliteError& e) {
    db_->rollback_quietly();
    log_(LogLevel::kError, std::string(what) + " failed: " + e.what());
    return status_of(e);
  }
}

Status Buffer::Impl::ensure_sink(std::string_view sink, StartPosition start) {
  if (sink.empty()) return Status::kInvalidArgument;
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  if (state_.cursors.count(sink)) return Status::kOk;
  Cursor c;
  c.created_ns = clock_->wall_ns();
  c.acked_seq = start == StartPosition::kEarliest && state_.oldest ? state_.oldest->seq - 1 : state_.next_seq - 1;
  c.stored_seq = c.acked_seq;
  const Status st = write_transaction("create sink cursor", [&] {
    store_->upsert_cursor(CursorRow{std::string(sink), c.acked_seq, 0, c.created_ns});
  });
  if (st == Status::kOk) state_.cursors.emplace(std::string(sink), c);
  return st;
}

Status Buffer::Impl::remove_sink(std::string_view sink) {
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  auto it = state_.cursors.find(sink);
  if (it == state_.cursors.end()) return Status::kNotFound;
  const Status st = write_transaction("remove sink cursor", [&] {
    store_->delete_cursor(sink);
    store_->put_state(StateChange{held_key(sink), std::nullopt});
  });
  if (st == Status::kOk) state_.cursors.erase(it);
  return st;
}

Status Buffer::Impl::set_sink_held(std::string_view sink, bool held) {
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  const StateChange change{held_key(sink), held ? std::optional<std::string>("1") : std::nullopt};
  return write_transaction("hold sink", [&] { store_->put_state(change); });
}

Status Buffer::Impl::acknowledge_evictions() {
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  const std::int64_t now = clock_->wall_ns();
  const Status st = write_transaction("acknowledge evictions", [&] {
    store_->set_meta("evicted_acknowledged", static_cast<std::int64_t>(state_.evicted_total));
    store_->set_meta("evicted_acknowledged_ns", now);
  });
  if (st == Status::kOk) {
    state_.evicted_acknowledged = state_.evicted_total;
    state_.evicted_acknowledged_ns = now;
  }
  return st;
}

std::vector<std::string> Buffer::Impl::sinks() const {
  std::lock_guard lock(state_mu_);
  std::vector<std::string> out;
  for (const auto& [name, c] : state_.cursors) out.push_back(name);
  return out;
}

std::optional<std::uint64_t> Buffer::Impl::acked_seq(std::string_view sink) const {
  std::lock_guard lock(state_mu_);
  auto it = state_.cursors.find(sink);
  if (it == state_.cursors.end()) return std::nullopt;
  return it->second.acked_seq;
}

bool Buffer::Impl::wait_for_records_after(std::uint64_t after_seq, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(new_records_mu_);
  new_records_cv_.wait_for(lock, timeout, [&] { return closed_.load() || last_committed_seq_.load() > after_seq; });
  return last_committed_seq_.load() > after_seq;
}

ReadResult Buffer::Impl::read_after(std::uint64_t after, std::size_t max_records, std::size_t max_bytes) const {
  ReadResult out;
  try {
    if (auto recent = recent_.read_after(after, max_records, max_bytes)) {
      out.records = std::move(*recent);
      read_from_memory_total_ += out.records.size();
    } else {
      auto reader = readers_.acquire();
      out.records = reader->queries.read_after(after, max_records, max_bytes);
      read_from_file_total_ += out.records.size();
    }
    mark_targets(out.records);
  } catch (const sql::SqliteError& e) {
    out.status = status_of(e);
    out.error = e.what();
  }
  return out;
}

Status Buffer::Impl::ack(std::string_view sink, std::uint64_t seq, std::span<const Record> delivered) {
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  auto it = state_.cursors.find(sink);
  if (it == state_.cursors.end()) return Status::kNotFound;
  Cursor& c = it->second;
  if (seq <= c.acked_seq) return Status::kOk;
  if (seq >= state_.next_seq) return Status::kInvalidArgument;

  // Evicted records this batch carried were delivered, not lost. Those no
  // other sink waited for also leave evicted_total (they count as expired).
  const EvictedAhead& ahead = c.evicted_ahead;
  std::uint64_t credit = 0;
  std::uint64_t sole_credit = 0;
  if (ahead.records > 0) {
    for (const Record& r : delivered) {
      if (r.seq <= c.acked_seq || r.seq > ahead.through_seq) continue;
      ++credit;
      if (r.seq <= ahead.sole_through) ++sole_credit;
    }
    credit = std::min(credit, ahead.records);
    sole_credit = std::min(sole_credit, credit);
  }
  const std::uint64_t lost = c.lost_by_eviction - std::min(credit, c.lost_by_eviction);
  const std::uint64_t evicted = state_.evicted_total - std::min(sole_credit, state_.evicted_total);
  const std::uint64_t expired = state_.expired_total + (state_.evicted_total - evicted);
  if (lost != c.lost_by_eviction || evicted != state_.evicted_total) {
    // Loss accounting changed: written at once, with the cursor.
    const Status st = write_transaction("ack", [&] {
      store_->upsert_cursor(CursorRow{it->first, seq, lost, c.created_ns});
      if (evicted != state_.evicted_total) {
        store_->set_meta("evicted_total", static_cast<std::int64_t>(evicted));
        store_->set_meta("expired_total", static_cast<std::int64_t>(expired));
      }
    });
    if (st != Status::kOk) return st;
    c.stored_seq = seq;
  }
  c.acked_seq = seq;
  if (!maintenance_wanted_ && chunk_deletable(state_)) {
    maintenance_wanted_ = true;
    { std::lock_guard wake(queue_mu_); }  // the writer is waiting, or will see the flag
    work_cv_.notify_one();
  }
  c.lost_by_eviction = lost;
  state_.evicted_total = evicted;
  state_.expired_total = expired;
  // Past the newest evicted record, what was not delivered is lost for good.
  if (seq >= c.evicted_ahead.through_seq) {
    c.evicted_ahead = {};
  } else {
    c.evicted_ahead.records -= credit;
  }
  return Status::kOk;
}

RewindResult Buffer::Impl::rewind_to_seq(std::string_view sink, std::uint64_t seq) {
  RewindResult out;
  std::lock_guard lock(state_mu_);
  if (!store_) return RewindResult{Status::kClosed, 0, false, "buffer is closed"};
  auto it = state_.cursors.find(sink);
  if (it == state_.cursors.end()) return RewindResult{Status::kNotFound, 0, false, "no such sink"};
  if (seq > state_.next_seq) {
    return RewindResult{Status::kInvalidArgument, it->second.acked_seq, false,
                        "sequence " + std::to_string(seq) + " is beyond the next sequence " +
                            std::to_string(state_.next_seq)};
  }
  const std::uint64_t earliest = state_.oldest ? state_.oldest->seq - 1 : state_.next_seq - 1;
  std::uint64_t target = seq > 0 ? seq - 1 : 0;
  out.clamped = target < earliest;
  target = std::max(target, earliest);
  Cursor& c = it->second;
  out.status = write_transaction("rewind", [&] {
    store_->upsert_cursor(CursorRow{it->first, target, c.lost_by_eviction, c.created_ns});
  });
  if (out.status == Status::kOk) {
    c.acked_seq = target;
    c.stored_seq = target;
    c.evicted_ahead = {};  // what was in flight is sent again from the new position
  }
  out.acked_seq = c.acked_seq;
  return out;
}

RewindResult Buffer::Impl::rewind_to_time(std::string_view sink, std::int64_t ingest_ns) {
  // The scan runs on a reader, outside the state lock, so appends go on.
  std::optional<std::uint64_t> seq;
  try {
    auto reader = readers_.acquire();
    seq = reader->queries.first_seq_at_or_after_time(ingest_ns);
  } catch (const sql::SqliteError& e) {
    return RewindResult{status_of(e), 0, false, e.what()};
  }
  if (!seq) {
    std::lock_guard lock(state_mu_);
    seq = state_.next_seq;  // nothing that recent: wait for new records
  }
  return rewind_to_seq(sink, *seq);
}

// ---------------------------------------------------------------- dead letters

Status Buffer::Impl::add_dead_letter(std::string_view sink, std::optional<std::uint64_t> seq,
                                     const NewRecord& record, std::string_view reason) {
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  const std::int64_t now = clock_->wall_ns();
  const std::uint64_t total = state_.dead_lettered_total + 1;
  const Status st = write_transaction("dead letter", [&] {
    store_->insert_dead_letter(sink, seq, reason, now, record.ingest_ns != 0 ? record.ingest_ns : now, record);
    store_->set_meta("dead_lettered_total", static_cast<std::int64_t>(total));
  });
  if (st == Status::kOk) {
    state_.dead_lettered_total = total;
    dead_letter_rows_ += 1;
  }
  return st;
}

std::vector<std::pair<std::string, std::string>> Buffer::Impl::source_state(std::string_view prefix) const {
  try {
    auto reader = readers_.acquire();
    return load_source_state(reader->db, prefix);
  } catch (const sql::SqliteError& e) {
    log_(LogLevel::kError, std::string("reading the sources' state failed: ") + e.what());
    return {};
  }
}

std::vector<DeadLetter> Buffer::Impl::dead_letters(std::size_t limit, std::int64_t after_id) const {
  try {
    auto reader = readers_.acquire();
    return load_dead_letters(reader->db, limit, after_id);
  } catch (const sql::SqliteError& e) {
    log_(LogLevel::kError, std::string("reading dead letters failed: ") + e.what());
    return {};
  }
}

void Buffer::Impl::mark_targets(std::vector<Record>& records) const {
  if (!have_targets_ || records.empty()) return;
  std::lock_guard lock(targets_mu_);
  for (auto it = targets_.lower_bound(records.front().seq); it != targets_.end() && it->first <= records.back().seq;
       ++it) {
    const auto pos = std::lower_bound(records.begin(), records.end(), it->first,
                                      [](const Record& r, std::uint64_t seq) { return r.seq < seq; });
    if (pos != records.end() && pos->seq == it->first) pos->only_sink = it->second;
  }
}

void Buffer::Impl::forget_targets_before(std::uint64_t oldest_seq) {
  if (!have_targets_) return;
  std::lock_guard lock(targets_mu_);
  targets_.erase(targets_.begin(), targets_.lower_bound(oldest_seq));
  have_targets_ = !targets_.empty();
}

std::optional<DeadLetter> Buffer::Impl::dead_letter(std::int64_t id) const {
  try {
    auto reader = readers_.acquire();
    return load_dead_letter(reader->db, id);
  } catch (const sql::SqliteError& e) {
    log_(LogLevel::kError, std::string("reading a dead letter failed: ") + e.what());
    return std::nullopt;
  }
}

DeadLetterChange Buffer::Impl::clear_dead_letters(const DeadLetterSelection& which) {
  std::lock_guard lock(state_mu_);
  DeadLetterChange out;
  if (!store_) return DeadLetterChange{Status::kClosed, 0, 0, "buffer is closed"};
  std::uint64_t removed = 0;
  out.status = write_transaction("clear dead letters", [&] {
    for (const auto id : select_dead_letters(*db_, which)) removed += store_->delete_dead_letter(id) ? 1 : 0;
  });
  if (out.status == Status::kOk) {
    out.count = removed;
    dead_letter_rows_ -= std::min(dead_letter_rows_, removed);
  } else {
    out.error = std::string("clearing dead letters failed: ") + to_string(out.status);
  }
  return out;
}

DeadLetterChange Buffer::Impl::replay_dead_letters(const DeadLetterSelection& which, std::string_view to_sink) {
  std::lock_guard replaying(replay_mu_);
  DeadLetterChange out;
  std::vector<std::int64_t> ids;
  try {
    auto reader = readers_.acquire();
    ids = select_dead_letters(reader->db, which);
  } catch (const sql::SqliteError& e) {
    return DeadLetterChange{status_of(e), 0, 0, std::string("reading dead letters failed: ") + e.what()};
  }
  // In chunks: each is one transaction (records in, dead letters out), and
  // a large replay does not hold every payload in memory at once.
  constexpr std::size_t kChunk = 500;
  for (std::size_t at = 0; at < ids.size(); at += kChunk) {
    std::vector<NewRecord> records;
    std::vector<std::int64_t> chunk;
    {
      auto reader = readers_.acquire();
      for (std::size_t i = at; i < std::min(ids.size(), at + kChunk); ++i) {
        auto letter = load_dead_letter(reader->db, ids[i]);
        if (!letter) continue;  // cleared meanwhile
        NewRecord r = std::move(letter->record);
        r.only_sink = to_sink.empty() ? letter->sink : std::string(to_sink);
        records.push_back(std::move(r));
        chunk.push_back(ids[i]);
      }
    }
    if (records.empty()) continue;
    std::promise<AppendOutcome> committed;
    auto done = committed.get_future();
    const auto n = records.size();
    append(std::move(records), {}, [&committed](const AppendOutcome& o) { committed.set_value(o); }, std::move(chunk));
    const auto outcome = done.get();
    if (outcome.status != Status::kOk) {
      out.status = outcome.status;
      out.error = "replaying dead letters stopped after " + std::to_string(out.count) + ": " +
                  (outcome.error.empty() ? std::string(to_string(outcome.status)) : outcome.error);
      return out;
    }
    if (out.first_seq == 0) out.first_seq = outcome.first_seq;
    out.count += n;
  }
  return out;
}

Status Buffer::Impl::clear_dead_letters() {
  std::lock_guard lock(state_mu_);
  if (!store_) return Status::kClosed;
  const Status st = write_transaction("clear dead letters", [&] { db_->exec("DELETE FROM dead_letters"); });
  if (st == Status::kOk) dead_letter_rows_ = 0;
  return st;
}

// ---------------------------------------------------------------- figures

void Buffer::Impl::apply_limits(const BufferOptions& limits) {
  std::lock_guard lock(state_mu_);
  copy_limits(limits, opts_);
}

BufferStats Buffer::Impl::stats() const {
  BufferStats s;
  Committed snapshot;
  {
    std::lock_guard lock(state_mu_);
    snapshot = state_;
    s.appended_total = appended_total_;
    s.rejected_total = rejected_total_;
    s.disk_full_total = disk_full_total_;
    s.io_error_total = io_error_total_;
    s.dead_letters = dead_letter_rows_;
    s.commits_total = commits_total_;
    s.commit_latency_last_us = latency_last_us_;
    s.commit_latency_max_us = latency_max_us_;
    s.commit_latency_sum_us = latency_sum_us_;
    s.disk_available_bytes = disk_available_;
    s.disk_reserve_reached = reserve_reached_;
    // The limits change at a reload, under this lock.
    s.max_bytes = opts_.max_bytes;
    s.max_records = opts_.max_records;
    s.full_policy = opts_.full_policy;
    s.disk_reserve_bytes = opts_.disk_reserve_bytes;
    if (!s.disk_available_bytes) {  // no commit yet (e.g. a read-only inspection)
      s.disk_available_bytes = disk_->available_bytes(dir_);
    }
  }
  {
    std::lock_guard lock(queue_mu_);
    s.queued_records = queued_records_;
  }
  s.wal_syncs_total = wal_syncs_total_.load();
  s.read_from_memory_total = read_from_memory_total_.load();
  s.read_from_file_total = read_from_file_total_.load();
  s.records = snapshot.records();
  s.bytes = snapshot.bytes();
  s.next_seq = snapshot.next_seq;
  if (snapshot.oldest) {
    s.oldest_seq = snapshot.oldest->seq;
    s.oldest_ingest_ns = snapshot.oldest->ingest_ns;
  }
  if (snapshot.newest) {
    s.newest_seq = snapshot.newest->seq;
    s.newest_ingest_ns = snapshot.newest->ingest_ns;
  }
  s.evicted_total = snapshot.evicted_total;
  s.evicted_at_open = evicted_at_open_;
  s.evicted_acknowledged = snapshot.evicted_acknowledged;
  s.evicted_acknowledged_ns = snapshot.evicted_acknowledged_ns;
  s.expired_total = snapshot.expired_total;
  s.dead_lettered_total = snapshot.dead_lettered_total;
  s.file_bytes = bytes_on_disk(opts_.path) + bytes_on_disk(std::filesystem::path(opts_.path).concat("-wal"));

  for (const auto& [name, c] : snapshot.cursors) {
    SinkStats sink;
    sink.name = name;
    sink.acked_seq = c.acked_seq;
    sink.lost_by_eviction = c.lost_by_eviction;
    s.sinks.push_back(std::move(sink));
  }
  try {
    auto reader = readers_.acquire();
    for (auto& sink : s.sinks) {
      auto first = reader->queries.first_after(sink.acked_seq);
      if (!first || first->seq >= snapshot.next_seq) continue;  // caught up
      sink.lag_records = static_cast<std::uint64_t>(std::max<std::int64_t>(0, snapshot.next_ord - first->ord));
      sink.lag_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, snapshot.next_off - first->off));
      sink.oldest_undelivered_ingest_ns = first->ingest_ns;
    }
  } catch (const sql::SqliteError& e) {
    log_(LogLevel::kWarning, std::string("stats: lag lookup failed: ") + e.what());
  }
  return s;
}

IntegrityReport Buffer::Impl::verify(IntegrityCheck depth) const {
  IntegrityReport report;
  if (depth == IntegrityCheck::kNone) {
    report.ok = true;
    report.detail = "not checked";
    return report;
  }
  try {
    auto reader = readers_.acquire();
    sql::Stmt stmt(reader->db, depth == IntegrityCheck::kFull ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)",
                   false);
    while (stmt.step()) {
      if (!report.detail.empty()) report.detail += "; ";
      report.detail += stmt.column_text(0);
    }
    report.ok = report.detail == "ok";
  } catch (const sql::SqliteError& e) {
    report.ok = false;
    report.detail = e.what();
  }
  return report;
}

// ---------------------------------------------------------------- Buffer

std::unique_ptr<Buffer> Buffer::open(BufferOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->open();
  return std::unique_ptr<Buffer>(new Buffer(std::move(impl)));
}

Buffer::Buffer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Buffer::~Buffer() = default;

const OpenReport& Buffer::open_report() const { return impl_->report_; }
const BufferOptions& Buffer::options() const { return impl_->opts_; }
Clock& Buffer::clock() const { return impl_->clock(); }

void Buffer::append(std::vector<NewRecord> records, CommitCallback on_commit) {
  impl_->append(std::move(records), {}, std::move(on_commit));
}

void Buffer::append(std::vector<NewRecord> records, std::vector<StateChange> state, CommitCallback on_commit) {
  impl_->append(std::move(records), std::move(state), std::move(on_commit));
}

std::vector<std::pair<std::string, std::string>> Buffer::source_state(std::string_view prefix) const {
  return impl_->source_state(prefix);
}

AppendOutcome Buffer::append_wait(std::vector<NewRecord> records) {
  if (impl_->on_writer_thread()) {
    return AppendOutcome{Status::kInvalidArgument, 0, 0, "append_wait called from a commit callback"};
  }
  std::promise<AppendOutcome> done;
  auto result = done.get_future();
  impl_->append(std::move(records), {}, [&done](const AppendOutcome& o) { done.set_value(o); });
  return result.get();
}

void Buffer::flush() {
  if (!impl_->on_writer_thread()) append_wait({});
}

Status Buffer::ensure_sink(std::string_view sink, StartPosition start) { return impl_->ensure_sink(sink, start); }
Status Buffer::remove_sink(std::string_view sink) { return impl_->remove_sink(sink); }
Status Buffer::acknowledge_evictions() { return impl_->acknowledge_evictions(); }
std::vector<std::string> Buffer::sinks() const { return impl_->sinks(); }
std::optional<std::uint64_t> Buffer::acked_seq(std::string_view sink) const { return impl_->acked_seq(sink); }

ReadResult Buffer::read(std::string_view sink, std::size_t max_records, std::size_t max_bytes) const {
  auto acked = impl_->acked_seq(sink);
  if (!acked) return ReadResult{Status::kNotFound, {}, "no such sink: " + std::string(sink)};
  return impl_->read_after(*acked, max_records, max_bytes);
}

ReadResult Buffer::read_after(std::uint64_t after_seq, std::size_t max_records, std::size_t max_bytes) const {
  return impl_->read_after(after_seq, max_records, max_bytes);
}

Status Buffer::ack(std::string_view sink, std::uint64_t seq) { return impl_->ack(sink, seq, {}); }
Status Buffer::ack(std::string_view sink, std::uint64_t seq, std::span<const Record> delivered) {
  return impl_->ack(sink, seq, delivered);
}

bool Buffer::wait_for_records_after(std::uint64_t after_seq, std::chrono::milliseconds timeout) const {
  return impl_->wait_for_records_after(after_seq, timeout);
}

RewindResult Buffer::rewind_to_seq(std::string_view sink, std::uint64_t seq) {
  return impl_->rewind_to_seq(sink, seq);
}

RewindResult Buffer::rewind_to_time(std::string_view sink, std::int64_t ingest_ns) {
  return impl_->rewind_to_time(sink, ingest_ns);
}

Status Buffer::add_dead_letter(std::string_view sink, std::optional<std::uint64_t> seq, const NewRecord& record,
                               std::string_view reason) {
  return impl_->add_dead_letter(sink, seq, record, reason);
}

std::vector<DeadLetter> Buffer::dead_letters(std::size_t limit, std::int64_t after_id) const {
  return impl_->dead_letters(limit, after_id);
}

Status Buffer::clear_dead_letters() { return impl_->clear_dead_letters(); }
std::optional<DeadLetter> Buffer::dead_letter(std::int64_t id) const { return impl_->dead_letter(id); }
Status Buffer::set_sink_held(std::string_view sink, bool held) { return impl_->set_sink_held(sink, held); }
bool Buffer::sink_held(std::string_view sink) const {
  const auto key = held_key(sink);
  const auto found = impl_->source_state(key);
  return !found.empty() && found.front().first == key;
}
void Buffer::apply_limits(const BufferOptions& limits) { impl_->apply_limits(limits); }
DeadLetterChange Buffer::clear_dead_letters(const DeadLetterSelection& which) {
  return impl_->clear_dead_letters(which);
}
DeadLetterChange Buffer::replay_dead_letters(const DeadLetterSelection& which, std::string_view to_sink) {
  return impl_->replay_dead_letters(which, to_sink);
}
BufferStats Buffer::stats() const { return impl_->stats(); }
IntegrityReport Buffer::verify(IntegrityCheck depth) const { return impl_->verify(depth); }
std::uint64_t Buffer::run_maintenance() { return impl_->run_maintenance(); }

}  // namespace tidegate::buffer
