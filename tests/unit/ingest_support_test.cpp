#include "tidegate/drivers/error_boundary.h"
#include "tidegate/drivers/ingest_support.h"

#include <gtest/gtest.h>

#include <set>

#include "tidegate/drivers/sim/sim_source.h"

namespace tidegate::drivers {
namespace {

TEST(TopicPattern, CapturesLevelsAndRejectsMismatches) {
  TopicPattern p("sensors/{device}/#");
  EXPECT_EQ(p.capture("sensors/boiler-1/temp"), "boiler-1");
  EXPECT_EQ(p.capture("sensors/boiler-1/a/b/c"), "boiler-1");
  EXPECT_EQ(p.capture("sensors/boiler-1"), "boiler-1");  // '#' also matches the parent level
  EXPECT_EQ(p.capture("meters/boiler-1/temp"), std::nullopt);
  EXPECT_EQ(p.capture("sensors"), std::nullopt);

  TopicPattern two("site/{site}/+/{device}");
  EXPECT_EQ(two.capture("site/north/floor2/d7"), "north/d7");
  EXPECT_EQ(two.capture("site/north/floor2/d7/extra"), std::nullopt);
  EXPECT_EQ(two.capture("site/north/floor2"), std::nullopt);
  EXPECT_EQ(two.capture("site//floor2/d7"), std::nullopt);  // an empty level is no device id

  EXPECT_THROW(TopicPattern("a/#/b"), std::invalid_argument);
  EXPECT_THROW(TopicPattern("a/dev{x}"), std::invalid_argument);
  EXPECT_FALSE(TopicPattern("a/+/b").has_capture());
}

TEST(JsonField, ReadsScalarsByDottedPath) {
  const std::string doc = R"({"device":"d-1","meta":{"id":42,"ok":true,"site":{"name":"north"}},"arr":[1]})";
  EXPECT_EQ(json_field(doc, "device"), "d-1");
  EXPECT_EQ(json_field(doc, "meta.id"), "42");
  EXPECT_EQ(json_field(doc, "meta.ok"), "true");
  EXPECT_EQ(json_field(doc, "meta.site.name"), "north");
  EXPECT_EQ(json_field(doc, "meta.site"), std::nullopt);  // not a scalar
  EXPECT_EQ(json_field(doc, "arr"), std::nullopt);
  EXPECT_EQ(json_field(doc, "missing"), std::nullopt);
  EXPECT_EQ(json_field("not json", "device"), std::nullopt);
  EXPECT_EQ(json_field("[1,2]", "device"), std::nullopt);
  EXPECT_TRUE(is_json("{\"a\":1}"));
  EXPECT_FALSE(is_json("{\"a\":"));
}

TEST(Timestamps, SecondsMillisMicrosAndRfc3339) {
  EXPECT_EQ(parse_timestamp("1764064800"), 1764064800'000000000);
  EXPECT_EQ(parse_timestamp("1764064800.5"), 1764064800'500000000);
  EXPECT_EQ(parse_timestamp("1764064800123"), 1764064800'123000000);
  EXPECT_EQ(parse_timestamp("1764064800123456"), 1764064800'123456000);
  EXPECT_EQ(parse_timestamp("2025-11-25T10:00:00Z"), 1764064800'000000000);
  EXPECT_EQ(parse_timestamp("2025-11-25T10:00:00.123Z"), 1764064800'123000000);
  EXPECT_EQ(parse_timestamp("2025-11-25T10:00:00+01:00"), std::nullopt);  // UTC only
  EXPECT_EQ(parse_timestamp("2025-13-25T10:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_timestamp("yesterday"), std::nullopt);
  // Dates that do not fit 64-bit nanoseconds since 1970 (found by fuzz/payload_fuzz:
  // the year 4052 overflowed), and negative fields that sscanf accepts.
  EXPECT_EQ(parse_timestamp("4052-11-25T22:17:08.8Z"), std::nullopt);
  EXPECT_EQ(parse_timestamp("2262-04-11T23:47:17Z"), std::nullopt);
  EXPECT_EQ(parse_timestamp("2262-04-11T23:47:16Z"), 9223372036'000000000);
  EXPECT_EQ(parse_timestamp("1969-12-31T23:59:59Z"), std::nullopt);
  EXPECT_EQ(parse_timestamp("-999-01-01T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_timestamp("2025-11-25T-1:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_timestamp("-5"), std::nullopt);
}

// time_t is 32 bits on armhf: the parser must not depend on it.
TEST(Timestamps, DatesFrom2038OnParseOnEveryPlatform) {
  EXPECT_EQ(parse_timestamp("2038-01-19T03:14:08Z"), 2147483648'000000000);
  EXPECT_EQ(parse_timestamp("2100-03-01T00:00:00.25Z"), 4107542400'250000000);
  EXPECT_EQ(parse_timestamp("2000-02-29T12:00:00Z"), 951825600'000000000);
  EXPECT_EQ(parse_timestamp("1970-01-01T00:00:00Z"), 0);
}

// Values that would not fit 64-bit nanoseconds are refused, not wrapped.
TEST(Timestamps, OutOfRangeNumbersAreRefused) {
  EXPECT_EQ(parse_timestamp("9223372036"), 9223372036'000000000);  // 2262-04-11, the last second that fits
  EXPECT_EQ(parse_timestamp("9223372037"), std::nullopt);
  EXPECT_EQ(parse_timestamp("99999999999999"), std::nullopt);      // milliseconds past 2262
  EXPECT_EQ(parse_timestamp("1e300"), std::nullopt);
  EXPECT_EQ(parse_timestamp("99999999999999999999"), std::nullopt);  // not even an int64
}

// A source thread's boundary: what escapes is reported and the body runs
// again, until it returns or the source is stopping; never std::terminate.
TEST(ErrorBoundary, ExceptionsAreReportedAndTheBodyRunsAgain) {
  int runs = 0;
  std::vector<std::string> reported;
  run_guarded(
      [&] {
        runs += 1;
        if (runs == 1) throw std::runtime_error("handler bug");
        if (runs == 2) throw 7;
      },
      [&](const std::string& what) { reported.push_back(what); }, [] { return false; },
      std::chrono::milliseconds(1));
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(reported, (std::vector<std::string>{"handler bug", "an exception that is not a std::exception"}));
  // Stopping: no second run after the failure.
  runs = 0;
  run_guarded([&] { runs += 1, throw std::bad_alloc(); }, [](const std::string&) {}, [] { return true; },
              std::chrono::milliseconds(1));
  EXPECT_EQ(runs, 1);
}

TEST(Backoff, GrowsExponentiallyWithJitterUpToTheCap) {
  Backoff b(std::chrono::milliseconds(100), std::chrono::milliseconds(5000), 42);
  std::set<std::int64_t> distinct;
  for (int attempt = 0; attempt < 12; ++attempt) {
    const auto d = b.next().count();
    const std::int64_t ceiling = std::min<std::int64_t>(5000, 100ll << attempt);
    EXPECT_GE(d, 0);
    EXPECT_LE(d, ceiling) << "attempt " << attempt;
    distinct.insert(d);
  }
  EXPECT_GT(distinct.size(), 6u);  // jittered, not a fixed schedule
  EXPECT_EQ(b.attempts(), 12u);
  b.reset();
  EXPECT_LE(b.next().count(), 100);
}

TEST(ClockSync, ProbeCachesTheKernelAnswer) {
  int calls = 0;
  ClockSyncProbe probe([&] {
    ++calls;
    return true;
  });
  EXPECT_TRUE(probe.synchronized());
  EXPECT_TRUE(probe.synchronized());
  EXPECT_EQ(calls, 1);
  (void)kernel_clock_synchronized();  // must not fail wherever it runs
}

TEST(SimReadings, RealisticRangesValidJsonAndDeterministic) {
  sim::SimOptions o;
  o.devices = 8;
  sim::ReadingGenerator a(o), b(o);
  const std::int64_t t0 = 1'764'064'800'000'000'000;  // 10:00 UTC
  for (int round = 0; round < 500; ++round) {
    for (std::uint32_t d = 0; d < o.devices; ++d) {
      const auto now = t0 + round * 1'000'000'000ll;
      auto ra = a.next(d, now);
      auto rb = b.next(d, now);
      ASSERT_EQ(ra.payload, rb.payload);
      ASSERT_TRUE(is_json(ra.payload)) << ra.payload;
      EXPECT_EQ(ra.topic, "sensors/" + ra.device + "/" + ra.kind);
      const double v = std::stod(*json_field(ra.payload, "value"));
      if (ra.kind == "temperature") {
        EXPECT_GT(v, 10);
        EXPECT_LT(v, 32);
      } else if (ra.kind == "humidity") {
        EXPECT_GE(v, 20);
        EXPECT_LE(v, 80);
      } else if (ra.kind == "co2") {
        EXPECT_GT(v, 300);
        EXPECT_LT(v, 2000);
      } else {
        EXPECT_GE(v, 50);
        EXPECT_LE(v, 5000);
        EXPECT_TRUE(json_field(ra.payload, "energy_kwh").has_value());
      }
      EXPECT_EQ(parse_timestamp(*json_field(ra.payload, "ts")), now);
    }
  }
}

}  // namespace
}  // namespace tidegate::drivers
