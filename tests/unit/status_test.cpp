// The status module's logic without sockets: the health verdict, the
// collector's rates and transitions, the JSON and Prometheus renderings, and
// the routes' token rules. The figures are fed in (what is under test is the
// module, not the buffer or forwarders it reads).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tidegate/status/collector.h"
#include "tidegate/status/render.h"
#include "tidegate/status/routes.h"

namespace tidegate::status {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kT0 = 1'800'000'000 * kSecond;

Snapshot healthy() {
  Snapshot s;
  s.gateway_id = "gw";
  s.version = "1.2.3";
  s.now_ns = kT0;
  s.started_ns = kT0 - 3600 * kSecond;
  s.buffer.max_bytes = 1000;
  s.buffer.bytes = 100;
  s.buffer.records = 10;
  SourceView src;
  src.stats.name = "broker";
  src.stats.connected = true;
  s.sources.push_back(src);
  SinkView k;
  k.stats.sink = "cloud";
  k.stats.state = "idle";
  k.stats.last_success_ns = kT0 - kSecond;
  k.lag.name = "cloud";
  s.sinks.push_back(k);
  return s;
}

TEST(Health, GreenWhenEverythingWorks) {
  const auto h = assess(healthy(), {});
  EXPECT_EQ(h.level, HealthLevel::kGreen);
  EXPECT_TRUE(h.reasons.empty());
}

TEST(Health, AFailingSinkIsAmberFirstThenRedAfterTheThreshold) {
  auto s = healthy();
  s.sinks[0].stats.consecutive_failures = 3;
  s.sinks[0].stats.last_error = "connect: Connection refused";
  s.sinks[0].stats.last_success_ns = kT0 - 60 * kSecond;
  auto h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kAmber);
  ASSERT_EQ(h.reasons.size(), 1u);
  EXPECT_NE(h.reasons[0].find("sink cloud failing"), std::string::npos) << h.reasons[0];
  EXPECT_NE(h.reasons[0].find("Connection refused"), std::string::npos);

  s.sinks[0].stats.last_success_ns = kT0 - 600 * kSecond;
  h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kRed);
  EXPECT_NE(h.reasons[0].find("10 min ago"), std::string::npos) << h.reasons[0];

  // Never succeeded: counted from the start of the gateway.
  s.sinks[0].stats.last_success_ns = 0;
  s.started_ns = kT0 - 30 * kSecond;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kAmber);
}

TEST(Health, BufferFillDiskAndLossDecideTheColour) {
  auto s = healthy();
  s.buffer.bytes = 750;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kAmber);
  s.buffer.bytes = 960;
  auto h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kRed);
  EXPECT_NE(h.reasons[0].find("96% full"), std::string::npos) << h.reasons[0];

  s = healthy();
  s.buffer.max_records = 100;
  s.buffer.records = 99;  // the record cap counts too
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kRed);

  s = healthy();
  s.buffer.disk_reserve_reached = true;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kRed);

  s = healthy();
  s.buffer_writable = false;
  s.buffer_problem = "3 records refused (disk full)";
  h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kRed);
  EXPECT_NE(h.reasons[0].find("disk full"), std::string::npos);

  s = healthy();
  s.buffer.evicted_total = 5;
  s.last_eviction_ns = kT0 - 60 * kSecond;  // lost a minute ago: red
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kRed);
  s.last_eviction_ns = kT0 - 3600 * kSecond;  // an hour ago: still worth a look
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kAmber);
}

// Losses from before this start stay amber until an operator acknowledges
// them; the text tells since-start from all-time and how to acknowledge.
TEST(Health, EvictionsStayAmberUntilAcknowledgedAndSinceStartIsToldApart) {
  auto s = healthy();
  s.buffer.evicted_total = 120;
  s.buffer.evicted_at_open = 100;  // 20 since this start
  auto h = assess(s, {});
  ASSERT_EQ(h.level, HealthLevel::kAmber);
  EXPECT_NE(h.reasons[0].find("120 undelivered records lost to the cap, not yet acknowledged (20 since start)"),
            std::string::npos)
      << h.reasons[0];
  EXPECT_NE(h.reasons[0].find("sudo tidegate buffer acknowledge-losses"), std::string::npos);

  s.buffer.evicted_acknowledged = 120;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kGreen);
  s.buffer.evicted_total = 125;  // news after the acknowledgement
  h = assess(s, {});
  EXPECT_NE(h.reasons.at(0).find("5 undelivered records lost"), std::string::npos) << h.reasons[0];

  // Losing right now is red whatever was acknowledged, counted since start.
  s.last_eviction_ns = kT0 - 30 * kSecond;
  h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kRed);
  EXPECT_NE(h.reasons[0].find("25 since start, the latest 30 s ago"), std::string::npos) << h.reasons[0];
}

