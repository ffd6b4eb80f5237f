// Unit tests of the buffer against real SQLite files in temporary
// directories. Clock and free-disk figures are injected where time or space
// matters; everything else is the real thing.
#include "tidegate/buffer/buffer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "helper_threads.h"
#include "test_support.h"

namespace tidegate::buffer {
namespace {

using testing::FakeClock;
using testing::FakeDisk;
using testing::LogCapture;
using testing::make_record;
using testing::make_records;
using testing::TempDir;

class BufferTest : public ::testing::Test {
 protected:
  BufferOptions options() {
    BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.clock = clock_;
    o.disk_space = disk_;
    o.log = log_.fn();
    o.maintenance_interval = std::chrono::hours(1);  // tests run maintenance explicitly
    o.maintenance_after_records = 0;
    return o;
  }
  std::unique_ptr<Buffer> open(BufferOptions o) { return Buffer::open(std::move(o)); }
  std::unique_ptr<Buffer> open() { return open(options()); }

  static std::vector<Record> read_all(const Buffer& b, std::uint64_t after = 0) {
    return b.read_after(after, 1'000'000, SIZE_MAX).records;
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<FakeDisk> disk_ = std::make_shared<FakeDisk>();
  LogCapture log_;
};

// ------------------------------------------------------------ appends

TEST_F(BufferTest, AppendedRecordsReadBackByteIdenticalInOrder) {
  auto b = open();
  EXPECT_TRUE(b->open_report().created);
  NewRecord binary = make_record(std::string("\0\x01\xff{\"t\":21.5}\n", 13), "dev-7");
  binary.device_ts_ns = 1'650'000'000'123'000'000;
  binary.clock_synced = true;
  binary.ingest_ns = 42;
  NewRecord empty = make_record("");
  empty.content_type.clear();
  auto outcome = b->append_wait({binary, empty, make_record("third")});
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(outcome.first_seq, 1u);
  EXPECT_EQ(outcome.count, 3u);

  auto records = read_all(*b);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].seq, 1u);
  EXPECT_EQ(records[0].payload, binary.payload);
  EXPECT_EQ(records[0].payload.size(), 13u);
  EXPECT_EQ(records[0].device_ts_ns, binary.device_ts_ns);
  EXPECT_TRUE(records[0].clock_synced);
  EXPECT_EQ(records[0].ingest_ns, 42);
  EXPECT_EQ(records[0].partition_key, "dev-7");
  EXPECT_EQ(records[0].topic, "sensors/dev-7/temp");
  EXPECT_EQ(records[0].source, "test");
  EXPECT_EQ(records[0].content_type, "application/json");
  EXPECT_EQ(records[1].payload, "");
  EXPECT_FALSE(records[1].device_ts_ns.has_value());
  EXPECT_EQ(records[1].content_type, "");
  EXPECT_EQ(records[2].payload, "third");
  EXPECT_EQ(records[2].seq, 3u);
}

TEST_F(BufferTest, IngestTimeComesFromTheClockWhenNotGiven) {
  auto b = open();
  clock_->set(1'800'000'000'000'000'000);
  ASSERT_TRUE(b->append_wait({make_record("x")}).ok());
  EXPECT_EQ(read_all(*b).at(0).ingest_ns, 1'800'000'000'000'000'000);
}

TEST_F(BufferTest, ConcurrentAppendersGetUniqueIncreasingSequences) {
  auto b = open();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::map<int, std::vector<std::uint64_t>> seqs_by_thread;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        b->append({make_record("t" + std::to_string(t) + "-" + std::to_string(i))},
                  [&, t](const AppendOutcome& o) {
                    if (!o.ok()) failures++;
                    std::lock_guard lock(mu);
                    seqs_by_thread[t].push_back(o.first_seq);
                  });
      }
    });
  }
  for (auto& th : threads) th.join();
  b->flush();
  EXPECT_EQ(failures.load(), 0);
  std::set<std::uint64_t> all;
  for (const auto& [t, seqs] : seqs_by_thread) {
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kPerThread));
    // Each producer's records keep the order it appended them in.
    EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
    all.insert(seqs.begin(), seqs.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kPerThread));
  // What each callback reported is what is stored under that number.
  auto records = read_all(*b);
  ASSERT_EQ(records.size(), all.size());
  for (std::size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].seq, i + 1);
}

TEST_F(BufferTest, GroupCommitPutsManyCallsInOneTransaction) {
  auto o = options();
  o.commit_window = std::chrono::milliseconds(200);
  auto b = open(o);
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) b->append({make_record("g")}, [&](const AppendOutcome&) { done++; });
  b->flush();
  EXPECT_EQ(done.load(), 100);
  // 100 calls inside one 200 ms window: a handful of commits, not 100.
  EXPECT_LE(b->stats().commits_total, 5u);
  EXPECT_EQ(b->stats().appended_total, 100u);
}

TEST_F(BufferTest, CommitMaxRecordsClosesTheWindowEarly) {
  auto o = options();
  o.commit_window = std::chrono::seconds(30);
  o.commit_max_records = 10;
  auto b = open(o);
  const auto start = std::chrono::steady_clock::now();
  auto outcome = b->append_wait(make_records(10));
  EXPECT_TRUE(outcome.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(BufferTest, CommitMaxBytesClosesTheWindowEarly) {
  auto o = options();
  o.commit_window = std::chrono::seconds(30);
  o.commit_max_bytes = 4096;
  auto b = open(o);
  // Under the byte limit the record waits for the window...
  std::promise<AppendOutcome> small;
  b->append({make_record("small")}, [&](const AppendOutcome& out) { small.set_value(out); });
  auto waiting = small.get_future();
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  // ...and a call that brings the waiting bytes to the limit commits both now.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(b->append_wait({make_record(std::string(4096, 'b'))}).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(waiting.get().ok());
  EXPECT_EQ(b->stats().commits_total, 1u);
}

TEST_F(BufferTest, CallbackRunsOnlyOnceTheRecordIsCommitted) {
  auto b = open();
  std::promise<std::size_t> visible;
  b->append({make_record("durable")}, [&](const AppendOutcome& o) {
    // Another connection must already see it: this is when a source acks.
    visible.set_value(o.ok() ? b->read_after(o.first_seq - 1, 10, SIZE_MAX).records.size() : 0);
  });
  EXPECT_EQ(visible.get_future().get(), 1u);
}

TEST_F(BufferTest, CallbackMayAppendWithoutDeadlock) {
  auto o = options();
  o.max_queued_records = 1;
  auto b = open(o);
  std::promise<AppendOutcome> second;
  b->append({make_record("first")}, [&](const AppendOutcome&) {
    b->append({make_record("second")}, [&](const AppendOutcome& o2) { second.set_value(o2); });
  });
  EXPECT_TRUE(second.get_future().get().ok());
}

TEST_F(BufferTest, CrashSafeModeSyncsTheWalPeriodically) {
  auto o = options();
  o.sync_interval = std::chrono::milliseconds(5);
  auto b = open(o);
  ASSERT_TRUE(b->append_wait(make_records(3)).ok());
  // Even with no further commits, the last one gets synced.
  EXPECT_TRUE(testing::wait_for([&] { return b->stats().wal_syncs_total >= 1; }));
  const auto before = b->stats().wal_syncs_total;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(b->stats().wal_syncs_total, before);  // nothing new, no more syncs
}

TEST_F(BufferTest, CloseCommitsEverythingStillQueued) {
  auto o = options();
  o.commit_window = std::chrono::seconds(60);
  {
    auto b = open(o);
    for (int i = 0; i < 50; ++i) b->append({make_record("q" + std::to_string(i))}, nullptr);
  }
  auto b = open(o);
  EXPECT_EQ(read_all(*b).size(), 50u);
}

// ------------------------------------------------------------ sequences

TEST_F(BufferTest, SequencesContinueAfterReopen) {
  {
    auto b = open();
    ASSERT_TRUE(b->append_wait(make_records(5)).ok());
  }
  auto b = open();
  EXPECT_FALSE(b->open_report().created);
  auto outcome = b->append_wait(make_records(1));
  EXPECT_EQ(outcome.first_seq, 6u);
}

TEST_F(BufferTest, SequencesAreNeverReusedAfterTheBufferEmpties) {
  {
    auto b = open();
    ASSERT_EQ(b->ensure_sink("cloud", StartPosition::kEarliest), Status::kOk);
    ASSERT_TRUE(b->append_wait(make_records(5)).ok());
    ASSERT_EQ(b->ack("cloud", 5), Status::kOk);
    EXPECT_EQ(b->run_maintenance(), 5u);
    EXPECT_EQ(b->stats().records, 0u);
    EXPECT_EQ(b->append_wait(make_records(1)).first_seq, 6u);
    ASSERT_EQ(b->ack("cloud", 6), Status::kOk);
    EXPECT_EQ(b->run_maintenance(), 1u);
  }
  auto b = open();
  EXPECT_EQ(b->stats().records, 0u);
  EXPECT_EQ(b->append_wait(make_records(1)).first_seq, 7u);
}

TEST_F(BufferTest, SequencesAreNeverReusedAfterEviction) {
  auto o = options();
  o.max_records = 3;
  auto b = open(o);
  ASSERT_TRUE(b->append_wait(make_records(10)).ok() == false);  // 10 > cap: refused outright
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(b->append_wait(make_records(1)).ok());
  auto records = read_all(*b);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].seq, 8u);
  EXPECT_EQ(records[2].seq, 10u);
}

