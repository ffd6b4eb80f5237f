// The forwarder against a real buffer, with scripted sinks standing in for
// upstreams (the forwarder is what is under test; real upstreams have their
// own integration tests).
#include "tidegate/forward/forwarder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <thread>
#include <functional>
#include <mutex>
#include <set>

#include "forward_support.h"
#include "helper_threads.h"
#include "test_support.h"

namespace tidegate::forward {
namespace {

using testing::make_records;
using testing::wait_for;

// A sink whose answers a test scripts; it records every record it was sent.
class ScriptedSink final : public Sink {
 public:
  using Script = std::function<SendResult(const std::vector<buffer::Record>&, int call)>;
  ScriptedSink(std::string name, Script script, SinkLimits limits = {})
      : name_(std::move(name)), script_(std::move(script)), limits_(limits) {}
  const std::string& name() const override { return name_; }
  SinkLimits limits() const override { return limits_; }
  std::string describe() const override { return "scripted"; }
  SendResult send(const std::vector<buffer::Record>& batch) override {
    std::lock_guard lock(mu_);
    auto result = script_(batch, calls_++);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      attempts_.push_back(batch[i].seq);
      if (result.outcome_of(i) == Outcome::kOk) {
        accepted_.push_back(batch[i].seq);
        payloads_.push_back(batch[i].payload);
      }
    }
    batch_sizes_.push_back(batch.size());
    return result;
  }
  std::vector<std::uint64_t> accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  std::vector<std::uint64_t> attempts() const {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  std::vector<std::string> payloads() const {  // of the accepted records
    std::lock_guard lock(mu_);
    return payloads_;
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

 private:
  std::string name_;
  Script script_;
  SinkLimits limits_;
  mutable std::mutex mu_;
  int calls_ = 0;
  std::vector<std::uint64_t> accepted_, attempts_;
  std::vector<std::string> payloads_;
  std::vector<std::size_t> batch_sizes_;
};

SendResult ok() { return {}; }

std::int64_t drivers_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buffer::BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.log = log_.fn();
    buffer_ = buffer::Buffer::open(o);
  }
  ForwarderOptions fast() {
    return testing::quick_forwarder(std::chrono::milliseconds(5), std::chrono::milliseconds(40));
  }
  static std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> v;
    for (auto s = from; s <= to; ++s) v.push_back(s);
    return v;
  }

  testing::TempDir dir_;
  testing::LogCapture log_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

// A sink whose code throws (a library exception, std::bad_alloc) is a bug or
// an exhausted resource, not a reason to end ingest: the forwarder counts it,
// retries the batch, and delivers everything once the sink stops throwing.
TEST_F(ForwarderTest, ASinkThatThrowsIsRetriedAndDeliversOnceItStops) {
  auto sink = std::make_unique<ScriptedSink>("up", [](auto&, int call) -> SendResult {
    if (call == 0) throw std::runtime_error("compression library failed");
    if (call == 1) throw std::bad_alloc();
    if (call == 2) throw 42;  // not even a std::exception
    return ok();
  });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  ASSERT_TRUE(buffer_->append_wait(make_records(20)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 20u; }));
  EXPECT_EQ(s->accepted(), range(1, 20));
  const auto st = f.stats();
  EXPECT_EQ(st.exceptions_total, 3u);
  EXPECT_EQ(st.retries_total, 3u);
  EXPECT_EQ(st.sent_records_total, 20u);
  EXPECT_EQ(st.consecutive_failures, 0u);
  EXPECT_TRUE(log_.contains("the sink threw while sending (compression library failed)"));
  EXPECT_TRUE(log_.contains("the sink threw while sending (std::bad_alloc)"));
  // The forwarder still runs: later records go too.
  ASSERT_TRUE(buffer_->append_wait(make_records(5)).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 25u; }));
}

