// What happens to a database that cannot be opened or fails its integrity
// check: it is moved aside (never deleted), a fresh one takes its place, and
// whatever can still be read is copied over.
#pragma once

#include <cstdint>
#include <filesystem>

#include "store.h"
#include "tidegate/buffer/environment.h"

namespace tidegate::buffer::recovery {

// Renames the database and its -wal/-shm companions to
// "<db>.corrupt-<UTC timestamp>[-N]" and returns the new database path.
// Throws std::filesystem::filesystem_error if the rename fails.
std::filesystem::path move_aside(const std::filesystem::path& db, std::int64_t now_ns);

struct Salvage {
  std::uint64_t records = 0;
  std::uint64_t cursors = 0;
  std::uint64_t dead_letters = 0;
  std::uint64_t next_seq = 0;  // high-water mark found (0 if none readable)
  std::int64_t next_ord = 0;
  std::int64_t next_off = 0;
};

// Copies readable records (reading forward from the start and backward from
// the end, around damaged pages), cursors, dead letters and counters from the
// moved-aside file into `fresh`, which has an empty schema. Never throws for
// damage in `aside`; logs what it could not read.
Salvage salvage(const std::filesystem::path& aside, Store& fresh, const LogFn& log);

}  // namespace tidegate::buffer::recovery