TEST_F(BufferTest, NewFileAfterDeletionContinuesAboveTheSequenceFloor) {
  {
    auto b = open();
    ASSERT_TRUE(b->append_wait(make_records(20)).ok());
  }
  // An operator deletes the database but not its sidecar: the cloud already
  // holds seqs 1..20 from this gateway, so they must not come again.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(std::filesystem::path(options().path).concat(suffix));
  }
  auto b = open();
  EXPECT_TRUE(b->open_report().created);
  EXPECT_GT(b->append_wait(make_records(1)).first_seq, 20u);
}

// ------------------------------------------------------------ cursors

TEST_F(BufferTest, EachSinkHasItsOwnDurableCursor) {
  {
    auto b = open();
    ASSERT_EQ(b->ensure_sink("kinesis", StartPosition::kEarliest), Status::kOk);
    ASSERT_EQ(b->ensure_sink("file", StartPosition::kEarliest), Status::kOk);
    ASSERT_TRUE(b->append_wait(make_records(10)).ok());
    auto batch = b->read("kinesis", 4, SIZE_MAX);
    ASSERT_EQ(batch.records.size(), 4u);
    EXPECT_EQ(batch.records.front().seq, 1u);
    ASSERT_EQ(b->ack("kinesis", batch.records.back().seq), Status::kOk);
    EXPECT_EQ(b->read("kinesis", 100, SIZE_MAX).records.front().seq, 5u);
    EXPECT_EQ(b->read("file", 100, SIZE_MAX).records.front().seq, 1u);
  }
  auto b = open();
  EXPECT_EQ(b->acked_seq("kinesis"), 4u);
  EXPECT_EQ(b->acked_seq("file"), 0u);
  auto sinks = b->sinks();
  EXPECT_EQ(sinks, (std::vector<std::string>{"file", "kinesis"}));
}

TEST_F(BufferTest, ReadersCanWaitForNewRecords) {
  auto b = open();
  ASSERT_TRUE(b->append_wait(make_records(2)).ok());
  EXPECT_TRUE(b->wait_for_records_after(1, std::chrono::milliseconds(0)));
  EXPECT_FALSE(b->wait_for_records_after(2, std::chrono::milliseconds(20)));
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    b->append_wait(make_records(1));
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(b->wait_for_records_after(2, std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));  // woken, not timed out
  later.join();
}

TEST_F(BufferTest, ReadingDoesNotMoveTheCursorOnlyAckDoes) {
  auto b = open();
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(3)).ok());
  EXPECT_EQ(b->read("s", 10, SIZE_MAX).records.size(), 3u);
  EXPECT_EQ(b->read("s", 10, SIZE_MAX).records.size(), 3u);  // a crash here re-sends
  EXPECT_EQ(b->acked_seq("s"), 0u);
}

TEST_F(BufferTest, NewSinkStartsAtEarliestOrLatest) {
  auto b = open();
  ASSERT_TRUE(b->append_wait(make_records(5)).ok());
  ASSERT_EQ(b->ensure_sink("history", StartPosition::kEarliest), Status::kOk);
  ASSERT_EQ(b->ensure_sink("live", StartPosition::kLatest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(2)).ok());
  EXPECT_EQ(b->read("history", 100, SIZE_MAX).records.size(), 7u);
  auto live = b->read("live", 100, SIZE_MAX).records;
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].seq, 6u);
  // ensure_sink on an existing sink keeps its cursor.
  ASSERT_EQ(b->ack("live", 7), Status::kOk);
  ASSERT_EQ(b->ensure_sink("live", StartPosition::kEarliest), Status::kOk);
  EXPECT_EQ(b->acked_seq("live"), 7u);
}

TEST_F(BufferTest, AckRules) {
  auto b = open();
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(5)).ok());
  EXPECT_EQ(b->ack("s", 3), Status::kOk);
  EXPECT_EQ(b->ack("s", 2), Status::kOk);  // late ack of an older batch: no-op
  EXPECT_EQ(b->acked_seq("s"), 3u);
  EXPECT_EQ(b->ack("s", 6), Status::kInvalidArgument);  // never committed
  EXPECT_EQ(b->acked_seq("s"), 3u);
  EXPECT_EQ(b->ack("nope", 1), Status::kNotFound);
  EXPECT_EQ(b->read("nope", 1, 1).status, Status::kNotFound);
  EXPECT_EQ(b->ensure_sink("", StartPosition::kEarliest), Status::kInvalidArgument);
}

TEST_F(BufferTest, ReadHonoursRecordAndByteLimitsButAlwaysReturnsOne) {
  for (const std::uint64_t recent_bytes : {std::uint64_t{2} << 20, std::uint64_t{0}}) {  // memory, then file
    SCOPED_TRACE(recent_bytes == 0 ? "read from the file" : "read from memory");
    auto o = options();
    o.path = dir_ / ("limits-" + std::to_string(recent_bytes) + ".db");
    o.recent_records_bytes = recent_bytes;
    auto b = open(o);
    ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
    ASSERT_TRUE(b->append_wait({make_record(std::string(1000, 'a')), make_record(std::string(1000, 'b')),
                                make_record(std::string(1000, 'c'))})
                    .ok());
    EXPECT_EQ(b->read("s", 2, SIZE_MAX).records.size(), 2u);
    const auto one = static_cast<std::size_t>(accounted_size(make_record(std::string(1000, 'a'))));
    EXPECT_EQ(b->read("s", 10, 2 * one).records.size(), 2u);
    EXPECT_EQ(b->read("s", 10, 2 * one - 1).records.size(), 1u);
    EXPECT_EQ(b->read("s", 10, 1).records.size(), 1u);  // larger than the limit, still delivered
    EXPECT_EQ(b->read("s", 0, SIZE_MAX).records.size(), 0u);
    const auto s = b->stats();
    EXPECT_EQ(recent_bytes == 0 ? s.read_from_file_total : s.read_from_memory_total, 6u);
    EXPECT_EQ(recent_bytes == 0 ? s.read_from_memory_total : s.read_from_file_total, 0u);
  }
}

// ------------------------------------------------------------ the newest commits in memory

void expect_same_records(const std::vector<Record>& got, const std::vector<Record>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_EQ(got[i].seq, want[i].seq);
    EXPECT_EQ(got[i].ingest_ns, want[i].ingest_ns);
    EXPECT_EQ(got[i].clock_synced, want[i].clock_synced);
    EXPECT_EQ(got[i].source, want[i].source);
    EXPECT_EQ(got[i].partition_key, want[i].partition_key);
    EXPECT_EQ(got[i].topic, want[i].topic);
    EXPECT_EQ(got[i].payload, want[i].payload);
    EXPECT_EQ(got[i].device_ts_ns, want[i].device_ts_ns);
    EXPECT_EQ(got[i].content_type, want[i].content_type);
    EXPECT_EQ(got[i].only_sink, want[i].only_sink);
  }
}