// An operator's rewind while a batch is failing in its backoff: the batch is
// given up, the cursor goes back, and once the upstream answers the records
// go again from the target, in order. An ack in flight cannot undo it.
TEST_F(ForwarderTest, ARewindDuringABackoffGivesUpTheBatchAndReplaysFromTheTarget) {
  std::atomic<bool> failing{false};
  auto sink = std::make_unique<ScriptedSink>("up", [&](auto&, int) -> SendResult {
    if (!failing) return ok();
    SendResult r;
    r.batch = Outcome::kRetry;
    r.error = "upstream down";
    return r;
  });
  auto* s = sink.get();
  auto options = fast();
  options.retry_min = std::chrono::seconds(30);  // the rewind must not wait for this
  options.retry_max = std::chrono::seconds(30);
  Forwarder f(*buffer_, std::move(sink), options, log_.fn());
  ASSERT_TRUE(buffer_->append_wait(make_records(20)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 20u; }));
  failing = true;
  ASSERT_TRUE(buffer_->append_wait(make_records(5)).ok());
  ASSERT_TRUE(wait_for([&] { return f.stats().state == "backing-off"; }));
  // The upstream is back, but the forwarder sleeps in a 30 s backoff: only
  // the rewind wakes it.
  failing = false;
  const auto started = std::chrono::steady_clock::now();
  RewindTarget target;
  target.kind = RewindTarget::Kind::kSeq;
  target.seq = 8;
  const auto r = f.rewind(target);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  ASSERT_EQ(r.status, buffer::Status::kOk);
  EXPECT_EQ(r.acked_seq, 7u);
  EXPECT_FALSE(r.clamped);
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 25u; }));
  auto expected = range(1, 20);
  const auto replay = range(8, 25);
  expected.insert(expected.end(), replay.begin(), replay.end());
  EXPECT_EQ(s->accepted(), expected);
  EXPECT_EQ(f.stats().replay_through_seq, 0u);  // done
  EXPECT_TRUE(log_.contains("rewound by an operator to sequence 8: 18 records to send again"));
  EXPECT_TRUE(log_.contains("replay done: back to live data"));
  // Not running: the cursor moves at once; before the oldest, it clamps.
  f.stop();
  target.seq = 0;
  target.kind = RewindTarget::Kind::kEarliest;
  EXPECT_EQ(f.rewind(target).acked_seq, 0u);
}

// A replayed dead letter marked for another sink is passed over: the cursor
// moves past it, nothing is sent, and it is counted.
TEST_F(ForwarderTest, ARecordReplayedForAnotherSinkIsPassedOverAndCounted) {
  auto sink = std::make_unique<ScriptedSink>("up", [&](auto&, int) { return ok(); });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  auto records = make_records(4);
  records[1].only_sink = "archive";
  records[2].only_sink = "up";
  ASSERT_TRUE(buffer_->append_wait(records).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 4u; }));
  EXPECT_EQ(s->accepted(), (std::vector<std::uint64_t>{1, 3, 4}));
  EXPECT_EQ(f.stats().for_other_sinks_total, 1u);
}