// A cursor left by a sink taken out of the configuration holds records back:
// amber, with the command that forgets it.
TEST(Health, ACursorOfASinkNoLongerConfiguredIsAmberWithTheWayOut) {
  auto s = healthy();
  buffer::SinkStats retired;
  retired.name = "old-cloud";
  retired.lag_records = 4000;
  s.buffer.sinks.push_back(retired);
  ASSERT_EQ(retired_sinks(s).size(), 1u);
  const auto h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kAmber);
  EXPECT_NE(h.reasons.at(0).find("sink old-cloud is no longer configured but its cursor holds 4000 records"),
            std::string::npos)
      << h.reasons[0];
  EXPECT_NE(h.reasons[0].find("sudo tidegate sink forget old-cloud"), std::string::npos);
}

TEST(Health, LagDeadLettersPausedAndSourcesAreAmber) {
  auto s = healthy();
  s.sinks[0].lag.oldest_undelivered_ingest_ns = kT0 - 900 * kSecond;
  s.sinks[0].lag.lag_records = 42;
  auto h = assess(s, {});
  EXPECT_EQ(h.level, HealthLevel::kAmber);
  EXPECT_NE(h.reasons[0].find("15 min behind (42 records waiting)"), std::string::npos) << h.reasons[0];

  s = healthy();
  s.buffer.dead_letters = 2;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kAmber);

  s = healthy();
  s.sinks[0].paused = true;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kAmber);

  s = healthy();
  s.sources[0].stats.connected = false;
  s.sources[0].down_since_ns = kT0 - 10 * kSecond;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kAmber);
  s.sources[0].down_since_ns = kT0 - 1000 * kSecond;
  EXPECT_EQ(assess(s, {}).level, HealthLevel::kRed);
}

// Inputs the test moves by hand.
struct Fake {
  std::int64_t now = kT0;
  buffer::BufferStats buffer;
  std::vector<drivers::SourceStats> sources{1};
  std::vector<forward::ForwarderStats> sinks{1};

  CollectorInputs inputs() {
    CollectorInputs in;
    in.gateway_id = "gw";
    in.version = "v";
    in.buffer_stats = [this] { return buffer; };
    in.sources = [this] { return sources; };
    in.sinks = [this] { return sinks; };
    in.clock_ns = [this] { return now; };
    in.cache_for = std::chrono::milliseconds(0);
    in.history_points = 3;
    return in;
  }
};

// Issue 19, defect 3: a damaged buffer file recovered at start was only in
// the log. Now it makes the page amber with where the file went and what was
// salvaged, in /api/status, the heartbeat and /metrics, until the next start.
TEST(Health, ABufferRecoveredAtStartIsAmberAndShownEverywhere) {
  auto s = healthy();
  s.open_report.recovered = true;
  s.open_report.problem = "database disk image is malformed";
  s.open_report.moved_aside_to = "/var/lib/tidegate/buffer.db.corrupt-20261204T210000Z";
  s.open_report.salvaged_records = 9871;
  s.health = assess(s, {});
  EXPECT_EQ(s.health.level, HealthLevel::kAmber);
  ASSERT_EQ(s.health.reasons.size(), 1u);
  EXPECT_NE(s.health.reasons[0].find("damaged at start (database disk image is malformed)"), std::string::npos);
  EXPECT_NE(s.health.reasons[0].find("buffer.db.corrupt-20261204T210000Z, 9871 records salvaged"), std::string::npos)
      << s.health.reasons[0];
  const auto j = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(j["buffer"]["recovered_at_start"]["salvaged_records"], 9871);
  EXPECT_EQ(j["buffer"]["recovered_at_start"]["problem"], "database disk image is malformed");
  EXPECT_EQ(nlohmann::json::parse(heartbeat_json(s))["buffer"]["recovered_at_start"]["salvaged_records"], 9871);
  const auto metrics = to_prometheus(s);
  EXPECT_NE(metrics.find("tidegate_buffer_recovered_at_start 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tidegate_buffer_salvaged_records 9871"), std::string::npos);
  // A file that was fine: nothing said.
  EXPECT_TRUE(nlohmann::json::parse(to_json(healthy()))["buffer"]["recovered_at_start"].is_null());
}

