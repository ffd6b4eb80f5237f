// Stateful processing: the window and deadband operators against scripted
// input (exact outputs, times given), and the derived stream that runs them
// over a real buffer (state across restarts, a changed definition, rewind).
// The exactly-once proof under kill -9 is tests/integration/streams_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <thread>

#include "test_support.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/streams/deadband.h"
#include "tidegate/streams/derived_stream.h"
#include "tidegate/streams/window.h"

namespace tidegate::streams {
namespace {

using buffer::NewRecord;
using buffer::Record;
using Json = nlohmann::json;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kT0 = 1'800'000'000 * kSecond;  // a round minute: windows start on it

Record reading(std::uint64_t seq, std::int64_t at_s, const std::string& device, const std::string& payload) {
  Record r;
  r.seq = seq;
  r.ingest_ns = kT0 + at_s * kSecond;
  r.source = "meters";
  r.partition_key = device;
  r.topic = "site/" + device;
  r.payload = payload;
  r.content_type = "application/json";
  return r;
}

Record value_at(std::uint64_t seq, double at_s, const std::string& device, double v) {
  Record r = reading(seq, 0, device, Json{{"v", v}}.dump());
  r.ingest_ns = kT0 + static_cast<std::int64_t>(at_s * 1e9);
  return r;
}

double counter(const StreamOperator& op, const std::string& name) {
  for (const auto& c : op.counters()) {
    if (c.name == name) return c.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return -1;
}

// ------------------------------------------------------------ deadband

TEST(DeadbandTest, AScriptedSeriesGoesOutExactlyAtBandExitsAndSilenceConfirmations) {
  DeadbandOptions o;
  o.name = "db";
  o.fields = {"v"};
  o.band = 0.5;
  o.max_silence_ns = 60 * kSecond;
  Deadband op(o);
  std::vector<NewRecord> out;
  std::vector<double> sent;
  auto feed = [&](std::uint64_t seq, double at, double v) { op.feed(value_at(seq, at, "d1", v), out); };
  feed(1, 0, 20.0);    // first value: out
  feed(2, 10, 20.3);   // 0.3 within the band
  feed(3, 20, 20.6);   // 0.6 from 20.0: out
  feed(4, 30, 20.2);   // 0.4 from 20.6
  feed(5, 40, 20.1);   // 0.5 exactly: still within
  feed(6, 85, 20.15);  // 65 s since the last report: a confirmation, record-driven
  feed(7, 100, 20.2);  // within, held back
  op.tick(kT0 + 140 * kSecond, true, out);  // 55 s since the report: not yet
  EXPECT_EQ(op.next_deadline_ns(), kT0 + 145 * kSecond);
  op.tick(kT0 + 146 * kSecond, false, out);  // input still unread: the clock must not decide
  op.tick(kT0 + 146 * kSecond, true, out);   // silence over: the held t=100 reading goes out
  op.tick(kT0 + 300 * kSecond, true, out);   // nothing held: nothing more
  for (const auto& r : out) sent.push_back(Json::parse(r.payload).at("v").get<double>());
  EXPECT_EQ(sent, (std::vector<double>{20.0, 20.6, 20.15, 20.2}));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3].ingest_ns, kT0 + 100 * kSecond) << "a confirmation is the reading as it came, with its time";
  EXPECT_EQ(out[3].topic, "site/d1");
  EXPECT_EQ(counter(op, "reported_total"), 2);
  EXPECT_EQ(counter(op, "confirmations_total"), 2);
  EXPECT_EQ(counter(op, "suppressed_total"), 4);
}

TEST(DeadbandTest, PercentBandsAreRelativeToTheReportedValueAndEachDeviceHasItsOwn) {
  DeadbandOptions o;
  o.name = "db";
  o.fields = {"v", "w"};
  o.band_percent = 10;
  Deadband op(o);
  std::vector<NewRecord> out;
  op.feed(value_at(1, 1, "a", 100), out);  // out (new)
  op.feed(value_at(2, 2, "b", 5), out);    // out (new device)
  op.feed(value_at(3, 3, "a", 109), out);  // 9 % of 100: within
  op.feed(value_at(4, 4, "a", 111), out);  // 11 %: out
  op.feed(value_at(5, 5, "b", 5.4), out);  // 8 % of 5: within
  op.feed(reading(6, 6, "b", R"({"w": 1})"), out);  // a field not reported before: out
  op.feed(reading(7, 7, "b", R"({"x": 1})"), out);  // none of its fields
  op.feed(reading(8, 8, "b", "not json"), out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[2].payload, R"({"v":111.0})");
  EXPECT_EQ(out[3].payload, R"({"w": 1})") << "the record goes on byte for byte";
  EXPECT_EQ(counter(op, "no_fields_total"), 2);
}

// ------------------------------------------------------------ window

WindowOptions ten_seconds() {
  WindowOptions o;
  o.name = "w";
  o.fields = {"v"};
  o.size_ns = 10 * kSecond;
  o.allowed_lateness_ns = kSecond;
  return o;
}

Json payload(const NewRecord& r) { return Json::parse(r.payload); }

TEST(WindowTest, TumblingWindowsCloseWhenInputPassesTheirEndAndCarryExactAggregates) {
  Window op(ten_seconds());
  std::vector<NewRecord> out;
  op.feed(value_at(1, 1, "d1", 1), out);
  op.feed(value_at(2, 2, "d1", 2), out);
  op.feed(value_at(3, 3, "d2", 10), out);
  op.feed(value_at(4, 5, "d1", 6), out);
  op.feed(value_at(5, 10.5, "d1", 100), out);  // next window; 10.5 < 10 + 1 s lateness: nothing closes yet
  EXPECT_TRUE(out.empty());
  op.feed(value_at(6, 11, "d2", 7), out);  // input reached 11 s: [0, 10) closes for every device
  ASSERT_EQ(out.size(), 2u);
  const auto d1 = payload(out[0]);
  EXPECT_EQ(out[0].partition_key, "d1");
  EXPECT_EQ(out[0].topic, "w/d1");
  EXPECT_EQ(d1["window_start"], "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(d1["window_end"], "2027-01-15T08:00:10.000Z");
  EXPECT_EQ(d1["inputs"], 3);
  const auto& v = d1["fields"]["v"];
  EXPECT_EQ(v["count"], 3);
  EXPECT_EQ(v["min"], 1.0);
  EXPECT_EQ(v["max"], 6.0);
  EXPECT_EQ(v["sum"], 9.0);
  EXPECT_EQ(v["mean"], 3.0);
  EXPECT_EQ(v["first"], 1.0);
  EXPECT_EQ(v["last"], 6.0);
  EXPECT_NEAR(v["stddev"].get<double>(), std::sqrt(7.0), 1e-12);  // sample standard deviation of 1, 2, 6
  EXPECT_EQ(payload(out[1])["fields"]["v"]["stddev"], 0.0);
  EXPECT_FALSE(d1.contains("revision"));
  EXPECT_EQ(*out[0].device_ts_ns, kT0 + 10 * kSecond);
}

TEST(WindowTest, ASilentDevicesWindowClosesOnTheClockOnceEverythingIsRead) {
  Window op(ten_seconds());
  std::vector<NewRecord> out;
  op.feed(value_at(1, 3, "d1", 1), out);
  op.tick(kT0 + 10'500'000'000, true, out);  // end + lateness is 11 s
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(op.next_deadline_ns(), kT0 + 11 * kSecond);
  op.tick(kT0 + 12 * kSecond, false, out);
  EXPECT_TRUE(out.empty()) << "records still unread may belong to the window";
  op.tick(kT0 + 12 * kSecond, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(payload(out[0])["inputs"], 1);
}

TEST(WindowTest, LateInputIsDroppedAndCountedOrEmittedAsARevision) {
  for (const auto policy : {LatePolicy::kDrop, LatePolicy::kCorrect}) {
    auto o = ten_seconds();
    o.late = policy;
    Window op(o);
    std::vector<NewRecord> out;
    op.feed(value_at(1, 2, "d1", 1), out);
    op.feed(value_at(2, 12, "d1", 2), out);  // closes [0, 10)
    ASSERT_EQ(out.size(), 1u);
    op.feed(value_at(3, 9, "d1", 50), out);  // late for [0, 10)
    op.tick(kT0 + 12 * kSecond, false, out);
    if (policy == LatePolicy::kDrop) {
      EXPECT_EQ(out.size(), 1u);
      EXPECT_EQ(counter(op, "late_dropped_total"), 1);
    } else {
      ASSERT_EQ(out.size(), 2u);
      const auto revised = payload(out[1]);
      EXPECT_EQ(revised["revision"], 1);
      EXPECT_EQ(revised["inputs"], 2);
      EXPECT_EQ(revised["fields"]["v"]["max"], 50.0);
      EXPECT_EQ(revised["fields"]["v"]["last"], 50.0) << "last goes by time: 9 s is after 2 s";
      EXPECT_EQ(counter(op, "corrections_total"), 1);
      // Past the horizon (one window size after closing): dropped.
      op.feed(value_at(4, 25, "d1", 3), out);  // watermark 25: [0, 10) + 1 s + 10 s horizon is over
      op.feed(value_at(5, 5, "d1", 99), out);
      EXPECT_EQ(counter(op, "late_dropped_total"), 1);
    }
  }
}

TEST(WindowTest, HoppingWindowsCountARecordInEachWindowItFallsIn) {
  auto o = ten_seconds();
  o.hop_ns = 5 * kSecond;
  Window op(o);
  std::vector<NewRecord> out;
  op.feed(value_at(1, 7, "d1", 4), out);  // in [0, 10) and [5, 15)
  op.tick(kT0 + 30 * kSecond, true, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(payload(out[0])["window_start"], "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(payload(out[1])["window_start"], "2027-01-15T08:00:05.000Z");
}

TEST(WindowTest, DeviceTimeWindowsFollowTheDevicesClockAndItsOffsetWhenSilent) {
  auto o = ten_seconds();
  o.time = WindowTime::kDevice;
  Window op(o);
  std::vector<NewRecord> out;
  auto at = [](std::uint64_t seq, std::int64_t device_s, std::int64_t ingest_s, double v) {
    Record r = value_at(seq, static_cast<double>(ingest_s), "d1", v);
    r.device_ts_ns = kT0 + device_s * kSecond;
    return r;
  };
  // The device's clock is 100 s behind the gateway's.
  op.feed(at(1, 1, 101, 1), out);
  op.feed(at(2, 4, 104, 2), out);
  Record no_time = value_at(3, 105, "d1", 3);
  op.feed(no_time, out);
  EXPECT_EQ(counter(op, "no_device_time_total"), 1);
  op.tick(kT0 + 110 * kSecond, true, out);  // the device's clock says 10 s: lateness not over
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(op.next_deadline_ns(), kT0 + 111 * kSecond);
  op.tick(kT0 + 111 * kSecond, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(payload(out[0])["time"], "device");
  EXPECT_EQ(payload(out[0])["inputs"], 2);
  op.feed(at(4, 9, 112, 5), out);  // its window went out: late
  EXPECT_EQ(counter(op, "late_dropped_total"), 1);
}

TEST(WindowTest, StateWrittenAndRestoredGivesTheSameOutputAsRunningOn) {
  auto o = ten_seconds();
  o.late = LatePolicy::kCorrect;
  Window running(o);
  std::vector<NewRecord> out_running, ignored;
  std::vector<Record> input;
  for (int i = 0; i < 200; ++i) input.push_back(value_at(i + 1, i * 0.37, "d" + std::to_string(i % 7), i % 13 * 1.5));
  for (int i = 0; i < 100; ++i) running.feed(input[i], ignored);
  std::vector<buffer::StateChange> state;
  running.changes(state);
  Window restored(o);
  for (const auto& c : state) {
    ASSERT_TRUE(c.value);
    restored.restore(c.key, *c.value);
  }
  std::vector<NewRecord> out_restored;
  for (int i = 100; i < 200; ++i) {
    running.feed(input[i], out_running);
    restored.feed(input[i], out_restored);
  }
  running.tick(kT0 + 1000 * kSecond, true, out_running);
  restored.tick(kT0 + 1000 * kSecond, true, out_restored);
  ASSERT_EQ(out_running.size(), out_restored.size());
  for (std::size_t i = 0; i < out_running.size(); ++i) EXPECT_EQ(out_running[i].payload, out_restored[i].payload);
}

TEST(WindowTest, GroupByKeepsAWindowPerDeviceAndFieldValueThroughAStateRestore) {
  auto o = ten_seconds();
  o.group_by = {"phase"};
  o.aggregates = {"sum"};
  o.topic = "{name}/{device}/{group}";
  Window op(o);
  std::vector<NewRecord> out;
  op.feed(reading(1, 1, "m1", R"({"phase":"L1","v":1})"), out);
  op.feed(reading(2, 2, "m1", R"({"phase":"L2","v":10})"), out);
  op.feed(reading(3, 3, "m1", R"({"v":100})"), out);                    // no phase: the null group
  op.feed(reading(4, 4, "m1", R"({"phase":"L\u0031","v":1000})"), out);  // escaped: the full parse, same group
  std::vector<buffer::StateChange> state;
  op.changes(state);
  Window restored(o);
  for (const auto& c : state) restored.restore(c.key, *c.value);
  EXPECT_EQ(restored.devices(), 3u);
  restored.feed(reading(5, 5, "m1", R"({"phase":"L1","v":2})"), out);
  restored.feed(reading(6, 5, "m1", R"({"phase":3,"v":5})"), out);  // any JSON value groups
  restored.tick(kT0 + 60 * kSecond, true, out);
  std::map<std::string, Json> by_topic;
  for (const auto& r : out) by_topic[r.topic] = payload(r);
  ASSERT_EQ(by_topic.size(), 4u);
  EXPECT_EQ(by_topic.at("w/m1/L1")["group"], (Json{{"phase", "L1"}}));
  EXPECT_EQ(by_topic.at("w/m1/L1")["fields"]["v"]["sum"], 1003.0);  // 1 + 1000 (L\u0031 is L1) + 2
  EXPECT_EQ(by_topic.at("w/m1/L1")["inputs"], 3);
  EXPECT_EQ(by_topic.at("w/m1/L2")["fields"]["v"]["sum"], 10.0);
  EXPECT_EQ(by_topic.at("w/m1/null")["group"], (Json{{"phase", nullptr}}));
  EXPECT_EQ(by_topic.at("w/m1/null")["fields"]["v"]["sum"], 100.0);
  EXPECT_EQ(by_topic.at("w/m1/3")["group"], (Json{{"phase", 3}}));
}

TEST(DeadbandTest, GroupByGivesEachFieldValueItsOwnBand) {
  DeadbandOptions o;
  o.name = "db";
  o.fields = {"v"};
  o.band = 1;
  o.group_by = {"channel"};
  Deadband op(o);
  std::vector<NewRecord> out;
  op.feed(reading(1, 1, "d", R"({"channel":1,"v":20})"), out);
  op.feed(reading(2, 2, "d", R"({"channel":2,"v":50})"), out);    // its own band: out, although far from 20
  op.feed(reading(3, 3, "d", R"({"channel":1,"v":20.5})"), out);  // within channel 1's band
  op.feed(reading(4, 4, "d", R"({"channel":2,"v":52})"), out);    // leaves channel 2's band
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].payload, R"({"channel":1,"v":20})");
  EXPECT_EQ(out[1].payload, R"({"channel":2,"v":50})");
  EXPECT_EQ(out[2].payload, R"({"channel":2,"v":52})");
  EXPECT_EQ(op.devices(), 2u);
}

TEST(WindowTest, DecimalsRoundTheFiguresOfTheRecord) {
  auto run = [](int decimals) {
    auto o = ten_seconds();
    o.decimals = decimals;
    Window op(o);
    std::vector<NewRecord> out;
    op.feed(value_at(1, 1, "d", 1.0), out);
    op.feed(value_at(2, 2, "d", 2.0), out);
    op.feed(value_at(3, 3, "d", 2.0), out);
    op.feed(value_at(4, 3, "huge", 1e300), out);  // too large to scale: kept as it is
    op.tick(kT0 + 60 * kSecond, true, out);
    EXPECT_EQ(out.size(), 2u);
    return out;
  };
  const auto exact = run(-1);
  EXPECT_EQ(payload(exact[0])["fields"]["v"]["mean"], 5.0 / 3.0);
  const auto rounded = run(2);
  EXPECT_NE(rounded[0].payload.find(R"("mean":1.67,)"), std::string::npos) << rounded[0].payload;
  EXPECT_NE(rounded[0].payload.find(R"("stddev":0.58})"), std::string::npos) << rounded[0].payload;  // √(1/3)
  EXPECT_NE(rounded[0].payload.find(R"("min":1.0,)"), std::string::npos) << rounded[0].payload;
  EXPECT_EQ(payload(rounded[1])["fields"]["v"]["max"], 1e300);
}

TEST(WindowTest, TheDeviceLimitDropsAndCountsNewDevices) {
  auto o = ten_seconds();
  o.max_devices = 2;
  Window op(o);
  std::vector<NewRecord> out;
  op.feed(value_at(1, 1, "a", 1), out);
  op.feed(value_at(2, 1, "b", 1), out);
  op.feed(value_at(3, 1, "c", 1), out);
  EXPECT_EQ(op.devices(), 2u);
  EXPECT_EQ(counter(op, "devices_over_limit_total"), 1);
}

// ------------------------------------------------------------ the derived stream over a buffer

class DerivedStreamTest : public ::testing::Test {
 protected:
  std::unique_ptr<buffer::Buffer> open() {
    buffer::BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.log = log_.fn();
    o.clock = clock_;
    return buffer::Buffer::open(o);
  }
  std::unique_ptr<DerivedStream> stream(buffer::Buffer& b, const std::string& definition = "size = \"10s\"") {
    DerivedStreamOptions d;
    d.name = "w";
    d.kind = "window";
    d.definition = definition;
    d.route.sources = {"meters"};
    d.start = buffer::StartPosition::kEarliest;
    return std::make_unique<DerivedStream>(d, std::make_unique<Window>(ten_seconds()), b, log_.fn());
  }
  // Readings of two devices, one a second, from `from_s` for `n` seconds.
  static void append(buffer::Buffer& b, int from_s, int n) {
    std::vector<NewRecord> records;
    for (int i = from_s; i < from_s + n; ++i) {
      for (const char* device : {"a", "b"}) {
        Record r = value_at(0, i, device, i);
        records.push_back(r);
      }
    }
    ASSERT_TRUE(b.append_wait(std::move(records)).ok());
  }
  static std::vector<Json> windows(const buffer::Buffer& b) {
    std::vector<Json> out;
    for (const auto& r : b.read_after(0, 1'000'000, SIZE_MAX).records) {
      if (r.source == "w") out.push_back(Json::parse(r.payload));
    }
    return out;
  }
  static bool wait_for(const std::function<bool()>& done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void clock_at(std::int64_t s) { clock_->set(kT0 + s * kSecond); }

  testing::TempDir dir_;
  testing::LogCapture log_;
  // The windows' clock (the buffer's): it closes them only when a test says.
  std::shared_ptr<testing::FakeClock> clock_ = std::make_shared<testing::FakeClock>(kT0 + 100 * kSecond);
};

TEST_F(DerivedStreamTest, WindowsGoIntoTheBufferUnderTheProcessorsNameAndStateOutlivesARestart) {
  clock_at(15);
  {
    auto b = open();
    append(*b, 0, 15);  // [0, 10) complete, [10, 20) half
    auto s = stream(*b);
    s->start();
    ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 2; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    s->stop();
    EXPECT_EQ(windows(*b).size(), 2u);
  }
  {
    auto b = open();
    auto s = stream(*b);
    s->start();
    append(*b, 15, 20);
    clock_at(100);  // closes [30, 40) too
    ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 8; }));
    s->stop();
    std::map<std::string, int> inputs;  // by device and start: each once
    for (const auto& w : windows(*b)) {
      const auto key = w["device"].get<std::string>() + " " + w["window_start"].get<std::string>();
      EXPECT_EQ(inputs.count(key), 0u) << key << " twice";
      inputs[key] = w["inputs"];
    }
    EXPECT_EQ(inputs.size(), 8u);
    // [10, 20) got 5 readings per device in each run: its state was kept.
    for (const auto& [key, n] : inputs) EXPECT_EQ(n, key.find(":30.000Z") != std::string::npos ? 5 : 10) << key;
    EXPECT_EQ(s->stats().received_total, 40u) << "the second run reads only what came after the first's position";
  }
}

TEST_F(DerivedStreamTest, ABacklogCostsAFewCommitsNotOnePerBatchRead) {
  clock_at(5'100);  // past the last window's end and lateness
  auto b = open();
  append(*b, 0, 5'000);  // 10,000 readings: 1,000 windows, closing in every batch of 2,000 read
  DerivedStreamOptions d;
  d.name = "w";
  d.kind = "window";
  d.route.sources = {"meters"};
  d.start = buffer::StartPosition::kEarliest;
  d.backlog_commit_interval = std::chrono::minutes(1);  // the count decides, however slow the build
  auto s = std::make_unique<DerivedStream>(d, std::make_unique<Window>(ten_seconds()), *b, log_.fn());
  s->start();
  ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 1'000; }));
  s->stop();
  double commits = 0;
  for (const auto& c : s->stats().counters) {
    if (c.name == "commits_total") commits = c.value;
  }
  // Five batches read; the output gathered over them goes in one commit when
  // the stream has read everything (plus the start's): one per batch was 6.
  EXPECT_LE(commits, 3);
  EXPECT_EQ(windows(*b).size(), 1'000u);
}

TEST_F(DerivedStreamTest, AChangedDefinitionStartsFreshAndSaysSo) {
  clock_at(5);
  auto b = open();
  append(*b, 0, 5);  // [0, 10) open when the first stream stops
  {
    auto s = stream(*b);
    s->start();
    ASSERT_TRUE(wait_for([&] { return log_.contains("new: reads records after"); }));
    s->stop();
  }
  auto s = stream(*b, "size = \"20s\"");
  s->start();
  ASSERT_TRUE(wait_for([&] { return log_.contains("definition changed"); }));
  append(*b, 5, 5);
  clock_at(100);
  ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 2; }));
  s->stop();
  for (const auto& w : windows(*b)) EXPECT_EQ(w["inputs"], 5) << "the old open window was dropped";
}

TEST_F(DerivedStreamTest, ARewindRecomputesTheOutputFromTheRetainedInput) {
  auto b = open();
  append(*b, 0, 20);
  auto s = stream(*b);
  s->start();
  ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 4; }));
  const auto r = s->rewind_to_seq(1);
  ASSERT_EQ(r.status, buffer::Status::kOk) << r.error;
  ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 8; }));
  s->stop();
  const auto all = windows(*b);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(all[i], all[i + 4]) << "the same windows again";
}

TEST_F(DerivedStreamTest, ItsOwnOutputAndOtherSourcesAreNotItsInput) {
  auto b = open();
  std::vector<NewRecord> noise;
  Record other = value_at(0, 1, "a", 1000);
  other.source = "elsewhere";
  noise.push_back(other);
  ASSERT_TRUE(b->append_wait(std::move(noise)).ok());
  append(*b, 0, 12);
  auto s = stream(*b);
  s->start();
  ASSERT_TRUE(wait_for([&] { return windows(*b).size() == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  s->stop();
  EXPECT_EQ(windows(*b).size(), 4u);
  for (const auto& w : windows(*b)) EXPECT_LT(w["fields"]["v"]["max"].get<double>(), 1000);
}

}  // namespace
}  // namespace tidegate::streams
