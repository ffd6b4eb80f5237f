#include "tidegate/processing/chain.h"

#include <chrono>

#include "tidegate/common/exception_text.h"

namespace tidegate::processing {
namespace {

// The counters have one writer (the chain runs on one thread at a time):
// a plain add stored atomically for stats() readers, without the bus lock
// of fetch_add, which would cost as much as a cheap processor.
void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

Chain::Chain(Route route, std::vector<NamedProcessor> processors)
    : route_(std::move(route)),
      processors_(std::move(processors)),
      counters_(std::make_unique<Counters[]>(processors_.size())) {}

Chain::~Chain() = default;

ChainResult Chain::apply(buffer::Record& record) {
  if (!route_.selects(record)) {
    bump(not_routed_);
    return {ChainResult::Kind::kNotRouted, {}};
  }
  if (processors_.empty()) return {};
  Message message(record, &view_);
  // Time is taken on every kTimedEvery-th record only: two clock reads per
  // processor and record would cost as much as a cheap processor.
  const bool timed = (applied_++ % kTimedEvery) == 0;
  for (std::size_t i = 0; i < processors_.size(); ++i) {
    auto& c = counters_[i];
    bump(c.in);
    std::chrono::steady_clock::time_point t0;
    if (timed) t0 = std::chrono::steady_clock::now();
    Verdict v;
    try {
      v = processors_[i].processor->process(message);
    } catch (...) {
      v = Verdict::dead_letter("threw: " + common::current_exception_text());
    }
    if (timed) {
      bump(c.nanos, kTimedEvery * static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                                 std::chrono::steady_clock::now() - t0)
                                                                 .count()));
    }
    switch (v.kind) {
      case Verdict::Kind::kPass:
        bump(c.out);
        break;
      case Verdict::Kind::kDrop:
        bump(c.dropped);
        return {ChainResult::Kind::kDropped, {}};
      case Verdict::Kind::kDeadLetter:
        bump(c.dead);
        if (message.original()) record = *message.original();
        return {ChainResult::Kind::kDeadLetter,
                "processor '" + processors_[i].name + "' (" + processors_[i].kind + "): " + v.reason};
    }
  }
  message.finish();
  return {};
}

std::vector<ProcessorStats> Chain::stats() const {
  std::vector<ProcessorStats> out;
  out.reserve(processors_.size());
  for (std::size_t i = 0; i < processors_.size(); ++i) {
    const auto& c = counters_[i];
    ProcessorStats s;
    s.name = processors_[i].name;
    s.kind = processors_[i].kind;
    s.in_total = c.in.load(std::memory_order_relaxed);
    s.out_total = c.out.load(std::memory_order_relaxed);
    s.dropped_total = c.dropped.load(std::memory_order_relaxed);
    s.dead_lettered_total = c.dead.load(std::memory_order_relaxed);
    s.seconds_total = static_cast<double>(c.nanos.load(std::memory_order_relaxed)) / 1e9;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tidegate::processing