TEST(Collector, SamplesTurnCountersIntoRatesAndKeepABoundedHistory) {
  Fake f;
  f.sources[0].name = "broker";
  f.sources[0].connected = true;
  f.sinks[0].sink = "cloud";
  buffer::SinkStats lag;
  lag.name = "cloud";
  lag.lag_records = 7;
  f.buffer.sinks.push_back(lag);
  StatusCollector c(f.inputs());
  c.sample();
  for (int i = 1; i <= 5; ++i) {
    f.now += 5 * kSecond;
    f.buffer.appended_total += 500;  // 100/s
    f.sources[0].received_total += 500;
    f.sinks[0].sent_records_total += 250;  // 50/s
    c.sample();
  }
  const auto s = c.snapshot();
  ASSERT_EQ(s.rates.size(), 3u);  // bounded
  EXPECT_DOUBLE_EQ(s.rates.back().ingest_per_s, 100.0);
  ASSERT_EQ(s.rates.back().forward_per_s.size(), 1u);
  EXPECT_EQ(s.rates.back().forward_per_s[0].first, "cloud");
  EXPECT_DOUBLE_EQ(s.rates.back().forward_per_s[0].second, 50.0);
  EXPECT_EQ(s.rates.back().t_ns, f.now);
  EXPECT_DOUBLE_EQ(s.sources[0].messages_per_s, 100.0);
  EXPECT_DOUBLE_EQ(s.sinks[0].sent_per_s, 50.0);
  EXPECT_EQ(s.sinks[0].lag.lag_records, 7u);  // joined from the buffer by name
  EXPECT_EQ(s.now_ns - s.started_ns, 25 * kSecond);
}

// The all-time count is on disk: after a restart, earlier losses are news
// to acknowledge (amber), not losses happening now (red).
TEST(Collector, LossesFromBeforeARestartAreNotTakenForLossesNow) {
  Fake f;
  f.buffer.evicted_total = 40;
  f.buffer.evicted_at_open = 40;
  StatusCollector c(f.inputs());
  c.sample();
  auto s = c.snapshot();
  EXPECT_EQ(s.last_eviction_ns, 0);
  EXPECT_EQ(s.health.level, HealthLevel::kAmber);
  // Evicted between the open and the first sample: that is now.
  Fake g;
  g.buffer.evicted_total = 45;
  g.buffer.evicted_at_open = 40;
  StatusCollector d(g.inputs());
  d.sample();
  EXPECT_EQ(d.snapshot().health.level, HealthLevel::kRed);
}

TEST(Collector, NoticesRefusedCommitsEvictionsAndADisconnectedSource) {
  Fake f;
  f.sources[0].name = "broker";
  f.sources[0].connected = true;
  StatusCollector c(f.inputs());
  c.sample();
  f.now += 5 * kSecond;
  f.buffer.disk_full_total = 3;
  f.buffer.evicted_total = 2;
  f.sources[0].connected = false;
  c.sample();
  auto s = c.snapshot();
  EXPECT_FALSE(s.buffer_writable);
  EXPECT_NE(s.buffer_problem.find("3 records refused"), std::string::npos) << s.buffer_problem;
  EXPECT_NE(s.buffer_problem.find("disk full"), std::string::npos);
  EXPECT_EQ(s.last_eviction_ns, f.now);
  EXPECT_EQ(s.sources[0].down_since_ns, f.now);
  EXPECT_EQ(s.health.level, HealthLevel::kRed);

  // A quiet interval: writable again; the source's outage keeps its start.
  const auto down_at = f.now;
  f.now += 5 * kSecond;
  c.sample();
  s = c.snapshot();
  EXPECT_TRUE(s.buffer_writable);
  EXPECT_EQ(s.sources[0].down_since_ns, down_at);
}

