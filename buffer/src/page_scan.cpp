#include "page_scan.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>

namespace tidegate::buffer::page_scan {
namespace {

constexpr std::uint8_t kTableLeaf = 13;
constexpr std::size_t kRecordColumns = 11;  // the records table (schema.cpp)

std::uint32_t be(const std::uint8_t* p, int n) {
  std::uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// SQLite's varint (file format 1.6): big-endian, 7 bits a byte, the ninth
// byte all 8 bits. False if it runs past `end`.
bool varint(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t& v) {
  v = 0;
  for (int i = 0; i < 9; ++i) {
    if (p >= end) return false;
    const std::uint8_t b = *p++;
    if (i == 8) {
      v = (v << 8) | b;
      return true;
    }
    v = (v << 7) | (b & 0x7f);
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Bytes of a value of serial type t (2.1); nullopt for the reserved 10, 11.
std::optional<std::uint64_t> value_size(std::uint64_t t) {
  static constexpr std::uint8_t kFixed[] = {0, 1, 2, 3, 4, 6, 8, 8, 0, 0};
  if (t < 10) return kFixed[t];
  if (t < 12) return std::nullopt;
  return (t - 12) / 2;
}
bool is_int(std::uint64_t t) { return (t >= 1 && t <= 6) || t == 8 || t == 9; }
bool is_text(std::uint64_t t) { return t >= 13 && t % 2 == 1; }
bool is_blob(std::uint64_t t) { return t >= 12 && t % 2 == 0; }

std::int64_t int_value(std::uint64_t t, const std::uint8_t* p) {
  if (t == 8) return 0;
  if (t == 9) return 1;
  const auto n = static_cast<int>(*value_size(t));
  std::uint64_t v = (p[0] & 0x80) ? ~std::uint64_t{0} : 0;  // sign-extend
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return static_cast<std::int64_t>(v);
}

class DbFile {
 public:
  explicit DbFile(const std::filesystem::path& path) : in_(path, std::ios::binary) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    std::uint8_t header[100] = {};
    if (ec || !in_.read(reinterpret_cast<char*>(header), sizeof header)) return;
    // Header offsets 16 (page size; 1 means 65536) and 20 (reserved bytes).
    // A damaged header: assume the buffer's 4 KiB pages.
    std::uint32_t page_size = be(header + 16, 2);
    if (page_size == 1) page_size = 65536;
    if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1))) page_size = 4096;
    page_size_ = page_size;
    usable_ = page_size - (header[20] < 64 ? header[20] : 0);
    pages_ = static_cast<std::uint32_t>(std::min<std::uintmax_t>(size / page_size, 0xFFFFFFFFu));
  }
  std::uint32_t pages() const { return pages_; }
  std::uint32_t usable() const { return usable_; }

  // Page n (1-based), whole; false past the end of the file.
  bool read(std::uint32_t n, std::string& out) {
    if (n == 0 || n > pages_) return false;
    out.resize(page_size_);
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(n - 1) * page_size_);
    return static_cast<bool>(in_.read(out.data(), page_size_));
  }

  // The payload of cell `cell` of table-leaf page `page` (with its overflow
  // chain) and the row id; nullopt if any part is unreadable.
  std::optional<std::pair<std::uint64_t, std::string>> cell(std::uint32_t page, std::uint16_t cell) {
    std::string data;
    if (!read(page, data)) return std::nullopt;
    const auto* base = reinterpret_cast<const std::uint8_t*>(data.data());
    const std::uint32_t h = page == 1 ? 100 : 0;
    if (base[h] != kTableLeaf || cell >= be(base + h + 3, 2) || h + 8 + 2u * (cell + 1u) > usable_) return std::nullopt;
    const std::uint32_t at = be(base + h + 8 + 2u * cell, 2);
    if (at < h + 8 || at >= usable_) return std::nullopt;
    const std::uint8_t* p = base + at;
    const std::uint8_t* end = base + usable_;
    std::uint64_t size = 0, rowid = 0;
    if (!varint(p, end, size) || !varint(p, end, rowid) || size > (1u << 30)) return std::nullopt;
    // How much of the payload is on this page (1.6, "cell payload overflow").
    const std::uint64_t u = usable_, x = u - 35, m = ((u - 12) * 32 / 255) - 23;
    std::uint64_t local = size;
    if (size > x) {
      const std::uint64_t k = m + ((size - m) % (u - 4));
      local = k <= x ? k : m;
    }
    if (p + local > end || (size > local && p + local + 4 > end)) return std::nullopt;
    std::string payload(reinterpret_cast<const char*>(p), static_cast<std::size_t>(local));  // within the page
    std::uint32_t next = size > local ? be(p + local, 4) : 0;
    std::string overflow;
    while (payload.size() < size) {
      if (next == 0 || !read(next, overflow)) return std::nullopt;
      const auto* o = reinterpret_cast<const std::uint8_t*>(overflow.data());
      const std::uint64_t take = std::min<std::uint64_t>(u - 4, size - payload.size());
      payload.append(overflow.data() + 4, static_cast<std::size_t>(take));  // at most a page
      next = be(o, 4);
    }
    return std::make_pair(rowid, std::move(payload));
  }