// The forwarder compares ingest times with the buffer's clock, not the
// system's: with a buffer whose clock is years behind, fresh records are not
// taken for a backlog (live-first would otherwise reorder them).
// A sink's route and processors: what the route does not select and what a
// filter drops move the cursor unsent; what a processor cannot handle is
// dead-lettered with its name and the record as stored; the rest goes
// transformed. The buffer keeps every record as it came.
TEST_F(ForwarderTest, TheRouteAndProcessorsShapeWhatTheSinkGetsAndTheCursorPassesTheRest) {
  buffer_.reset();
  buffer::BufferOptions o;
  o.path = dir_ / "kept.db";
  o.commit_window = std::chrono::milliseconds(1);
  o.retention_time = std::chrono::hours(1);  // delivered records stay, to compare
  o.log = log_.fn();
  buffer_ = buffer::Buffer::open(o);
  std::vector<buffer::NewRecord> in;
  in.push_back(testing::make_record(R"({"t": 31, "badge": "B-1"})", "ahu-1"));  // 1: sent, redacted
  in.push_back(testing::make_record(R"({"t": 12})", "ahu-2"));                  // 2: filtered
  in.push_back(testing::make_record(R"({"t": 40})", "door-1"));                 // 3: not routed
  in.push_back(testing::make_record("not json", "ahu-3"));                      // 4: dead letter
  in.push_back(testing::make_record(R"({"t": 35})", "ahu-4"));                  // 5: sent
  ASSERT_TRUE(buffer_->append_wait(std::move(in)).ok());

  class Threshold final : public processing::Processor {
   public:
    processing::Verdict process(processing::Message& m) override {
      std::string why;
      auto* f = m.fields(why);
      if (!f) return processing::Verdict::dead_letter(why);
      return (*f)["t"].get<double>() > 30 ? processing::Verdict::pass() : processing::Verdict::drop();
    }
  };
  class DropBadge final : public processing::Processor {
   public:
    processing::Verdict process(processing::Message& m) override {
      std::string why;
      auto* f = m.fields(why);
      if (f && f->erase("badge") > 0) m.fields_changed();
      return processing::Verdict::pass();
    }
  };
  std::vector<processing::NamedProcessor> procs;
  procs.push_back({"hot", "filter", std::make_unique<Threshold>()});
  procs.push_back({"private", "redact", std::make_unique<DropBadge>()});
  processing::Route route;
  route.devices = {"ahu-*"};
  auto sink = std::make_unique<ScriptedSink>("cloud", [](auto&, int) { return ok(); });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn(), "scripted",
              std::make_unique<processing::Chain>(route, std::move(procs)));
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 5u; }));
  EXPECT_EQ(s->accepted(), (std::vector<std::uint64_t>{1, 5}));
  EXPECT_EQ(s->payloads(), (std::vector<std::string>{R"({"t":31})", R"({"t": 35})"}));  // untouched when unchanged
  const auto dead = buffer_->dead_letters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 4u);
  EXPECT_EQ(dead[0].sink, "cloud");
  EXPECT_EQ(dead[0].reason, "processor 'hot' (filter): the payload is not JSON");
  EXPECT_EQ(dead[0].record.payload, "not json");
  const auto st = f.stats();
  EXPECT_EQ(st.sent_records_total, 2u);
  EXPECT_EQ(st.not_routed_total, 1u);
  EXPECT_EQ(st.filtered_total, 1u);
  EXPECT_EQ(st.dead_lettered_total, 1u);
  ASSERT_EQ(st.processors.size(), 2u);
  EXPECT_EQ(st.processors[0].in_total, 4u);
  EXPECT_EQ(st.processors[1].in_total, 2u);
  // The buffer still holds the record as the source sent it.
  EXPECT_EQ(buffer_->read_after(0, 1, SIZE_MAX).records.at(0).payload, R"({"t": 31, "badge": "B-1"})");
}

// While a backlog drains, the next batch is read and run through the chain
// ahead, on another thread: the sink still gets every record in order, each
// processed once, and dead letters of batches prepared ahead are stored.
TEST_F(ForwarderTest, ABacklogProcessedAheadArrivesInOrderOnceWithItsDeadLetters) {
  std::vector<buffer::NewRecord> in;
  for (int i = 1; i <= 60; ++i) {
    in.push_back(testing::make_record(i % 7 == 0 ? "not json" : R"({"n":)" + std::to_string(i) + "}", "d"));
  }
  ASSERT_TRUE(buffer_->append_wait(std::move(in)).ok());

  class Tag final : public processing::Processor {
   public:
    processing::Verdict process(processing::Message& m) override {
      std::string why;
      auto* f = m.fields(why);
      if (!f) return processing::Verdict::dead_letter(why);
      (*f)["seen"] = true;
      m.fields_changed();
      return processing::Verdict::pass();
    }
  };
  std::vector<processing::NamedProcessor> procs;
  procs.push_back({"tag", "lua", std::make_unique<Tag>()});
  SinkLimits small;
  small.max_records = 4;  // 15 batches: most of them prepared ahead
  auto sink = std::make_unique<ScriptedSink>("cloud", [](auto&, int) { return ok(); }, small);
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn(), "scripted",
              std::make_unique<processing::Chain>(processing::Route{}, std::move(procs)));
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 60u; }));
  std::vector<std::uint64_t> expected;
  for (std::uint64_t i = 1; i <= 60; ++i) {
    if (i % 7 != 0) expected.push_back(i);
  }
  EXPECT_EQ(s->accepted(), expected);
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(s->payloads().at(k), R"({"n":)" + std::to_string(expected[k]) + R"(,"seen":true})");
  }
  const auto dead = buffer_->dead_letters(20);
  ASSERT_EQ(dead.size(), 8u);
  for (std::size_t k = 0; k < dead.size(); ++k) {
    EXPECT_EQ(dead[k].seq, 7 * (k + 1));
    EXPECT_EQ(dead[k].record.payload, "not json");
  }
  const auto st = f.stats();
  EXPECT_EQ(st.dead_lettered_total, 8u);
  ASSERT_EQ(st.processors.size(), 1u);
  EXPECT_EQ(st.processors[0].in_total, 60u);  // each record processed once
  EXPECT_EQ(st.processors[0].out_total, 52u);
}