// What a caught-up reader gets from memory is what the file holds, field for
// field (the file read by a second, read-only connection, as the CLI does).
TEST_F(BufferTest, TheNewestCommitsAreReadFromMemoryExactlyAsStored) {
  auto b = open();
  clock_->set(1'700'000'000'000'000'000);
  NewRecord binary = make_record(std::string("\0\x01\xff{\"t\":21.5}\n", 13), "dev-7");
  binary.device_ts_ns = 1'650'000'000'123'000'000;
  binary.clock_synced = true;
  NewRecord stamped = make_record("stamped");
  stamped.ingest_ns = 42;
  NewRecord untyped = make_record("");
  untyped.content_type.clear();
  NewRecord targeted = make_record("for one sink");
  targeted.only_sink = "archive";
  ASSERT_TRUE(b->append_wait({binary, stamped}).ok());
  ASSERT_TRUE(b->append_wait({untyped, targeted}).ok());

  const auto from_memory = read_all(*b);
  EXPECT_EQ(b->stats().read_from_memory_total, 4u);
  EXPECT_EQ(b->stats().read_from_file_total, 0u);
  EXPECT_EQ(from_memory.at(0).ingest_ns, 1'700'000'000'000'000'000);  // filled at commit, as stored
  EXPECT_EQ(from_memory.at(3).only_sink, "archive");

  auto o = options();
  o.read_only = true;
  auto file = open(o);
  const auto from_file = read_all(*file);
  EXPECT_EQ(file->stats().read_from_file_total, 4u);
  expect_same_records(from_memory, from_file);
  expect_same_records(b->read_after(2, 10, SIZE_MAX).records, file->read_after(2, 10, SIZE_MAX).records);
}

// Memory holds only the newest commits (up to recent_records_bytes): a reader
// further behind is served from the file, and both give the same records.
TEST_F(BufferTest, AReaderBehindTheNewestCommitsReadsTheFile) {
  auto o = options();
  o.recent_records_bytes = 10 * (sizeof(Record) + accounted_size(make_record("r00")));
  auto b = open(o);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(b->append_wait(make_records(10)).ok());

  const auto all = read_all(*b);  // starts before memory's oldest: the file
  ASSERT_EQ(all.size(), 100u);
  EXPECT_EQ(b->stats().read_from_file_total, 100u);
  EXPECT_EQ(b->stats().read_from_memory_total, 0u);

  const auto newest = read_all(*b, 95);
  EXPECT_EQ(b->stats().read_from_memory_total, 5u);
  expect_same_records(newest, std::vector<Record>(all.begin() + 95, all.end()));
}

// Delivered, expired and evicted rows leave memory with the file: a reader
// never gets a record the file no longer has.
TEST_F(BufferTest, RecordsDeletedFromTheFileAreNotReadFromMemory) {
  auto o = options();
  o.max_records = 20;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(20)).ok());
  ASSERT_TRUE(b->append_wait(make_records(5, "new")).ok());  // evicts 1..5

  auto after_eviction = read_all(*b);
  ASSERT_EQ(after_eviction.size(), 20u);
  EXPECT_EQ(after_eviction.front().seq, 6u);
  EXPECT_EQ(b->stats().read_from_file_total, 20u);  // memory no longer starts at 1

  ASSERT_EQ(b->ack("s", 15), Status::kOk);
  EXPECT_GT(b->run_maintenance(), 0u);  // deletes 6..15
  auto after_delivery = read_all(*b);
  ASSERT_EQ(after_delivery.size(), 10u);
  EXPECT_EQ(after_delivery.front().seq, 16u);
  EXPECT_EQ(b->read_after(15, 100, SIZE_MAX).records.size(), 10u);
  EXPECT_GT(b->stats().read_from_memory_total, 0u);
}

TEST_F(BufferTest, RewindToSequenceReplaysAndClampsToTheOldestRetained) {
  auto o = options();
  o.max_records = 10;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  for (int i = 0; i < 15; ++i) ASSERT_TRUE(b->append_wait(make_records(1)).ok());
  ASSERT_EQ(b->ack("s", 15), Status::kOk);

  auto r = b->rewind_to_seq("s", 12);
  EXPECT_EQ(r.status, Status::kOk);
  EXPECT_FALSE(r.clamped);
  EXPECT_EQ(b->read("s", 100, SIZE_MAX).records.front().seq, 12u);

  r = b->rewind_to_seq("s", 2);  // 1..5 were evicted
  EXPECT_TRUE(r.clamped);
  EXPECT_EQ(b->read("s", 100, SIZE_MAX).records.front().seq, 6u);

  EXPECT_EQ(b->rewind_to_seq("s", 99).status, Status::kInvalidArgument);
  EXPECT_EQ(b->rewind_to_seq("x", 1).status, Status::kNotFound);
}

TEST_F(BufferTest, RewindToTimeStartsAtTheFirstRecordIngestedThen) {
  auto b = open();
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  const std::int64_t t0 = clock_->wall_ns();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b->append_wait(make_records(1)).ok());
    clock_->advance(std::chrono::minutes(1));
  }
  ASSERT_EQ(b->ack("s", 10), Status::kOk);
  auto r = b->rewind_to_time("s", t0 + std::chrono::nanoseconds(std::chrono::minutes(4)).count());
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_EQ(r.acked_seq, 4u);
  EXPECT_EQ(b->read("s", 100, SIZE_MAX).records.size(), 6u);
  // A time after everything: nothing to replay, the sink waits for new data.
  r = b->rewind_to_time("s", t0 + std::chrono::nanoseconds(std::chrono::hours(1)).count());
  EXPECT_EQ(r.acked_seq, 10u);
}

// ------------------------------------------------------------ caps

TEST_F(BufferTest, DropOldestEvictsLowestSequencesAndCountsLossPerSink) {
  auto o = options();
  o.max_records = 100;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("fast", StartPosition::kEarliest), Status::kOk);
  ASSERT_EQ(b->ensure_sink("slow", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(100)).ok());
  ASSERT_EQ(b->ack("fast", 30), Status::kOk);
  ASSERT_EQ(b->ack("slow", 10), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(50)).ok());

  auto s = b->stats();
  EXPECT_EQ(s.records, 100u);
  EXPECT_EQ(s.oldest_seq, 51u);
  EXPECT_EQ(s.newest_seq, 150u);
  // 1..10 had reached both sinks (expired, not lost); 11..50 had not.
  EXPECT_EQ(s.expired_total, 10u);
  EXPECT_EQ(s.evicted_total, 40u);
  std::map<std::string, SinkStats> by_name;
  for (const auto& k : s.sinks) by_name[k.name] = k;
  EXPECT_EQ(by_name["fast"].lost_by_eviction, 20u);  // 31..50
  EXPECT_EQ(by_name["slow"].lost_by_eviction, 40u);  // 11..50
  EXPECT_EQ(b->read("slow", 1, SIZE_MAX).records.at(0).seq, 51u);

  // The counts survive a restart.
  b.reset();
  b = open(o);
  s = b->stats();
  EXPECT_EQ(s.evicted_total, 40u);
  for (const auto& k : s.sinks) {
    if (k.name == "slow") {
      EXPECT_EQ(k.lost_by_eviction, 40u);
    }
  }
}

// Issue 19, defect 2: a record evicted while the batch holding it was in
// flight reaches the sink when that batch is acknowledged; it must not also
// be reported as lost. Only what the sink never got is lost.
TEST_F(BufferTest, RecordsEvictedWhileTheirBatchIsInFlightAreNotCountedAsLost) {
  auto o = options();
  o.max_records = 100;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("up", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(100)).ok());
  const auto in_flight = b->read("up", 30, SIZE_MAX).records;  // 1..30 being sent
  ASSERT_EQ(in_flight.size(), 30u);
  ASSERT_TRUE(b->append_wait(make_records(50)).ok());  // evicts 1..50 meanwhile
  ASSERT_EQ(b->stats().sinks.at(0).lost_by_eviction, 50u);

  ASSERT_EQ(b->ack("up", in_flight.back().seq, in_flight), Status::kOk);
  auto s = b->stats();
  EXPECT_EQ(s.sinks.at(0).lost_by_eviction, 20u);  // 31..50 never left the gateway
  EXPECT_EQ(s.evicted_total, 20u);
  EXPECT_EQ(s.expired_total, 30u);

  // The next batch starts after the gap: nothing more comes back, and the
  // loss stays exactly what was never sent, through a restart too.
  const auto next = b->read("up", 10, SIZE_MAX).records;
  ASSERT_EQ(next.front().seq, 51u);
  ASSERT_EQ(b->ack("up", next.back().seq, next), Status::kOk);
  b.reset();
  b = open(o);
  s = b->stats();
  EXPECT_EQ(s.sinks.at(0).lost_by_eviction, 20u);
  EXPECT_EQ(s.evicted_total, 20u);
}

