// A sink's route and processor chain, applied by its forwarder to each
// record it reads: route first (records not selected move the cursor
// unsent, counted as "not routed"), then each processor in order. One
// instance per sink, used by one thread at a time (the forwarder's, or its
// read-ahead's while a backlog drains); stats() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tidegate/processing/processor.h"
#include "tidegate/processing/route.h"

namespace tidegate::processing {

struct NamedProcessor {
  std::string name;  // [[processors.KIND]] name
  std::string kind;
  std::unique_ptr<Processor> processor;
};

struct ProcessorStats {
  std::string name;
  std::string kind;
  std::uint64_t in_total = 0;             // records it was given
  std::uint64_t out_total = 0;            // records it passed on
  std::uint64_t dropped_total = 0;        // filtered out on purpose
  std::uint64_t dead_lettered_total = 0;  // could not be processed
  double seconds_total = 0;               // time spent in it (sampled: every 16th record, scaled)
};

struct ChainResult {
  enum class Kind { kSend, kNotRouted, kDropped, kDeadLetter } kind = Kind::kSend;
  std::string reason;  // kDeadLetter: "processor 'NAME' (KIND): why"
};

class Chain {
 public:
  Chain(Route route, std::vector<NamedProcessor> processors);
  ~Chain();

  // Routes and processes `record` in place (its payload may change). A
  // dead-lettered record is given back unchanged.
  ChainResult apply(buffer::Record& record);
  bool empty() const { return route_.everything() && processors_.empty(); }
  std::vector<ProcessorStats> stats() const;
  std::uint64_t not_routed_total() const { return not_routed_.load(std::memory_order_relaxed); }

 private:
  struct Counters {
    std::atomic<std::uint64_t> in{0}, out{0}, dropped{0}, dead{0}, nanos{0};
  };
  Route route_;
  std::vector<NamedProcessor> processors_;
  std::unique_ptr<Counters[]> counters_;
  std::atomic<std::uint64_t> not_routed_{0};
  JsonView view_;  // reused record after record
  static constexpr std::uint64_t kTimedEvery = 16;
  std::uint64_t applied_ = 0;
};

}  // namespace tidegate::processing