TEST_F(ForwarderTest, TheForwarderTakesTheBuffersClock) {
  auto clock = std::make_shared<testing::FakeClock>();  // 2023, years before the system's time
  buffer::BufferOptions o;
  o.path = dir_ / "clocked.db";
  o.commit_window = std::chrono::milliseconds(1);
  o.clock = clock;
  o.log = log_.fn();
  auto clocked = buffer::Buffer::open(o);
  auto options = fast();
  options.drain = DrainOrder::kLiveFirst;
  options.live_lag = std::chrono::seconds(60);
  auto sink = std::make_unique<ScriptedSink>("up", [](auto&, int) { return ok(); });
  auto* s = sink.get();
  Forwarder f(*clocked, std::move(sink), options, log_.fn());
  f.start();
  ASSERT_TRUE(clocked->append_wait(make_records(30)).ok());
  ASSERT_TRUE(wait_for([&] { return clocked->acked_seq("up") == 30u; }));
  EXPECT_FALSE(f.stats().live_first);
  EXPECT_FALSE(log_.contains("live readings go first"));
  EXPECT_EQ(s->accepted(), range(1, 30));
  // Delivery times are stamped with the buffer's clock too.
  EXPECT_EQ(f.stats().last_success_ns, clock->wall_ns());
}

TEST_F(ForwarderTest, DeliversEverythingInOrderInBatchesAndMovesTheCursor) {
  SinkLimits limits;
  limits.max_records = 100;
  auto sink = std::make_unique<ScriptedSink>("up", [](auto&, int) { return ok(); }, limits);
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(buffer_->append_wait(make_records(50)).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 500u; }));
  EXPECT_EQ(s->accepted(), range(1, 500));
  for (auto n : s->batch_sizes()) EXPECT_LE(n, 100u);
  auto st = f.stats();
  EXPECT_EQ(st.sent_records_total, 500u);
  EXPECT_GT(st.delivery_rate_per_s, 0.0);
  EXPECT_EQ(estimated_drain_seconds(st, 0), 0.0);
  ASSERT_TRUE(estimated_drain_seconds(st, 1000).has_value());
  EXPECT_NEAR(*estimated_drain_seconds(st, 1000), 1000.0 / st.delivery_rate_per_s, 1e-9);
  EXPECT_FALSE(estimated_drain_seconds(ForwarderStats{}, 10).has_value());
  EXPECT_EQ(st.retries_total, 0u);
  EXPECT_GT(st.last_success_ns, 0);
  EXPECT_EQ(st.destination, "scripted");
}