// With two sinks, a record one sink got in flight but the other never got
// is still lost to the second: evicted_total counts it, the first sink's
// counter does not.
TEST_F(BufferTest, AnInFlightCreditIsPerSinkAndTheTotalKeepsWhatAnotherSinkLost) {
  auto o = options();
  o.max_records = 100;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("fast", StartPosition::kEarliest), Status::kOk);
  ASSERT_EQ(b->ensure_sink("slow", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(100)).ok());
  ASSERT_EQ(b->ack("fast", 30), Status::kOk);
  const auto fast_batch = b->read("fast", 20, SIZE_MAX).records;  // 31..50 in flight
  const auto slow_batch = b->read("slow", 10, SIZE_MAX).records;  // 1..10 in flight
  ASSERT_TRUE(b->append_wait(make_records(60)).ok());              // evicts 1..60

  ASSERT_EQ(b->ack("fast", fast_batch.back().seq, fast_batch), Status::kOk);
  ASSERT_EQ(b->ack("slow", slow_batch.back().seq, slow_batch), Status::kOk);
  std::map<std::string, SinkStats> by_name;
  auto s = b->stats();
  for (const auto& k : s.sinks) by_name[k.name] = k;
  EXPECT_EQ(by_name["fast"].lost_by_eviction, 10u);  // 51..60
  EXPECT_EQ(by_name["slow"].lost_by_eviction, 50u);  // 11..60
  // 1..10 reached both (slow's batch, fast before the eviction); 11..60 did
  // not reach slow.
  EXPECT_EQ(s.evicted_total, 50u);
  EXPECT_EQ(s.expired_total, 10u);
}

// A technician who has seen the losses acknowledges them; the all-time count
// stays, the news is only what came after. "Since start" is this process's.
TEST_F(BufferTest, AcknowledgedEvictionsAreRememberedAndOnlyLaterOnesAreNews) {
  auto o = options();
  o.max_records = 10;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("up", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(10)).ok());
  ASSERT_TRUE(b->append_wait(make_records(5)).ok());  // 5 lost
  auto s = b->stats();
  EXPECT_EQ(s.evicted_total, 5u);
  EXPECT_EQ(s.evicted_at_open, 0u);
  EXPECT_EQ(s.evicted_acknowledged, 0u);
  EXPECT_EQ(s.evicted_acknowledged_ns, 0);

  clock_->advance(std::chrono::minutes(3));
  ASSERT_EQ(b->acknowledge_evictions(), Status::kOk);
  s = b->stats();
  EXPECT_EQ(s.evicted_acknowledged, 5u);
  EXPECT_EQ(s.evicted_acknowledged_ns, clock_->wall_ns());

  b.reset();
  b = open(o);
  ASSERT_TRUE(b->append_wait(make_records(3)).ok());  // 3 more lost after the restart
  s = b->stats();
  EXPECT_EQ(s.evicted_total, 8u);
  EXPECT_EQ(s.evicted_at_open, 5u);       // 3 since this start
  EXPECT_EQ(s.evicted_acknowledged, 5u);  // 3 not yet acknowledged, through the restart
}

TEST_F(BufferTest, DropOldestByBytes) {
  auto o = options();
  const std::uint64_t each = accounted_size(make_record(std::string(100, 'x')));
  o.max_bytes = each * 10;
  auto b = open(o);
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(b->append_wait({make_record(std::string(100, 'x'))}).ok());
  auto s = b->stats();
  EXPECT_EQ(s.records, 10u);
  EXPECT_EQ(s.bytes, each * 10);
  EXPECT_EQ(s.oldest_seq, 16u);
  EXPECT_EQ(s.evicted_total, 15u);
}

TEST_F(BufferTest, RejectNewRefusesWithBackpressureAndLosesNothing) {
  auto o = options();
  o.max_records = 10;
  o.full_policy = FullPolicy::kRejectNew;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(10)).ok());
  auto refused = b->append_wait(make_records(1));
  EXPECT_EQ(refused.status, Status::kBackpressure);
  EXPECT_NE(refused.error.find("reject-new"), std::string::npos);
  auto s = b->stats();
  EXPECT_EQ(s.records, 10u);
  EXPECT_EQ(s.rejected_total, 1u);
  EXPECT_EQ(s.evicted_total, 0u);
  EXPECT_TRUE(log_.contains("appends refused: backpressure"));

  // Once the sink has them, delivered records make room.
  ASSERT_EQ(b->ack("s", 4), Status::kOk);
  auto accepted = b->append_wait(make_records(4));
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(accepted.first_seq, 11u);  // the refused call used no number
  s = b->stats();
  EXPECT_EQ(s.records, 10u);
  EXPECT_EQ(s.expired_total, 4u);
  EXPECT_EQ(s.evicted_total, 0u);
  EXPECT_TRUE(log_.contains("appends accepted again"));
}

// Sources' state (the MQTT listener's sessions) commits with the records it
// goes with, or not at all; state alone is never refused for room; it
// survives a reopen; a prefix selects one source's keys exactly.
TEST_F(BufferTest, SourceStateCommitsWithItsRecordsOrNotAtAll) {
  auto o = options();
  o.max_records = 2;
  o.full_policy = FullPolicy::kRejectNew;
  {
    auto b = open(o);
    auto append = [&](int n, std::vector<StateChange> state) {
      std::promise<AppendOutcome> done;
      b->append(make_records(n), std::move(state), [&](const AppendOutcome& out) { done.set_value(out); });
      return done.get_future().get();
    };
    ASSERT_TRUE(append(2, {{"l/a/s/c%1", "600"}, {"l/a/q2/c%1/7", ""}}).ok());
    EXPECT_EQ(append(1, {{"l/a/s/refused", "1"}}).status, Status::kBackpressure);  // full: neither
    ASSERT_TRUE(append(0, {{"l/a/q2/c%1/7", std::nullopt}, {"l/ab/s/other", "1"}}).ok());  // full, state alone
    EXPECT_EQ(b->source_state("l/a/"), (std::vector<std::pair<std::string, std::string>>{{"l/a/s/c%1", "600"}}));
  }
  auto b = open(o);
  EXPECT_EQ(b->source_state("l/a/"), (std::vector<std::pair<std::string, std::string>>{{"l/a/s/c%1", "600"}}));
  EXPECT_EQ(b->source_state("l/ab/").size(), 1u);
  EXPECT_EQ(b->source_state("").size(), 2u);
}

TEST_F(BufferTest, RefusalKeepsLaterCallsOfTheSameGroupOutToo) {
  auto o = options();
  o.max_records = 5;
  o.full_policy = FullPolicy::kRejectNew;
  o.commit_window = std::chrono::milliseconds(300);
  auto b = open(o);
  std::vector<std::future<AppendOutcome>> results;
  std::vector<std::shared_ptr<std::promise<AppendOutcome>>> promises;
  for (int n : {3, 3, 1}) {
    auto p = std::make_shared<std::promise<AppendOutcome>>();
    results.push_back(p->get_future());
    b->append(make_records(n), [p](const AppendOutcome& out) { p->set_value(out); });
  }
  EXPECT_TRUE(results[0].get().ok());
  EXPECT_EQ(results[1].get().status, Status::kBackpressure);
  // The 1-record call would fit, but accepting it would put it ahead of the
  // refused call that its producer will retry.
  EXPECT_EQ(results[2].get().status, Status::kBackpressure);
}

TEST_F(BufferTest, BatchLargerThanTheCapIsRefused) {
  auto o = options();
  o.max_records = 3;
  auto b = open(o);
  EXPECT_EQ(b->append_wait(make_records(4)).status, Status::kBackpressure);
  EXPECT_EQ(b->stats().records, 0u);
}