// Issue 22: "how long until the buffer is full?" answered from the net fill
// rate (what comes in minus what delivery removes), against the byte cap or
// the disk down to its reserve, whichever is nearer; and since when a full
// buffer has been evicting.
TEST(Collector, TellsHowLongUntilTheCapAndSinceWhenItHasBeenEvicting) {
  Fake f;
  f.buffer.max_bytes = 1'000'000;
  f.buffer.bytes = 100'000;
  f.buffer.disk_available_bytes = 50'000'000;
  f.buffer.disk_reserve_bytes = 1'000'000;
  StatusCollector c(f.inputs());
  c.sample();
  EXPECT_FALSE(seconds_until_cap(c.snapshot()).has_value());  // one sample: no rate yet
  for (int i = 0; i < 10; ++i) {
    f.now += kSecond;
    f.buffer.bytes += 1000;  // +1,000 B/s net
    c.sample();
  }
  auto s = c.snapshot();
  EXPECT_DOUBLE_EQ(s.fill_bytes_per_s, 1000.0);
  ASSERT_TRUE(seconds_until_cap(s).has_value());
  EXPECT_DOUBLE_EQ(*seconds_until_cap(s), 890.0);  // (1,000,000 - 110,000) / 1,000
  auto j = nlohmann::json::parse(to_json(s));
  EXPECT_DOUBLE_EQ(j["buffer"]["seconds_until_cap"].get<double>(), 890.0);
  EXPECT_TRUE(j["buffer"]["evicting_for_s"].is_null());

  // The disk nearer than the cap: it decides.
  f.buffer.disk_available_bytes = 1'200'000;
  f.now += kSecond;
  f.buffer.bytes += 1000;
  c.sample();
  s = c.snapshot();
  EXPECT_NEAR(*seconds_until_cap(s), 200.0, 1e-9);  // (1,200,000 - 1,000,000 reserve) / 1,000

  // At the cap: flat, evicting every sample; the start is kept.
  const auto before = f.now;
  for (int i = 0; i < 3; ++i) {
    f.now += kSecond;
    f.buffer.evicted_total += 10;
    c.sample();
  }
  s = c.snapshot();
  EXPECT_EQ(s.evicting_since_ns, before);
  j = nlohmann::json::parse(to_json(s));
  EXPECT_DOUBLE_EQ(j["buffer"]["evicting_for_s"].get<double>(), 3.0);

  // Draining: not filling up, not evicting.
  f.now += kSecond;
  f.buffer.bytes = 50'000;
  c.sample();
  s = c.snapshot();
  EXPECT_EQ(s.evicting_since_ns, 0);
  EXPECT_LT(s.fill_bytes_per_s, 0);
  EXPECT_FALSE(seconds_until_cap(s).has_value());
}

TEST(Render, JsonCarriesEveryFigureAndSurvivesInvalidUtf8) {
  auto s = healthy();
  s.sinks[0].stats.last_error = std::string("bad \xff\xfe bytes");
  s.sinks[0].lag.lag_records = 12;
  s.sinks[0].lag.oldest_undelivered_ingest_ns = kT0 - 30 * kSecond;
  s.sinks[0].stats.consecutive_failures = 1;
  s.warnings.push_back({kT0, "warning", "<script>alert(1)</script>"});
  s.health = assess(s, {});
  const auto j = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(j["schema"], kStatusSchemaVersion);
  EXPECT_EQ(j["gateway_id"], "gw");
  EXPECT_EQ(j["health"]["level"], "amber");
  EXPECT_DOUBLE_EQ(j["uptime_s"].get<double>(), 3600.0);
  EXPECT_EQ(j["sinks"][0]["condition"], "failing");
  EXPECT_EQ(j["sinks"][0]["lag_records"], 12);
  EXPECT_DOUBLE_EQ(j["sinks"][0]["lag_age_s"].get<double>(), 30.0);
  EXPECT_TRUE(j["sinks"][0]["drain_eta_s"].is_null());
  EXPECT_NE(j["sinks"][0]["last_error"].get<std::string>().find("bytes"), std::string::npos);
  EXPECT_EQ(j["warnings"][0]["text"], "<script>alert(1)</script>");  // data; the page shows it as text
  EXPECT_EQ(j["buffer"]["max_bytes"], 1000);
  EXPECT_TRUE(j["sources"][0]["connected"].get<bool>());

  const auto hb = nlohmann::json::parse(heartbeat_json(s));
  EXPECT_EQ(hb["type"], "tidegate.heartbeat");
  EXPECT_EQ(hb["sinks"][0]["lag_records"], 12);
  EXPECT_EQ(hb["health"]["level"], "amber");
}