// Issue 19, defect 2: under drop-oldest, records evicted while the batch
// holding them is being sent reach the upstream; the reported loss must be
// exactly what the upstream never got, not what was evicted.
TEST_F(ForwarderTest, UnderDropOldestTheReportedLossIsExactlyWhatTheSinkNeverGot) {
  buffer::BufferOptions o;
  o.path = dir_ / "capped.db";
  o.commit_window = std::chrono::milliseconds(1);
  o.max_records = 100;
  o.full_policy = buffer::FullPolicy::kDropOldest;
  o.log = log_.fn();
  auto capped = buffer::Buffer::open(o);
  std::atomic<bool> in_flight{false};
  std::atomic<bool> release{false};
  SinkLimits limits;
  limits.max_records = 30;
  auto sink = std::make_unique<ScriptedSink>("up", [&](auto&, int call) {
    in_flight = true;
    while (call == 0 && !release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return ok();
  }, limits);
  auto* s = sink.get();
  Forwarder f(*capped, std::move(sink), fast(), log_.fn());
  testing::SetOnExit released(release);  // the forwarder's thread is never left waiting
  ASSERT_TRUE(capped->append_wait(make_records(100)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return in_flight.load(); }));  // 1..30 in flight
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(capped->append_wait(make_records(65)).ok());  // evicts 1..130
  release = true;
  ASSERT_TRUE(wait_for([&] { return capped->acked_seq("up") == 230u; }));
  // 1..30 were in flight and the next batch may have been read ahead before
  // the eviction; the rest of 1..130 never left the gateway.
  const auto got = s->accepted();
  const std::set<std::uint64_t> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), got.size());
  EXPECT_EQ(got.front(), 1u);
  EXPECT_LE(got.size(), 160u);
  const auto st = capped->stats();
  EXPECT_EQ(st.sinks.at(0).lost_by_eviction, 230u - got.size());
  EXPECT_EQ(st.evicted_total, 230u - got.size());
}

TEST_F(ForwarderTest, RetriesWithBackoffAndNeverSkips) {
  auto sink = std::make_unique<ScriptedSink>("up", [](auto&, int call) {
    SendResult r;
    if (call < 4) {
      r.batch = Outcome::kRetry;
      r.error = "connection refused";
    }
    return r;
  });
  auto* s = sink.get();
  ASSERT_TRUE(buffer_->append_wait(make_records(20)).ok());
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 20u; }));
  EXPECT_EQ(s->accepted(), range(1, 20));
  auto st = f.stats();
  EXPECT_EQ(st.retries_total, 4u);
  EXPECT_EQ(st.resent_records_total, 4u * 20u);
  EXPECT_EQ(st.last_error, "connection refused");
  EXPECT_EQ(st.consecutive_failures, 0u);
  EXPECT_TRUE(log_.contains("retrying in"));
  EXPECT_TRUE(log_.contains("delivering again"));
}

TEST_F(ForwarderTest, PartialFailureResendsOnlyTheFailedRecords) {
  // First call: every third record fails (as Kinesis PutRecords may answer).
  auto sink = std::make_unique<ScriptedSink>("kinesis", [](const std::vector<buffer::Record>& batch, int call) {
    SendResult r;
    if (call == 0) {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        r.per_record.push_back(i % 3 == 0 ? Outcome::kRetry : Outcome::kOk);
      }
      r.error = "ProvisionedThroughputExceededException";
    }
    return r;
  });
  auto* s = sink.get();
  ASSERT_TRUE(buffer_->append_wait(make_records(30)).ok());
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("kinesis") == 30u; }));
  auto accepted = s->accepted();
  std::sort(accepted.begin(), accepted.end());
  EXPECT_EQ(accepted, range(1, 30));  // each exactly once
  EXPECT_EQ(s->attempts().size(), 30u + 10u);  // only the 10 failed ones went again
  EXPECT_EQ(f.stats().resent_records_total, 10u);
}

TEST_F(ForwarderTest, RejectedRecordsBecomeDeadLettersAndTheCursorMovesOn) {
  auto sink = std::make_unique<ScriptedSink>("http", [](const std::vector<buffer::Record>& batch, int) {
    SendResult r;
    for (const auto& rec : batch) r.per_record.push_back(rec.payload == "r3" ? Outcome::kReject : Outcome::kOk);
    r.error = "HTTP 400: schema violation";
    return r;
  });
  ASSERT_TRUE(buffer_->append_wait(make_records(6)).ok());
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("http") == 6u; }));
  auto letters = buffer_->dead_letters(10);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].sink, "http");
  EXPECT_EQ(letters[0].seq, 4u);
  EXPECT_EQ(letters[0].reason, "HTTP 400: schema violation");
  EXPECT_EQ(f.stats().dead_lettered_total, 1u);
}