// ------------------------------------------------------------ retention

TEST_F(BufferTest, DeliveredRecordsAreDeletedWithoutRetention) {
  auto b = open();
  ASSERT_EQ(b->ensure_sink("a", StartPosition::kEarliest), Status::kOk);
  ASSERT_EQ(b->ensure_sink("b", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(10)).ok());
  ASSERT_EQ(b->ack("a", 10), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 0u);  // "b" has nothing yet
  ASSERT_EQ(b->ack("b", 6), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 6u);
  auto s = b->stats();
  EXPECT_EQ(s.records, 4u);
  EXPECT_EQ(s.oldest_seq, 7u);
  EXPECT_EQ(s.expired_total, 6u);
}

TEST_F(BufferTest, WithoutAnySinkNothingExpires) {
  auto b = open();
  ASSERT_TRUE(b->append_wait(make_records(10)).ok());
  EXPECT_EQ(b->run_maintenance(), 0u);
  EXPECT_EQ(b->stats().records, 10u);
}

TEST_F(BufferTest, RetentionTimeKeepsDeliveredRecordsForReplay) {
  auto o = options();
  o.retention_time = std::chrono::hours(1);
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(5)).ok());
  clock_->advance(std::chrono::minutes(40));
  ASSERT_TRUE(b->append_wait(make_records(5)).ok());
  ASSERT_EQ(b->ack("s", 10), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 0u);
  clock_->advance(std::chrono::minutes(30));  // first five are 70 min old
  EXPECT_EQ(b->run_maintenance(), 5u);
  // A new sink can still replay what is retained.
  ASSERT_EQ(b->ensure_sink("late", StartPosition::kEarliest), Status::kOk);
  EXPECT_EQ(b->read("late", 100, SIZE_MAX).records.size(), 5u);
}

TEST_F(BufferTest, RetentionBytesBoundsDeliveredData) {
  auto o = options();
  o.retention_time = std::chrono::hours(24);
  const std::uint64_t each = accounted_size(make_record("0123456789"));
  o.retention_bytes = each * 3;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(b->append_wait({make_record("0123456789")}).ok());
  ASSERT_EQ(b->ack("s", 8), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 5u);  // keeps 6..8 delivered, 9..10 pending
  EXPECT_EQ(b->stats().oldest_seq, 6u);
}

TEST_F(BufferTest, RetentionWorksInBoundedChunks) {
  auto o = options();
  o.maintenance_chunk = 10;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(35)).ok());
  ASSERT_EQ(b->ack("s", 35), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 10u);
  EXPECT_EQ(b->run_maintenance(), 10u);
  EXPECT_EQ(b->run_maintenance(), 10u);
  EXPECT_EQ(b->run_maintenance(), 5u);
  EXPECT_EQ(b->run_maintenance(), 0u);
}

TEST_F(BufferTest, BackgroundMaintenanceRunsOnItsOwn) {
  auto o = options();
  o.maintenance_interval = std::chrono::milliseconds(20);
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(20)).ok());
  ASSERT_EQ(b->ack("s", 20), Status::kOk);
  EXPECT_TRUE(testing::wait_for([&] { return b->stats().records == 0; }));
}

TEST_F(BufferTest, RemovingASinkReleasesWhatItHeldBack) {
  auto b = open();
  ASSERT_EQ(b->ensure_sink("live", StartPosition::kEarliest), Status::kOk);
  ASSERT_EQ(b->ensure_sink("retired", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(8)).ok());
  ASSERT_EQ(b->ack("live", 8), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 0u);
  ASSERT_EQ(b->remove_sink("retired"), Status::kOk);
  EXPECT_EQ(b->remove_sink("retired"), Status::kNotFound);
  EXPECT_EQ(b->run_maintenance(), 8u);
}

// ------------------------------------------------------------ dead letters

TEST_F(BufferTest, DeadLettersKeepRecordAndReasonAcrossRestarts) {
  {
    auto b = open();
    ASSERT_EQ(b->ensure_sink("kinesis", StartPosition::kEarliest), Status::kOk);
    ASSERT_TRUE(b->append_wait({make_record("ok"), make_record(std::string(2000, 'z'))}).ok());
    auto rec = b->read("kinesis", 10, SIZE_MAX).records.at(1);
    ASSERT_EQ(b->add_dead_letter("kinesis", rec.seq, rec, "record larger than 1 MiB"), Status::kOk);
    ASSERT_EQ(b->add_dead_letter("", std::nullopt, make_record("{not json"), "payload is not JSON"),
              Status::kOk);
  }
  auto b = open();
  auto letters = b->dead_letters(10);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].sink, "kinesis");
  EXPECT_EQ(letters[0].seq, 2u);
  EXPECT_EQ(letters[0].reason, "record larger than 1 MiB");
  EXPECT_EQ(letters[0].record.payload, std::string(2000, 'z'));
  EXPECT_EQ(letters[1].sink, "");
  EXPECT_FALSE(letters[1].seq.has_value());
  EXPECT_EQ(letters[1].record.payload, "{not json");
  EXPECT_EQ(b->dead_letters(10, letters[0].id).size(), 1u);
  auto s = b->stats();
  EXPECT_EQ(s.dead_letters, 2u);
  EXPECT_EQ(s.dead_lettered_total, 2u);
  ASSERT_EQ(b->clear_dead_letters(), Status::kOk);
  s = b->stats();
  EXPECT_EQ(s.dead_letters, 0u);
  EXPECT_EQ(s.dead_lettered_total, 2u);  // a lifetime counter
}

// A replay moves dead letters back as new records in one transaction: new
// sequence numbers, the original ingest time, marked for the sink that
// refused each (input refused at ingest: for every sink). The mark survives
// a restart and goes with the record when retention removes it.
TEST_F(BufferTest, ReplayedDeadLettersComeBackAsNewRecordsForTheSinkThatRefusedThem) {
  const std::int64_t ingested = 1'700'000'000'000'000'000;
  {
    auto b = open();
    ASSERT_EQ(b->ensure_sink("kinesis", StartPosition::kEarliest), Status::kOk);
    auto r = make_record("{\"t\":1}");
    r.ingest_ns = ingested;
    ASSERT_TRUE(b->append_wait({r, make_record("b")}).ok());
    auto rec = b->read("kinesis", 10, SIZE_MAX).records.at(0);
    ASSERT_EQ(b->add_dead_letter("kinesis", rec.seq, rec, "HTTP 400"), Status::kOk);
    ASSERT_EQ(b->add_dead_letter("", std::nullopt, make_record("{not json"), "payload is not JSON"), Status::kOk);
    ASSERT_EQ(b->add_dead_letter("file", 2, make_record("c"), "too large"), Status::kOk);
    const auto ids = b->dead_letters(10);
    ASSERT_EQ(ids.size(), 3u);

    buffer::DeadLetterSelection two;
    two.ids = {ids[0].id, ids[1].id, 999};  // an unknown id is passed over
    const auto replayed = b->replay_dead_letters(two);
    ASSERT_EQ(replayed.status, Status::kOk) << replayed.error;
    EXPECT_EQ(replayed.count, 2u);
    EXPECT_EQ(replayed.first_seq, 3u);
    EXPECT_EQ(b->stats().dead_letters, 1u);
    EXPECT_EQ(b->replay_dead_letters(two).count, 0u);  // once only
  }
  auto b = open();
  auto back = b->read_after(2, 10, SIZE_MAX).records;
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].seq, 3u);
  EXPECT_EQ(back[0].payload, "{\"t\":1}");
  EXPECT_EQ(back[0].ingest_ns, ingested);
  EXPECT_EQ(back[0].only_sink, "kinesis");
  EXPECT_EQ(back[1].payload, "{not json");
  EXPECT_EQ(back[1].only_sink, "");
  EXPECT_EQ(b->read_after(0, 10, SIZE_MAX).records.at(0).only_sink, "");

  // --to-sink overrides; clear by id and by age.
  buffer::DeadLetterSelection all;
  all.all = true;
  const auto to_file = b->replay_dead_letters(all, "archive");
  ASSERT_EQ(to_file.count, 1u);
  EXPECT_EQ(b->read_after(4, 10, SIZE_MAX).records.at(0).only_sink, "archive");
  ASSERT_EQ(b->add_dead_letter("kinesis", 1, make_record("old"), "x"), Status::kOk);
  ASSERT_EQ(b->add_dead_letter("kinesis", 2, make_record("new"), "x"), Status::kOk);
  buffer::DeadLetterSelection none_older;
  none_older.failed_before_ns = 1;
  EXPECT_EQ(b->clear_dead_letters(none_older).count, 0u);
  buffer::DeadLetterSelection first;
  first.ids = {b->dead_letters(10).at(0).id};
  EXPECT_EQ(b->clear_dead_letters(first).count, 1u);
  EXPECT_EQ(b->dead_letters(10).at(0).record.payload, "new");
  EXPECT_EQ(b->clear_dead_letters(all).count, 1u);
  EXPECT_EQ(b->stats().dead_letters, 0u);

  // Retention removes the marks with the records.
  ASSERT_EQ(b->ack("kinesis", 5), Status::kOk);
  EXPECT_EQ(b->run_maintenance(), 5u);
  ASSERT_TRUE(b->append_wait(make_records(1)).ok());
  EXPECT_EQ(b->read_after(5, 10, SIZE_MAX).records.at(0).only_sink, "");
}