 private:
  std::ifstream in_;
  std::uint32_t page_size_ = 4096;
  std::uint32_t usable_ = 4096;
  std::uint32_t pages_ = 0;
};

// The record's values if it has the records table's shape, else nullopt.
std::optional<NewRecord> decode(const std::string& payload) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  const auto* end = p + payload.size();
  const auto* start = p;
  std::uint64_t header_size = 0;
  if (!varint(p, end, header_size) || header_size > payload.size()) return std::nullopt;
  std::vector<std::uint64_t> types;
  while (p < start + header_size) {
    std::uint64_t t = 0;
    if (!varint(p, start + header_size, t)) return std::nullopt;
    types.push_back(t);
  }
  if (types.size() != kRecordColumns) return std::nullopt;
  // seq (the row id, stored NULL), ord, off, ingest_ns, clock_synced, source,
  // partition_key, topic, payload, device_ts_ns (NULL or integer), content_type.
  if (types[0] != 0 || !is_int(types[1]) || !is_int(types[2]) || !is_int(types[3]) || !is_int(types[4]) ||
      !is_text(types[5]) || !is_text(types[6]) || !is_text(types[7]) || !is_blob(types[8]) ||
      !(types[9] == 0 || is_int(types[9])) || !is_text(types[10])) {
    return std::nullopt;
  }
  std::uint64_t total = header_size;
  for (auto t : types) total += *value_size(t);
  if (total != payload.size()) return std::nullopt;  // the sizes must add up exactly
  std::vector<const std::uint8_t*> at;
  const std::uint8_t* v = start + header_size;
  for (auto t : types) {
    at.push_back(v);
    v += *value_size(t);
  }
  // Each size is within the payload (the sizes added up to its length).
  auto text = [&](int i) {
    return std::string(reinterpret_cast<const char*>(at[i]), static_cast<std::size_t>(*value_size(types[i])));
  };
  NewRecord r;
  r.ingest_ns = int_value(types[3], at[3]);
  r.clock_synced = int_value(types[4], at[4]) != 0;
  r.source = text(5);
  r.partition_key = text(6);
  r.topic = text(7);
  r.payload = text(8);
  if (types[9] != 0) r.device_ts_ns = int_value(types[9], at[9]);
  r.content_type = text(10);
  return r;
}

}  // namespace

std::vector<Found> find_records(const std::filesystem::path& db, std::uint64_t after, std::uint64_t before) {
  DbFile file(db);
  std::vector<Found> out;
  std::string data;
  for (std::uint32_t page = 1; page <= file.pages(); ++page) {
    if (!file.read(page, data)) break;
    const auto* base = reinterpret_cast<const std::uint8_t*>(data.data());
    const std::uint32_t h = page == 1 ? 100 : 0;
    if (base[h] != kTableLeaf) continue;
    const std::uint32_t cells = be(base + h + 3, 2);
    if (h + 8 + 2 * cells > file.usable()) continue;
    for (std::uint16_t c = 0; c < cells; ++c) {
      auto cell = file.cell(page, c);
      if (!cell || cell->first <= after || cell->first >= before) continue;
      if (decode(cell->second)) out.push_back(Found{cell->first, page, c});
    }
  }
  // One per seq: the first found (copies in freed pages hold the same row).
  std::stable_sort(out.begin(), out.end(), [](const Found& a, const Found& b) { return a.seq < b.seq; });
  out.erase(std::unique(out.begin(), out.end(), [](const Found& a, const Found& b) { return a.seq == b.seq; }),
            out.end());
  return out;
}

void read_records(const std::filesystem::path& db, const std::vector<Found>& found,
                  const std::function<void(std::uint64_t, const NewRecord&)>& visit) {
  DbFile file(db);
  for (const auto& f : found) {
    auto cell = file.cell(f.page, f.cell);
    if (!cell) continue;
    if (auto record = decode(cell->second)) visit(f.seq, *record);
  }
}

}  // namespace tidegate::buffer::page_scan