TEST_F(ForwarderTest, RecordsOverTheSinksLimitAreDeadLetteredWithoutSending) {
  SinkLimits limits;
  limits.max_record_bytes = 200;
  auto sink = std::make_unique<ScriptedSink>("small", [](auto&, int) { return ok(); }, limits);
  auto* s = sink.get();
  ASSERT_TRUE(
      buffer_->append_wait({testing::make_record("a"), testing::make_record(std::string(500, 'b')), testing::make_record("c")})
          .ok());
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("small") == 3u; }));
  EXPECT_EQ(s->attempts(), (std::vector<std::uint64_t>{1, 3}));
  ASSERT_EQ(buffer_->dead_letters(10).size(), 1u);
  EXPECT_NE(buffer_->dead_letters(10)[0].reason.find("exceeds the sink's limit"), std::string::npos);
}

TEST_F(ForwarderTest, AStoppedForwarderResumesFromItsCursor) {
  ASSERT_TRUE(buffer_->append_wait(make_records(40)).ok());
  std::vector<std::uint64_t> seen;
  {
    SinkLimits limits;
    limits.max_records = 10;
    auto sink = std::make_unique<ScriptedSink>(
        "up", [](auto&, int call) { return call < 2 ? ok() : SendResult{Outcome::kRetry, {}, "down", false}; }, limits);
    Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
    f.start();
    ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 20u; }));
    f.stop();  // with batch 21..30 failing
  }
  auto sink = std::make_unique<ScriptedSink>("up", [](auto&, int) { return ok(); });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 40u; }));
  EXPECT_EQ(s->accepted(), range(21, 40));  // nothing skipped, nothing before the cursor again
}

// A backlog is read one batch ahead while the current one is in flight; the
// batch read ahead goes only after the current one's cursor move landed.
TEST_F(ForwarderTest, ABacklogReadAheadKeepsOrderThroughRetriesAndARestart) {
  ASSERT_TRUE(buffer_->append_wait(make_records(1000)).ok());
  SinkLimits limits;
  limits.max_records = 100;
  auto flaky = [](const std::vector<buffer::Record>& batch, int call) {
    SendResult r;
    if (call % 4 == 1) return SendResult{Outcome::kRetry, {}, "timeout", false};
    if (call % 5 == 2) {
      for (std::size_t i = 0; i < batch.size(); ++i) r.per_record.push_back(i % 7 == 0 ? Outcome::kRetry : Outcome::kOk);
      r.error = "partial";
    }
    return r;
  };
  std::vector<std::uint64_t> accepted, attempts;
  {
    auto sink = std::make_unique<ScriptedSink>("up", flaky, limits);
    auto* s = sink.get();
    Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
    f.start();
    ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up").value_or(0) >= 300u; }));
    f.stop();  // a batch read ahead is dropped here, unsent
    accepted = s->accepted();
    attempts = s->attempts();
  }
  const auto cursor = buffer_->acked_seq("up").value_or(0);
  ASSERT_LT(cursor, 1000u);
  auto sink = std::make_unique<ScriptedSink>("up", flaky, limits);
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 1000u; }));
  // Each run's first attempts go in sequence order: no batch skipped, none
  // sent out of turn.
  for (const auto& run : {attempts, s->attempts()}) {
    std::vector<std::uint64_t> firsts;
    for (auto seq : run) {
      if (std::find(firsts.begin(), firsts.end(), seq) == firsts.end()) firsts.push_back(seq);
    }
    EXPECT_TRUE(std::is_sorted(firsts.begin(), firsts.end()));
  }
  EXPECT_EQ(s->attempts().front(), cursor + 1);  // the restart starts at the cursor
  auto all = accepted;
  for (auto seq : s->accepted()) all.push_back(seq);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  EXPECT_EQ(all, range(1, 1000));
}