// A reload lowers the cap on the open buffer: the next commit evicts down
// to it, counted as at any eviction; the figures show the new limits.
TEST_F(BufferTest, LimitsAppliedToAnOpenBufferTakeEffectAtTheNextCommit) {
  auto o = options();
  o.max_bytes = 0;
  o.max_records = 0;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("cloud", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(10)).ok());
  auto limits = o;
  limits.max_records = 5;
  limits.full_policy = FullPolicy::kDropOldest;
  b->apply_limits(limits);
  EXPECT_EQ(b->stats().max_records, 5u);
  ASSERT_TRUE(b->append_wait(make_records(1)).ok());
  const auto s = b->stats();
  EXPECT_EQ(s.records, 5u);
  EXPECT_EQ(s.evicted_total, 6u);
  EXPECT_EQ(read_all(*b).front().seq, 7u);
}

// ------------------------------------------------------------ disk

TEST_F(BufferTest, DiskReserveStopsGrowthUnderDropOldest) {
  auto o = options();
  o.disk_reserve_bytes = 100 << 20;
  auto b = open(o);
  ASSERT_TRUE(b->append_wait(make_records(10, "aaa")).ok());
  disk_->set(std::uint64_t{50} << 20);  // below the reserve
  ASSERT_TRUE(b->append_wait(make_records(3, "bbb")).ok());
  auto s = b->stats();
  EXPECT_TRUE(s.disk_reserve_reached);
  EXPECT_EQ(s.records, 10u);  // grew by none: the three oldest made room
  EXPECT_EQ(s.oldest_seq, 4u);
  EXPECT_EQ(s.evicted_total, 3u);
  EXPECT_TRUE(log_.contains("below the reserve"));
  disk_->set(std::uint64_t{500} << 20);
  ASSERT_TRUE(b->append_wait(make_records(3, "ccc")).ok());
  EXPECT_EQ(b->stats().records, 13u);
  EXPECT_FALSE(b->stats().disk_reserve_reached);
}

TEST_F(BufferTest, DiskReserveRefusesUnderRejectNew) {
  auto o = options();
  o.full_policy = FullPolicy::kRejectNew;
  o.disk_reserve_bytes = 100 << 20;
  auto b = open(o);
  ASSERT_TRUE(b->append_wait(make_records(10)).ok());
  disk_->set(std::uint64_t{1} << 20);
  auto refused = b->append_wait(make_records(1));
  EXPECT_EQ(refused.status, Status::kBackpressure);
  EXPECT_NE(refused.error.find("reserve"), std::string::npos);
  EXPECT_EQ(b->stats().records, 10u);
}

// Issue "proof under faults", defect 1: once a backlog drained, the file
// keeps its size (SQLite reuses the freed pages, it does not give them back),
// so free disk stays under the reserve. Those pages are room: appends that
// fit in them go on, and only growth beyond them is refused.
TEST_F(BufferTest, DiskReserveCountsFreePagesInsideTheFileAsRoom) {
  auto o = options();
  o.full_policy = FullPolicy::kRejectNew;
  o.disk_reserve_bytes = 100 << 20;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("up", StartPosition::kEarliest), Status::kOk);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(b->append_wait(make_records(100, std::string(1000, 'x'))).ok());
  ASSERT_EQ(b->ack("up", 2000), Status::kOk);
  while (b->run_maintenance() > 0) {
  }
  ASSERT_EQ(b->stats().records, 0u);
  disk_->set(std::uint64_t{1} << 20);  // the drained file holds the disk: below the reserve
  // About 2 MB of free pages inside the file: a few hundred readings fit.
  for (int i = 0; i < 5; ++i) {
    const auto outcome = b->append_wait(make_records(100, std::string(1000, 'y')));
    ASSERT_TRUE(outcome.ok()) << "round " << i << ": " << outcome.error;
  }
  EXPECT_TRUE(b->stats().disk_reserve_reached);
  // Growth past the free pages is still refused.
  AppendOutcome refused;
  for (int i = 0; i < 40 && refused.ok(); ++i) refused = b->append_wait(make_records(100, std::string(1000, 'z')));
  EXPECT_EQ(refused.status, Status::kBackpressure);
  EXPECT_NE(refused.error.find("reserve"), std::string::npos);
  EXPECT_LT(b->stats().records, 2500u);
}

TEST_F(BufferTest, SqliteFullFailsCleanlyAndKeepsWhatWasCommitted) {
  auto o = options();
  o.page_size = 4096;
  o.max_page_count = 40;  // ~160 KiB with 4 KiB pages: SQLite answers SQLITE_FULL
  std::uint64_t committed_last = 0;
  std::uint64_t committed_count = 0;
  {
    auto b = open(o);
    AppendOutcome outcome;
    for (int i = 0; i < 1000; ++i) {
      outcome = b->append_wait({make_record(std::string(500, 'f'))});
      if (!outcome.ok()) break;
      committed_last = outcome.first_seq;
      committed_count += 1;
    }
    ASSERT_EQ(outcome.status, Status::kDiskFull) << outcome.error;
    EXPECT_GT(committed_count, 50u);
    // Still consistent and usable for reads and further (failing) appends.
    EXPECT_EQ(b->append_wait(make_records(1)).status, Status::kDiskFull);
    auto s = b->stats();
    EXPECT_EQ(s.disk_full_total, 2u);
    EXPECT_EQ(s.records, committed_count);
    EXPECT_TRUE(b->verify().ok);
    EXPECT_TRUE(log_.contains("disk-full"));
  }
  o.max_page_count = 0;  // space returns
  auto b = open(o);
  EXPECT_EQ(read_all(*b).size(), committed_count);
  auto next = b->append_wait(make_records(1));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next.first_seq, committed_last + 1);  // failed attempts used no numbers
}

// ------------------------------------------------------------ damage

void write_bytes(const std::filesystem::path& p, std::uint64_t offset, const std::string& bytes) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good());
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST_F(BufferTest, GarbageFileIsMovedAsideAndAFreshBufferStarts) {
  const auto path = options().path;
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 10000; ++i) f << static_cast<char>((i * 7919) & 0xff);
  }
  auto b = open();
  const auto& report = b->open_report();
  EXPECT_TRUE(report.recovered);
  EXPECT_FALSE(report.problem.empty());
  EXPECT_TRUE(std::filesystem::exists(report.moved_aside_to));
  EXPECT_NE(report.moved_aside_to.filename().string().find("buffer.db.corrupt-"), std::string::npos);
  EXPECT_EQ(std::filesystem::file_size(report.moved_aside_to), 10000u);  // kept as found
  EXPECT_EQ(report.salvaged_records, 0u);
  EXPECT_TRUE(b->append_wait(make_records(3)).ok());
  EXPECT_TRUE(b->verify().ok);
  EXPECT_TRUE(log_.contains("is damaged"));
}

