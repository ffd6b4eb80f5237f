#include "recent_records.h"

#include <algorithm>

#include "read_limit.h"

namespace tidegate::buffer {

void RecentRecords::add(std::vector<Record> committed) {
  if (max_bytes_ == 0 || committed.empty()) return;
  std::lock_guard lock(mu_);
  // A commit after a gap the file may fill differently (it never does today:
  // a failed commit reuses its sequence numbers) starts over, so that a hit
  // always means "everything after `after` is here".
  if (!records_.empty() && committed.front().seq != records_.back().seq + 1) {
    records_.clear();
    bytes_ = 0;
  }
  for (auto& r : committed) {
    bytes_ += footprint(r);
    records_.push_back(std::move(r));
  }
  trim();
}

void RecentRecords::forget_through(std::uint64_t seq) {
  std::lock_guard lock(mu_);
  while (!records_.empty() && records_.front().seq <= seq) {
    bytes_ -= footprint(records_.front());
    records_.pop_front();
  }
}

std::optional<std::vector<Record>> RecentRecords::read_after(std::uint64_t after, std::size_t max_records,
                                                             std::size_t max_bytes) const {
  std::lock_guard lock(mu_);
  if (records_.empty() || records_.front().seq > after + 1) return std::nullopt;
  std::vector<Record> out;
  if (max_records == 0 || after >= records_.back().seq) return out;
  const auto first = std::lower_bound(records_.begin(), records_.end(), after + 1,
                                      [](const Record& r, std::uint64_t seq) { return r.seq < seq; });
  const auto available = static_cast<std::size_t>(records_.end() - first);
  out.reserve(std::min(max_records, available));
  ReadLimit limit(max_bytes);
  for (auto it = first; it != records_.end() && out.size() < max_records && limit.admits(*it, out.size()); ++it) {
    out.push_back(*it);
  }
  return out;
}

void RecentRecords::trim() {
  while (bytes_ > max_bytes_ && !records_.empty()) {
    bytes_ -= footprint(records_.front());
    records_.pop_front();
  }
}

}  // namespace tidegate::buffer
