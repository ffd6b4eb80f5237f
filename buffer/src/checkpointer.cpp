#include "checkpointer.h"

#include <string>

#include "schema.h"

namespace tidegate::buffer {

Checkpointer::Checkpointer(sql::Db& writer, const std::filesystem::path& path, bool full_sync,
                           std::uint32_t threshold_pages, LogFn log)
    : own_(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX), threshold_pages_(threshold_pages), log_(std::move(log)) {
  schema::configure_connection(own_);
  // The checkpoint syncs the WAL before it copies and the file after, as the
  // writer's own setting asks.
  own_.exec(full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  sqlite3_wal_hook(writer.get(), &Checkpointer::on_commit, this);
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wanted_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Runs in the committing thread, after the commit, with the WAL's size in
// pages. What it returns is the commit's result: a failed checkpoint must not
// turn a durable commit into an error.
int Checkpointer::on_commit(void* self_ptr, sqlite3* db, const char* schema, int wal_pages) {
  auto& self = *static_cast<Checkpointer*>(self_ptr);
  const auto pages = static_cast<std::uint32_t>(wal_pages);
  if (pages >= 4 * self.threshold_pages_) {
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, &copied);
    if (rc == SQLITE_OK && copied > 0) {
      self.by_writer_total_ += 1;
      self.checkpoints_total_ += 1;
    }
    self.report(rc, "the writer's");
  } else if (pages >= self.threshold_pages_) {
    {
      std::lock_guard lock(self.mu_);
      self.wanted_ = true;
    }
    self.wanted_cv_.notify_one();
  }
  return SQLITE_OK;
}

void Checkpointer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wanted_cv_.wait(lock, [&] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    // Counted when it copied pages: a connection that never opened the WAL
    // "succeeds" at copying nothing.
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(own_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, &copied);
    if (rc == SQLITE_OK && copied > 0) checkpoints_total_ += 1;
    report(rc, "the background");
    lock.lock();
  }
}

// SQLITE_BUSY: the other side is checkpointing; the next commit asks again.
void Checkpointer::report(int rc, const char* who) {
  std::lock_guard lock(failure_mu_);
  if (rc == SQLITE_BUSY) return;
  if (rc != SQLITE_OK && rc != last_failure_) {
    log_(LogLevel::kWarning, std::string(who) + " WAL checkpoint failed: " + sqlite3_errstr(rc) +
                                 " (the WAL grows until one succeeds)");
  } else if (rc == SQLITE_OK && last_failure_ != SQLITE_OK) {
    log_(LogLevel::kInfo, std::string(who) + " WAL checkpoint succeeded again");
  }
  last_failure_ = rc;
}

}  // namespace tidegate::buffer