// A plugin's own counters reach /metrics (one family per kind and name, the
// plugin's help) and /api/status (with the flag the page uses to show loss).
TEST(Render, PluginCountersAreRenderedWithoutKnowingTheKind) {
  auto s = healthy();
  s.sources[0].stats.kind = "mqtt";
  s.sources[0].stats.counters = {
      {"refused_total", "QoS 1 messages the buffer refused.", 3, common::Counter::Type::kCounter, true},
      {"session_present", "1 when the broker kept the session.", 1, common::Counter::Type::kGauge, false}};
  s.sinks[0].stats.kind = "kinesis";
  s.sinks[0].stats.exceptions_total = 2;
  s.sinks[0].stats.counters = {{"throttled_total", "Calls the stream throttled.", 7}};
  const auto text = to_prometheus(s);
  const auto source = s.sources[0].stats.name, sink = s.sinks[0].stats.sink;
  EXPECT_NE(text.find("# HELP tidegate_mqtt_source_refused_total QoS 1 messages the buffer refused.\n"
                      "# TYPE tidegate_mqtt_source_refused_total counter\n"
                      "tidegate_mqtt_source_refused_total{source=\"" + source + "\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE tidegate_mqtt_source_session_present gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tidegate_kinesis_sink_throttled_total{sink=\"" + sink + "\"} 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tidegate_sink_exceptions_total{sink=\"" + sink + "\"} 2\n"), std::string::npos) << text;
  const auto j = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(j["sources"][0]["kind"], "mqtt");
  EXPECT_EQ(j["sources"][0]["counters"][0]["name"], "refused_total");
  EXPECT_EQ(j["sources"][0]["counters"][0]["value"], 3.0);
  EXPECT_EQ(j["sources"][0]["counters"][0]["loss_or_refusal"], true);
  EXPECT_EQ(j["sources"][0]["counters"][1]["type"], "gauge");
  EXPECT_EQ(j["sinks"][0]["exceptions_total"], 2);
  EXPECT_EQ(j["sinks"][0]["counters"][0]["name"], "throttled_total");
}

// Counters of single devices (a Modbus source's meters): one family, a
// sample per device with its labels beside the source's.
TEST(Render, PerDeviceCountersCarryTheirLabels) {
  auto s = healthy();
  s.sources[0].stats.kind = "modbus";
  const auto source = s.sources[0].stats.name;
  s.sources[0].stats.counters = {
      {"device_down", "1 while the device's polls fail.", 1, common::Counter::Type::kGauge, true, {{"device", "m-1"}}},
      {"device_down", "1 while the device's polls fail.", 0, common::Counter::Type::kGauge, true, {{"device", "m\"2"}}},
      {"device_exceptions_total", "By code.", 4, common::Counter::Type::kCounter, false,
       {{"device", "m-1"}, {"code", "2"}}}};
  const auto text = to_prometheus(s);
  EXPECT_NE(text.find("# TYPE tidegate_modbus_source_device_down gauge\n"
                      "tidegate_modbus_source_device_down{source=\"" + source + "\",device=\"m-1\"} 1\n"
                      "tidegate_modbus_source_device_down{source=\"" + source + "\",device=\"m\\\"2\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tidegate_modbus_source_device_exceptions_total{source=\"" + source +
                      "\",device=\"m-1\",code=\"2\"} 4\n"),
            std::string::npos)
      << text;
  const auto j = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(j["sources"][0]["counters"][0]["labels"]["device"], "m-1");
  EXPECT_FALSE(j["sources"][0]["counters"][0].contains("code"));
}

// The exposition format, line by line: comments are HELP or TYPE, every
// sample belongs to a family declared just before it, names and label
// syntax are valid, values are numbers.
TEST(Render, PrometheusTextIsWellFormed) {
  auto s = healthy();
  s.sinks[0].stats.sink = "we\"ird\\name\nx";
  s.sinks[0].stats.sent_records_total = 99;
  const auto text = to_prometheus(s);
  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
  const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+-]+|NaN))");
  std::map<std::string, std::string> types;
  std::string family;
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      family = m[1];
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], family);
      EXPECT_TRUE(types.emplace(m[1], m[2]).second) << "family declared twice: " << m[1];
      if (m[2] == "counter") {
        EXPECT_EQ(family.substr(family.size() - 6), "_total") << family;
      }
    } else {
      ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a valid sample line: " << line;
      EXPECT_EQ(m[1], family) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 30);
  EXPECT_NE(text.find("tidegate_sink_sent_records_total{sink=\"we\\\"ird\\\\name\\nx\"} 99\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("tidegate_buffer_max_bytes 1000\n"), std::string::npos);
}

struct RoutesFixture : ::testing::Test {
  Fake f;
  StatusCollector collector{f.inputs()};
  std::vector<std::string> calls;
  StatusControls controls() {
    StatusControls c;
    c.pause_sink = [this](const std::string& sink) -> std::string {
      calls.push_back("pause " + sink);
      return sink == "cloud" ? "" : "no sink named '" + sink + "'";
    };
    c.resume_sink = [this](const std::string& sink) -> std::string {
      calls.push_back("resume " + sink);
      return "";
    };
    c.clear_dead_letters = [this](const buffer::DeadLetterSelection& which) -> std::string {
      calls.push_back("clear " + selection_query(which));
      return "";
    };
    c.replay_dead_letters = [this](const buffer::DeadLetterSelection& which, const std::string& to_sink) -> std::string {
      calls.push_back("replay " + selection_query(which) + " to '" + to_sink + "'");
      return "";
    };
    return c;
  }
  HttpResponse call(const HttpHandler& h, std::string method, std::string target, std::string auth = "") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.authorization = std::move(auth);
    return h(r);
  }
};

