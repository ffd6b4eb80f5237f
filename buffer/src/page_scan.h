// Salvage without SQLite's b-trees: reads a damaged database file page by
// page and decodes the rows of the `records` table from its table-leaf
// pages (SQLite file format, sections 1.6 "B-tree pages" and 2.1 "Record
// format"). SQLite reaches a row only through the interior pages above it;
// when those are lost (a file cut short: the interior pages are often near
// its end) the leaves are still there, and this finds them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "tidegate/buffer/record.h"

namespace tidegate::buffer::page_scan {

// Where a row of `records` was found, for reading it again in seq order.
struct Found {
  std::uint64_t seq = 0;
  std::uint32_t page = 0;  // 1-based
  std::uint16_t cell = 0;
};

// Every readable row of `records` (11 columns of the record table's types)
// in the file's table-leaf pages with after < seq < before, one per seq
// (pages freed by SQLite may hold stale copies of a row), in seq order.
// Rows whose overflow chain is damaged are left out. Never throws for a
// damaged file; an unreadable file gives nothing.
std::vector<Found> find_records(const std::filesystem::path& db, std::uint64_t after, std::uint64_t before);

// Reads the rows found, in the order given, calling visit(seq, record).
void read_records(const std::filesystem::path& db, const std::vector<Found>& found,
                  const std::function<void(std::uint64_t, const NewRecord&)>& visit);

}  // namespace tidegate::buffer::page_scan
