// WAL checkpoints beside the writer. SQLite's automatic checkpoint runs in
// the connection that commits, so every few MiB one commit also copies the
// WAL into the database file and syncs both, and the readings waiting on that
// commit wait for the copy. Here a thread with its own connection does the
// copy (a PASSIVE checkpoint: it never blocks the writer), woken by the
// writer's WAL hook once the WAL holds `threshold_pages`.
//
// A PASSIVE checkpoint cannot reset the WAL while the writer keeps appending
// to it, so the WAL could grow under a steady load; once it holds four
// thresholds the writer checkpoints itself between two commits, as SQLite's
// automatic checkpoint would, which bounds it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

#include "sqlite.h"
#include "tidegate/buffer/environment.h"

namespace tidegate::buffer {

class Checkpointer {
 public:
  // Opens its connection to the database at `path` (already in WAL mode)
  // and installs the WAL hook on `writer`, replacing SQLite's automatic
  // checkpoint. `writer` must outlive this object or be closed first.
  Checkpointer(sql::Db& writer, const std::filesystem::path& path, bool full_sync, std::uint32_t threshold_pages,
               LogFn log);
  ~Checkpointer();  // stops the thread (a checkpoint under way completes)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  std::uint64_t checkpoints_total() const { return checkpoints_total_.load(); }
  std::uint64_t checkpoints_by_writer_total() const { return by_writer_total_.load(); }

 private:
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_pages);
  void run();
  void report(int rc, const char* who);

  sql::Db own_;
  const std::uint32_t threshold_pages_;
  LogFn log_;
  std::mutex mu_;
  std::condition_variable wanted_cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  std::mutex failure_mu_;  // report() runs on both threads
  int last_failure_ = SQLITE_OK;  // log a failure when it changes, not every time
  std::atomic<std::uint64_t> checkpoints_total_{0};
  std::atomic<std::uint64_t> by_writer_total_{0};
  std::thread thread_;
};

}  // namespace tidegate::buffer