// Issue 19, defect 3: a file cut to half its size salvaged none of its
// 20,000 records, although its first half holds leaf pages with them: the
// interior pages SQLite reaches them through were in the lost half. The
// salvage now reads the leaf pages themselves.
TEST_F(BufferTest, AFileCutToHalfItsSizeGivesBackTheRecordsInItsFirstHalf) {
  const auto path = options().path;
  constexpr int kRecords = 20000;
  {
    auto b = open();
    ASSERT_EQ(b->ensure_sink("cloud", StartPosition::kEarliest), Status::kOk);
    for (int i = 0; i < kRecords; i += 1000) {
      auto batch = make_records(1000, "r");
      for (int j = 0; j < 1000; ++j) batch[j].payload = "reading-" + std::to_string(i + j);
      ASSERT_TRUE(b->append_wait(std::move(batch)).ok());
    }
  }  // closing checkpoints the WAL into the main file
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);

  auto b = open();
  const auto& report = b->open_report();
  ASSERT_TRUE(report.recovered);
  EXPECT_GT(report.salvaged_records, kRecords / 3u) << "most of the first half comes back";
  EXPECT_LE(report.salvaged_records, static_cast<std::uint64_t>(kRecords));
  const auto records = read_all(*b);
  ASSERT_EQ(records.size(), report.salvaged_records);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i > 0) {
      ASSERT_LT(records[i - 1].seq, records[i].seq);
    }
    ASSERT_EQ(records[i].payload, "reading-" + std::to_string(records[i].seq - 1)) << "exactly as stored";
    ASSERT_EQ(records[i].partition_key, "dev-1");
  }
  EXPECT_TRUE(log_.contains("found in leaf pages"));
  std::printf("salvaged %llu of %d records from a file cut to half its size\n",
              static_cast<unsigned long long>(report.salvaged_records), kRecords);
  EXPECT_TRUE(b->verify().ok);
  EXPECT_GT(b->append_wait(make_records(1)).first_seq, records.back().seq);
}

TEST_F(BufferTest, DamagedPagesAreSalvagedAroundAndSequencesStayAbove) {
  const auto path = options().path;
  constexpr int kRecords = 3000;
  {
    auto b = open();
    ASSERT_EQ(b->ensure_sink("cloud", StartPosition::kEarliest), Status::kOk);
    ASSERT_TRUE(b->append_wait(make_records(kRecords, std::string(200, 'p'))).ok());
    ASSERT_EQ(b->ack("cloud", 100), Status::kOk);
  }  // closing checkpoints the WAL into the main file
  ASSERT_FALSE(std::filesystem::exists(std::filesystem::path(path).concat("-wal")) &&
               std::filesystem::file_size(std::filesystem::path(path).concat("-wal")) > 0);
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 100u * 4096);
  // Wreck three pages in the middle of the records table.
  const std::uint64_t page = 4096;
  const std::uint64_t mid = (size / page / 2) * page;
  write_bytes(path, mid, std::string(3 * page, '\x5a'));

  auto b = open();
  const auto& report = b->open_report();
  ASSERT_TRUE(report.recovered);
  EXPECT_GT(report.salvaged_records, kRecords / 2u);
  EXPECT_LT(report.salvaged_records, static_cast<std::uint64_t>(kRecords));
  EXPECT_EQ(report.salvaged_cursors, 1u);
  EXPECT_EQ(b->acked_seq("cloud"), 100u);
  auto records = read_all(*b);
  ASSERT_EQ(records.size(), report.salvaged_records);
  EXPECT_EQ(records.front().seq, 1u);
  EXPECT_EQ(records.back().seq, static_cast<std::uint64_t>(kRecords));  // the tail came through
  for (std::size_t i = 1; i < records.size(); ++i) ASSERT_LT(records[i - 1].seq, records[i].seq);
  for (const auto& r : records) {
    ASSERT_EQ(r.payload, std::string(200, 'p') + std::to_string(r.seq - 1));
  }
  EXPECT_GT(b->append_wait(make_records(1)).first_seq, static_cast<std::uint64_t>(kRecords));
  EXPECT_TRUE(b->verify().ok);
  auto s = b->stats();
  EXPECT_EQ(s.records, report.salvaged_records + 1);
}

TEST_F(BufferTest, AForeignSqliteFileIsRefusedAndLeftAlone) {
  const auto path = options().path;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE invoices(id INTEGER); INSERT INTO invoices VALUES (1);", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  const auto before = std::filesystem::file_size(path);
  try {
    open();
    FAIL() << "expected BufferError";
  } catch (const BufferError& e) {
    EXPECT_NE(std::string(e.what()).find("not a tidegate buffer"), std::string::npos);
  }
  EXPECT_EQ(std::filesystem::file_size(path), before);
}

TEST_F(BufferTest, ABufferFromANewerVersionIsRefused) {
  { auto b = open(); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(options().path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  EXPECT_THROW(open(), BufferError);
}

TEST_F(BufferTest, UnwritableDirectoryIsAClearError) {
  auto o = options();
  o.path = "/proc/tidegate/buffer.db";
  try {
    open(o);
    FAIL() << "expected BufferError";
  } catch (const BufferError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/tidegate"), std::string::npos);
  }
}

TEST_F(BufferTest, ReadOnlyOpenInspectsWithoutChanging) {
  {
    auto b = open();
    ASSERT_TRUE(b->append_wait(make_records(4)).ok());
  }
  auto o = options();
  o.read_only = true;
  auto ro = open(o);
  EXPECT_EQ(ro->stats().records, 4u);
  EXPECT_EQ(read_all(*ro).size(), 4u);
  EXPECT_FALSE(ro->append_wait(make_records(1)).ok());
  o.path = dir_ / "missing.db";
  EXPECT_THROW(open(o), BufferError);
  EXPECT_FALSE(std::filesystem::exists(o.path));
}

// One writer per file: a second gateway on the same buffer would forward the
// same records twice and fight over the cursors. Readers are welcome.
TEST_F(BufferTest, ASecondWriterIsRefusedWhileTheFirstHoldsTheFile) {
  auto first = open();
  ASSERT_TRUE(first->append_wait(make_records(2)).ok());
  try {
    open();
    FAIL() << "expected BufferInUse";
  } catch (const BufferInUse& e) {
    EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos) << e.what();
  }
  auto o = options();
  o.read_only = true;
  EXPECT_EQ(open(o)->stats().records, 2u);
  first.reset();
  EXPECT_EQ(open()->stats().records, 2u);  // released on close
}

// ------------------------------------------------------------ figures

// ------------------------------------------------------------ writes (SD-card wear)

// Runs `work` in a child process, which must end with std::_Exit(0) while
// its buffer is open: nothing is closed, as kill -9 would leave the files
// (what was written is in the OS). The child starts with no buffer threads:
// fork happens before any open.
void in_a_process_that_crashes(const std::function<void()>& work) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    work();
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed: " << status;
}

