#include "recovery.h"

#include "page_scan.h"

#include <ctime>
#include <string>

namespace tidegate::buffer::recovery {
namespace {

std::string utc_stamp(std::int64_t now_ns) {
  std::time_t secs = static_cast<std::time_t>(now_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::filesystem::path with_suffix(const std::filesystem::path& p, const char* suffix) {
  return std::filesystem::path(p).concat(suffix);
}

// Appends one salvaged record to `fresh`, after those before it.
void keep(Store& fresh, std::uint64_t seq, const NewRecord& r, Salvage& out) {
  fresh.insert(seq, out.next_ord, out.next_off, r.ingest_ns, r);
  out.next_ord += 1;
  out.next_off += static_cast<std::int64_t>(accounted_size(r));
  out.records += 1;
}

// Copies records of `src` with seq >= from, in order, until the end or the
// first unreadable row (then *damaged is set). Returns the last seq copied
// (or from - 1).
std::uint64_t copy_forward(sql::Db& src, std::uint64_t from, Store& fresh, Salvage& out,
                           const LogFn& log, bool* damaged = nullptr) {
  std::uint64_t last = from - 1;
  try {
    sql::Stmt stmt(src, "SELECT seq, ingest_ns, clock_synced, source, partition_key, topic, "
                        "payload, device_ts_ns, content_type FROM records WHERE seq >= ?1 ORDER BY seq",
                   false);
    stmt.bind(1, from);
    while (stmt.step()) {
      Record r;
      r.seq = static_cast<std::uint64_t>(stmt.column_int(0));
      read_record_columns(stmt, 1, r);
      keep(fresh, r.seq, r, out);
      last = r.seq;
    }
  } catch (const sql::SqliteError& e) {
    if (e.disk_full()) throw;  // our side failing is not damage in the source
    if (damaged) *damaged = true;
    log(LogLevel::kWarning, "salvage: records after seq " + std::to_string(last) +
                                " unreadable reading forward: " + e.what());
  }
  return last;
}

// Walks backward from the newest record and returns the lowest seq above
// `floor` that is still readable without a gap, or 0 if none.
std::uint64_t readable_tail_start(sql::Db& src, std::uint64_t floor, const LogFn& log) {
  std::uint64_t lowest = 0;
  try {
    sql::Stmt stmt(src, "SELECT seq FROM records WHERE seq > ?1 ORDER BY seq DESC", false);
    stmt.bind(1, floor);
    while (stmt.step()) lowest = static_cast<std::uint64_t>(stmt.column_int(0));
  } catch (const sql::SqliteError& e) {
    log(LogLevel::kWarning, "salvage: reading backward stopped above seq " +
                                std::to_string(lowest) + ": " + e.what());
  }
  return lowest;
}

template <typename Fn>
void best_effort(const char* what, const LogFn& log, Fn&& fn) {
  try {
    fn();
  } catch (const sql::SqliteError& e) {
    if (e.disk_full()) throw;
    log(LogLevel::kWarning, std::string("salvage: ") + what + " unreadable: " + e.what());
  }
}

}  // namespace

std::filesystem::path move_aside(const std::filesystem::path& db, std::int64_t now_ns) {
  const std::string stamp = ".corrupt-" + utc_stamp(now_ns);
  std::filesystem::path target = with_suffix(db, stamp.c_str());
  for (int n = 1; std::filesystem::exists(target); ++n) {
    target = with_suffix(db, (stamp + "-" + std::to_string(n)).c_str());
  }
  // The WAL holds committed transactions: it must travel with its database.
  for (const char* companion : {"-wal", "-shm"}) {
    const auto from = with_suffix(db, companion);
    if (std::filesystem::exists(from)) std::filesystem::rename(from, with_suffix(target, companion));
  }
  if (std::filesystem::exists(db)) std::filesystem::rename(db, target);
  return target;
}

Salvage salvage(const std::filesystem::path& aside, Store& fresh, const LogFn& log) {
  Salvage out;
  sql::Db src;
  try {
    src = sql::Db(aside, SQLITE_OPEN_READWRITE);
    // Keep the damaged file as it was found: no checkpoint folds the WAL in.
    sqlite3_db_config(src.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    src.exec("PRAGMA query_only = 1");
    sqlite3_busy_timeout(src.get(), 1000);
  } catch (const sql::SqliteError& e) {
    log(LogLevel::kWarning, std::string("salvage: cannot open the moved-aside file: ") + e.what());
    return out;
  }

  best_effort("meta", log, [&] {
    sql::Stmt stmt(src, "SELECT value FROM meta WHERE key = 'next_seq'", false);
    if (stmt.step()) out.next_seq = static_cast<std::uint64_t>(stmt.column_int(0));
  });

  fresh.begin();
  try {
    bool damaged = false;
    const std::uint64_t head_end = copy_forward(src, 1, fresh, out, log, &damaged);
    const std::uint64_t tail_start = damaged ? readable_tail_start(src, head_end, log) : 0;
    if (damaged) {
      // Between what SQLite could still reach from both ends, rows may sit
      // in leaf pages whose interior pages are gone (a file cut short):
      // read the pages themselves.
      const auto before = tail_start != 0 ? tail_start : ~std::uint64_t{0};
      const auto found = page_scan::find_records(aside, head_end, before);
      page_scan::read_records(aside, found, [&](std::uint64_t seq, const NewRecord& r) { keep(fresh, seq, r, out); });
      log(LogLevel::kWarning, "salvage: " + std::to_string(found.size()) + " records after seq " +
                                  std::to_string(head_end) + " found in leaf pages SQLite could no longer reach" +
                                  (tail_start != 0 ? " (up to seq " + std::to_string(tail_start - 1) + ")" : ""));
    }
    if (tail_start != 0) copy_forward(src, tail_start, fresh, out, log);
    if (auto newest = fresh.queries().newest()) out.next_seq = std::max(out.next_seq, newest->seq + 1);

    best_effort("cursors", log, [&] {
      sql::Stmt stmt(src, "SELECT sink, acked_seq, lost_by_eviction, created_ns FROM cursors", false);
      while (stmt.step()) {
        fresh.upsert_cursor(CursorRow{stmt.column_text(0),
                                      static_cast<std::uint64_t>(stmt.column_int(1)),
                                      static_cast<std::uint64_t>(stmt.column_int(2)),
                                      stmt.column_int(3)});
        out.cursors += 1;
      }
    });
    best_effort("dead letters", log, [&] {
      auto letters = load_dead_letters(src, static_cast<std::size_t>(-1) >> 1, 0);
      for (const auto& d : letters) {
        fresh.insert_dead_letter(d.sink, d.seq, d.reason, d.failed_ns, d.record.ingest_ns, d.record);
        out.dead_letters += 1;
      }
    });
    fresh.commit();
  } catch (...) {
    fresh.db().rollback_quietly();
    throw;
  }
  return out;
}

}  // namespace tidegate::buffer::recovery