// linger counts from a record's ingest: one that already waited longer (in
// the commit window, or before a restart) goes without waiting again.
TEST_F(ForwarderTest, LingerCountsFromTheOldestRecordsIngest) {
  auto sink = std::make_unique<ScriptedSink>("up", [](auto&, int) { return ok(); });
  auto opts = fast();
  opts.linger = std::chrono::seconds(30);
  auto old = testing::make_record("old");
  old.ingest_ns = drivers_now_ns() - 60'000'000'000;  // a minute ago
  ASSERT_TRUE(buffer_->append_wait({old}).ok());
  Forwarder f(*buffer_, std::move(sink), opts, log_.fn());
  f.start();
  EXPECT_TRUE(wait_for([&] { return buffer_->acked_seq("up") == 1u; }, std::chrono::seconds(10)));
}

TEST_F(ForwarderTest, ABrokenSinkDoesNotHoldBackAnother) {
  auto broken = std::make_unique<ScriptedSink>("broken", [](auto&, int) {
    return SendResult{Outcome::kRetry, {}, "503 Service Unavailable", false};
  });
  auto healthy = std::make_unique<ScriptedSink>("healthy", [](auto&, int) { return ok(); });
  Forwarder fb(*buffer_, std::move(broken), fast(), log_.fn());
  Forwarder fh(*buffer_, std::move(healthy), fast(), log_.fn());
  fb.start();
  fh.start();
  ASSERT_TRUE(buffer_->append_wait(make_records(100)).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("healthy") == 100u; }));
  EXPECT_EQ(buffer_->acked_seq("broken"), 0u);
  EXPECT_TRUE(wait_for([&] { return fb.stats().state == "backing-off"; }));
  EXPECT_GE(fb.stats().consecutive_failures, 1u);
  // The broken sink's lag is what the status page will show.
  for (const auto& k : buffer_->stats().sinks) {
    if (k.name == "broken") {
      EXPECT_EQ(k.lag_records, 100u);
    }
  }
}

TEST_F(ForwarderTest, BandwidthCapSpacesSendsOut) {
  auto o = fast();
  o.max_bytes_per_s = 20'000;
  o.max_records = 10;
  auto sink = std::make_unique<ScriptedSink>("metered", [](auto&, int) { return ok(); });
  // 60 records of ~1 KiB: 3 seconds' worth at 20 kB/s, one second of which
  // the initial bucket covers.
  std::vector<buffer::NewRecord> records;
  for (int i = 0; i < 60; ++i) records.push_back(testing::make_record(std::string(1000, 'x')));
  ASSERT_TRUE(buffer_->append_wait(std::move(records)).ok());
  Forwarder f(*buffer_, std::move(sink), o, log_.fn());
  const auto start = std::chrono::steady_clock::now();
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("metered") == 60u; }, std::chrono::seconds(20)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

// An hour of backlog (its ingest times an hour old), a slow uplink, then
// live readings: live-first sends them before the backlog is through, the
// cursor covers them only once the backlog reaches them, and everything
// arrives.
TEST_F(ForwarderTest, LiveFirstLetsNewReadingsOvertakeABacklog) {
  auto backlog = make_records(1000, "old");
  const auto hour_ago = drivers_now_ns() - 3'600'000'000'000;
  for (auto& r : backlog) r.ingest_ns = hour_ago;
  ASSERT_TRUE(buffer_->append_wait(std::move(backlog)).ok());
  auto o = fast();
  o.max_records = 50;
  o.drain = DrainOrder::kLiveFirst;
  o.live_lag = std::chrono::seconds(60);
  auto sink = std::make_unique<ScriptedSink>("cloud", [](auto&, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a slow uplink: ~5k records/s
    return ok();
  });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), o, log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return f.stats().live_first; }));
  ASSERT_TRUE(buffer_->append_wait(make_records(20, "live")).ok());  // seq 1001..1020
  ASSERT_TRUE(wait_for([&] {
    const auto a = s->accepted();
    return std::find(a.begin(), a.end(), 1020u) != a.end();
  }));
  // Live readings arrived while the backlog was still going out.
  const auto when_live_arrived = s->accepted();
  EXPECT_EQ(std::find(when_live_arrived.begin(), when_live_arrived.end(), 1000u), when_live_arrived.end())
      << "the live readings should not have waited for the whole backlog";
  EXPECT_LT(buffer_->acked_seq("cloud").value_or(0), 1001u) << "the cursor never covers what the backlog has not reached";

  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 1020u; }, std::chrono::seconds(20)));
  EXPECT_TRUE(wait_for([&] { return !f.stats().live_first; }));
  auto all = s->accepted();
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, range(1, 1020)) << "each record exactly once";
  EXPECT_GE(f.stats().delivered_ahead_total, 20u);
  // Each lane is in order by itself.
  std::vector<std::uint64_t> old_lane, live_lane;
  for (auto seq : s->accepted()) (seq <= 1000 ? old_lane : live_lane).push_back(seq);
  EXPECT_TRUE(std::is_sorted(old_lane.begin(), old_lane.end()));
  EXPECT_TRUE(std::is_sorted(live_lane.begin(), live_lane.end()));
}