std::uint64_t size_of(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

TEST_F(BufferTest, ACommitOfAFewRecordsWritesOnePageToTheWal) {
  auto b = open();
  const auto wal = std::filesystem::path(options().path).concat("-wal");
  ASSERT_TRUE(b->append_wait({make_record("first")}).ok());
  const auto before = size_of(wal);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(b->append_wait({make_record("more-" + std::to_string(i))}).ok());
  // One frame (page + 24-byte header) per commit: the records' leaf page,
  // no counters page beside it.
  EXPECT_EQ(size_of(wal) - before, 3u * (1024 + 24));
}

TEST_F(BufferTest, ANewFileTakesThePageSizeAndAnExistingFileKeepsItsOwn) {
  auto page_size_of = [&] {
    std::ifstream in(options().path, std::ios::binary);
    unsigned char header[18] = {};
    in.read(reinterpret_cast<char*>(header), sizeof header);
    return (header[16] << 8) | header[17];
  };
  {
    auto o = options();
    o.page_size = 4096;
    auto b = open(o);
    ASSERT_TRUE(b->append_wait(make_records(3)).ok());
  }
  EXPECT_EQ(page_size_of(), 4096);
  auto b = open();  // asks for 1024
  ASSERT_TRUE(b->append_wait(make_records(3)).ok());
  EXPECT_EQ(b->stats().records, 6u);
  EXPECT_EQ(page_size_of(), 4096);
}

TEST_F(BufferTest, AfterACrashSequencesAndBytesComeFromTheNewestRecord) {
  std::uint64_t bytes = 0;
  std::vector<NewRecord> first;
  for (int i = 0; i < 7; ++i) first.push_back(make_record(std::string(static_cast<std::size_t>(10 + i * 13), 'p'), "dévice-" + std::to_string(i)));
  for (const auto& r : first) bytes += accounted_size(r);
  in_a_process_that_crashes([&] {
    auto b = open();
    for (const auto& r : first) {
      if (!b->append_wait({r}).ok()) std::_Exit(1);
    }
    std::_Exit(0);
  });
  {
    auto b = open();
    auto s = b->stats();
    EXPECT_EQ(s.next_seq, 8u);
    EXPECT_EQ(s.records, 7u);
    EXPECT_EQ(s.bytes, bytes);
    EXPECT_EQ(b->append_wait({make_record("next")}).first_seq, 8u);
    EXPECT_EQ(b->stats().bytes, bytes + accounted_size(make_record("next")));
  }
  // Everything delivered and deleted, then two more, then a crash: the
  // counters written by the deleting transaction plus the newest row.
  in_a_process_that_crashes([&] {
    auto b = open();
    if (b->ensure_sink("cloud", StartPosition::kEarliest) != Status::kOk) std::_Exit(1);
    if (b->ack("cloud", 8) != Status::kOk || b->run_maintenance() != 8) std::_Exit(2);
    if (b->append_wait(make_records(2)).first_seq != 9) std::_Exit(3);
    std::_Exit(0);
  });
  auto b = open();
  auto s = b->stats();
  EXPECT_EQ(s.next_seq, 11u);
  EXPECT_EQ(s.records, 2u);
  std::uint64_t two = 0;
  for (const auto& r : make_records(2)) two += accounted_size(r);
  EXPECT_EQ(s.bytes, two);
  EXPECT_EQ(s.expired_total, 8u);
}

TEST_F(BufferTest, AcksReachTheFileWithMaintenanceSoACrashResendsOnlyWhatCameAfter) {
  in_a_process_that_crashes([&] {
    auto b = open();
    if (b->ensure_sink("cloud", StartPosition::kEarliest) != Status::kOk) std::_Exit(1);
    if (!b->append_wait(make_records(10)).ok()) std::_Exit(2);
    if (b->ack("cloud", 4) != Status::kOk || b->run_maintenance() != 4) std::_Exit(3);
    if (b->ack("cloud", 7) != Status::kOk) std::_Exit(4);  // in memory only when the process dies
    std::_Exit(0);
  });
  auto b = open();
  EXPECT_EQ(b->acked_seq("cloud"), 4u);  // behind the ack, never beyond it
  auto again = b->read("cloud", 100, SIZE_MAX).records;
  ASSERT_EQ(again.size(), 6u);  // 5..7 are sent again, 8..10 for the first time
  EXPECT_EQ(again.front().seq, 5u);
  EXPECT_EQ(again.back().seq, 10u);
}

TEST_F(BufferTest, ADeliveredBacklogIsDeletedWithoutWaitingForTheInterval) {
  auto o = options();
  o.maintenance_after_records = 10;
  o.maintenance_chunk = 10;
  auto b = open(o);  // maintenance_interval: an hour
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  ASSERT_TRUE(b->append_wait(make_records(35)).ok());
  ASSERT_EQ(b->ack("s", 5), Status::kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(b->stats().records, 35u);  // under a chunk: waits for the interval
  ASSERT_EQ(b->ack("s", 35), Status::kOk);
  // Chunk after chunk while a full one waits; the last 5 wait for the interval.
  EXPECT_TRUE(testing::wait_for([&] { return b->stats().records == 5; }));
  EXPECT_EQ(b->stats().expired_total, 30u);
}

TEST_F(BufferTest, StatsReportLagBytesAndAges) {
  auto b = open();
  ASSERT_EQ(b->ensure_sink("s", StartPosition::kEarliest), Status::kOk);
  const std::int64_t t0 = clock_->wall_ns();
  ASSERT_TRUE(b->append_wait(make_records(4)).ok());
  clock_->advance(std::chrono::seconds(30));
  ASSERT_TRUE(b->append_wait(make_records(6)).ok());
  ASSERT_EQ(b->ack("s", 4), Status::kOk);
  auto s = b->stats();
  EXPECT_EQ(s.records, 10u);
  EXPECT_EQ(s.oldest_seq, 1u);
  EXPECT_EQ(s.newest_seq, 10u);
  EXPECT_EQ(s.next_seq, 11u);
  EXPECT_EQ(s.oldest_ingest_ns, t0);
  EXPECT_EQ(s.newest_ingest_ns, t0 + 30'000'000'000);
  ASSERT_EQ(s.sinks.size(), 1u);
  EXPECT_EQ(s.sinks[0].lag_records, 6u);
  std::uint64_t expected_bytes = 0;
  for (const auto& r : make_records(6)) expected_bytes += accounted_size(r);
  EXPECT_EQ(s.sinks[0].lag_bytes, expected_bytes);
  EXPECT_EQ(s.sinks[0].oldest_undelivered_ingest_ns, t0 + 30'000'000'000);
  EXPECT_GT(s.commits_total, 0u);
  EXPECT_GT(s.file_bytes, 0u);
  ASSERT_EQ(b->ack("s", 10), Status::kOk);
  s = b->stats();
  EXPECT_EQ(s.sinks[0].lag_records, 0u);
  EXPECT_FALSE(s.sinks[0].oldest_undelivered_ingest_ns.has_value());
}

TEST_F(BufferTest, IngestForwardAndStatusThreadsRunTogether) {
  auto o = options();
  o.max_records = 5000;
  auto b = open(o);
  ASSERT_EQ(b->ensure_sink("a", StartPosition::kEarliest), Status::kOk);
  ASSERT_EQ(b->ensure_sink("b", StartPosition::kEarliest), Status::kOk);
  constexpr std::uint64_t kTotal = 20000;
  std::atomic<bool> ingest_done{false};
  testing::Deadline deadline(std::chrono::seconds(120));
  std::thread ingest([&] {
    testing::SetOnExit done(ingest_done);  // also when an ASSERT below fails
    for (std::uint64_t i = 0; i < kTotal / 100; ++i) ASSERT_TRUE(b->append_wait(make_records(100)).ok());
  });
  auto forwarder = [&](const std::string& sink, std::uint64_t& received, bool& ordered) {
    std::uint64_t last = 0;
    while (!deadline.expired(sink.c_str())) {
      auto batch = b->read(sink, 500, SIZE_MAX);
      if (batch.records.empty()) {
        if (ingest_done && b->stats().queued_records == 0 && b->read(sink, 1, SIZE_MAX).records.empty()) break;
        std::this_thread::yield();
        continue;
      }
      for (const auto& r : batch.records) {
        if (r.seq <= last) ordered = false;
        last = r.seq;
      }
      received += batch.records.size();
      ASSERT_EQ(b->ack(sink, last, batch.records), Status::kOk);
    }
  };
  std::uint64_t got_a = 0, got_b = 0;
  bool ord_a = true, ord_b = true;
  std::thread fa([&] { forwarder("a", got_a, ord_a); });
  std::thread fb([&] { forwarder("b", got_b, ord_b); });
  std::thread status([&] {
    while (!ingest_done) {
      auto s = b->stats();
      EXPECT_LE(s.records, 5000u);
      b->run_maintenance();
    }
  });
  ingest.join();
  fa.join();
  fb.join();
  status.join();
  EXPECT_TRUE(ord_a);
  EXPECT_TRUE(ord_b);
  auto s = b->stats();
  // Every record reached each sink or was counted as lost to it, never
  // both: a record evicted while its batch was in flight is delivered, and
  // the ack that names it takes it off the loss. No sink saw one twice.
  for (const auto& k : s.sinks) {
    const std::uint64_t got = k.name == "a" ? got_a : got_b;
    EXPECT_EQ(got + k.lost_by_eviction, kTotal) << k.name;
    EXPECT_LE(got, kTotal) << k.name;
  }
  EXPECT_TRUE(b->verify().ok);
}

}  // namespace
}  // namespace tidegate::buffer