TEST_F(RoutesFixture, ReadOnlyPagesNeedNoLoginAndOtherMethodsAreRefused) {
  const auto h = make_status_routes(collector, controls(), "", nullptr);
  EXPECT_EQ(call(h, "GET", "/").status, 200u);
  EXPECT_NE(call(h, "GET", "/").content_type.find("text/html"), std::string::npos);
  EXPECT_EQ(call(h, "GET", "/api/status?x=1").status, 200u);
  EXPECT_EQ(call(h, "GET", "/metrics").status, 200u);
  EXPECT_EQ(call(h, "GET", "/healthz").status, 200u);
  EXPECT_EQ(call(h, "GET", "/readyz").status, 200u);
  EXPECT_EQ(call(h, "HEAD", "/api/status").status, 200u);
  EXPECT_EQ(call(h, "POST", "/metrics").status, 405u);
  EXPECT_EQ(call(h, "GET", "/nope").status, 404u);
  EXPECT_EQ(call(h, "GET", "/api/sinks/cloud/pause").status, 405u);
}

TEST_F(RoutesFixture, ReadyzFailsWhileTheBufferRefusesRecords) {
  const auto h = make_status_routes(collector, controls(), "", nullptr);
  collector.sample();
  f.now += 5 * kSecond;
  f.buffer.io_error_total = 1;
  collector.sample();
  const auto r = call(h, "GET", "/readyz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("I/O error"), std::string::npos) << r.body;
  EXPECT_EQ(call(h, "GET", "/healthz").status, 200u);  // alive all the same
}

TEST_F(RoutesFixture, OperationsAreRefusedWithoutAConfiguredToken) {
  const auto h = make_status_routes(collector, controls(), "", nullptr);
  const auto r = call(h, "POST", "/api/sinks/cloud/pause", "Bearer anything");
  EXPECT_EQ(r.status, 403u);
  EXPECT_NE(r.body.find("set [status] token"), std::string::npos);
  EXPECT_TRUE(calls.empty());
}

TEST_F(RoutesFixture, OperationsNeedTheRightToken) {
  const auto h = make_status_routes(collector, controls(), "s3cret", nullptr);
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/pause").status, 401u);
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/pause", "Bearer s3cre").status, 401u);
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/pause", "Bearer s3cret!").status, 401u);
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/pause", "s3cret").status, 401u);
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/pause", "Bearer s3cret").status, 200u);
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/resume", "Bearer s3cret").status, 200u);
  EXPECT_EQ(call(h, "POST", "/api/dead-letters/clear", "Bearer s3cret").status, 200u);
  EXPECT_EQ(call(h, "POST", "/api/dead-letters/clear?failed-before=1700000000000000000", "Bearer s3cret").status, 200u);
  EXPECT_EQ(call(h, "POST", "/api/dead-letters/replay?ids=3,9&to-sink=cloud", "Bearer s3cret").status, 200u);
  EXPECT_EQ(call(h, "POST", "/api/dead-letters/replay?ids=3,x", "Bearer s3cret").status, 400u);
  EXPECT_EQ(call(h, "POST", "/api/dead-letters/replay?ids=", "Bearer s3cret").status, 400u);
  EXPECT_EQ(call(h, "POST", "/api/sinks/other/pause", "Bearer s3cret").status, 404u);
  EXPECT_EQ(call(h, "POST", "/api/sinks/cloud/explode", "Bearer s3cret").status, 404u);
  EXPECT_EQ(calls, (std::vector<std::string>{"pause cloud", "resume cloud", "clear all",
                                             "clear failed-before=1700000000000000000", "replay ids=3,9 to 'cloud'",
                                             "pause other"}));
}

}  // namespace
}  // namespace tidegate::status