TEST_F(ForwarderTest, LiveRecordsSentAheadAreSentAgainAfterARestartNeverLost) {
  auto backlog = make_records(600, "old");
  for (auto& r : backlog) r.ingest_ns = drivers_now_ns() - 3'600'000'000'000;
  ASSERT_TRUE(buffer_->append_wait(std::move(backlog)).ok());
  auto o = fast();
  o.max_records = 20;
  o.drain = DrainOrder::kLiveFirst;
  auto slow = [](auto&, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return ok();
  };
  auto first = std::make_unique<ScriptedSink>("cloud", slow);
  {
    Forwarder f(*buffer_, std::move(first), o, log_.fn());
    f.start();
    ASSERT_TRUE(wait_for([&] { return f.stats().live_first; }));
    ASSERT_TRUE(buffer_->append_wait(make_records(10, "live")).ok());  // 601..610
    ASSERT_TRUE(wait_for([&] { return f.stats().delivered_ahead_total >= 10; }));
    f.stop();  // as a crash would: the backlog is not through
  }
  const auto cursor = buffer_->acked_seq("cloud").value_or(0);
  ASSERT_LT(cursor, 600u);
  auto second = std::make_unique<ScriptedSink>("cloud", [](auto&, int) { return ok(); });
  auto* s2 = second.get();
  o.drain = DrainOrder::kOldestFirst;
  Forwarder again(*buffer_, std::move(second), o, log_.fn());
  again.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 610u; }));
  EXPECT_EQ(s2->accepted(), range(cursor + 1, 610)) << "everything after the cursor again, live records included";
}

TEST_F(ForwarderTest, APausedSinkSendsNothingUntilResumed) {
  auto sink = std::make_unique<ScriptedSink>("held", [](auto&, int) { return ok(); });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.pause();
  f.start();
  ASSERT_TRUE(buffer_->append_wait(make_records(30)).ok());
  ASSERT_TRUE(wait_for([&] { return f.stats().state == "paused"; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(s->accepted().empty());
  f.resume();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("held") == 30u; }));
  EXPECT_EQ(s->accepted(), range(1, 30));
}

// A hold outlasts a restart: it is kept in the buffer file, and a forwarder
// starting on a held sink waits until an operator resumes it.
TEST_F(ForwarderTest, AHeldSinkStaysHeldAfterARestart) {
  {
    Forwarder before(*buffer_, std::make_unique<ScriptedSink>("held", [](auto&, int) { return ok(); }), fast(),
                     log_.fn());
    before.pause();
  }
  EXPECT_TRUE(buffer_->sink_held("held"));
  auto sink = std::make_unique<ScriptedSink>("held", [](auto&, int) { return ok(); });
  auto* s = sink.get();
  Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  ASSERT_TRUE(buffer_->append_wait(make_records(5)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return f.stats().state == "paused"; }));
  EXPECT_TRUE(log_.contains("held by an operator since before this start"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(s->accepted().empty());
  f.resume();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("held") == 5u; }));
  EXPECT_FALSE(buffer_->sink_held("held"));
}

}  // namespace
}  // namespace tidegate::forward
