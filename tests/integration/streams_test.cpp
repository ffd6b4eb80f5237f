// Windows exactly once through kill -9: the real gateway aggregates
// readings with known values from 50 devices into 10-second windows while it
// is SIGKILLed again and again, once over a backlog and once live (readings
// published over a real mosquitto while the gateway dies); the windows it
// leaves in the buffer must equal a reference the test computes from the
// same readings: none missing, none twice, every aggregate exact.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "helper_threads.h"
#include "mosquitto.h"
#include "process.h"
#include "test_support.h"
#include "tidegate/buffer/buffer.h"

namespace tidegate {
namespace {

using Json = nlohmann::json;
using testing::Process;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr int kDevices = 50;
constexpr int kSeconds = 3'600;  // per device one reading a second: 360 windows each
constexpr std::int64_t kT0 = 1'790'000'000 * kSecond;

// One window's figures, computed by the test from its inputs in the
// buffer's order: first/last by the input's time, ties by arrival.
struct Reference {
  std::uint64_t count = 0;
  double sum = 0, min = 0, max = 0, first = 0, last = 0;
  std::int64_t min_ts = 0, max_ts = 0;
  std::vector<double> values;

  void add(double v, std::int64_t ts) {
    if (count == 0 || ts < min_ts) first = v, min_ts = ts;
    if (count == 0 || ts >= max_ts) last = v, max_ts = ts;
    min = count == 0 ? v : std::min(min, v);
    max = count == 0 ? v : std::max(max, v);
    sum += v;
    count += 1;
    values.push_back(v);
  }
};

// Windows of 10 s, by device and start.
std::string window_key(const std::string& device, std::int64_t start_ns) {
  return device + " " + std::to_string(start_ns);
}

double value_of(int device, int second) { return static_cast<double>((device * 7919 + second * 104729) % 1000) - 300; }

class StreamsCrashTest : public ::testing::Test {
 protected:
  std::filesystem::path db() const { return dir_.path() / "buffer.db"; }

  buffer::BufferOptions options(bool read_only) const {
    buffer::BufferOptions o;
    o.path = db();
    o.read_only = read_only;
    o.log = [](buffer::LogLevel, std::string_view) {};
    return o;
  }

  // The readings, already in the buffer when the gateway first starts (ingest
  // times in the past), so that each run has work to be killed in.
  void write_backlog() {
    auto b = buffer::Buffer::open(options(false));
    std::vector<buffer::NewRecord> batch;
    for (int s = 0; s < kSeconds; ++s) {
      for (int d = 0; d < kDevices; ++d) {
        buffer::NewRecord r;
        r.ingest_ns = kT0 + s * kSecond + d * 1'000'000;
        r.source = "meters";
        r.partition_key = "meter-" + std::to_string(d);
        r.topic = "site/meters/" + r.partition_key;
        r.content_type = "application/json";
        r.payload = Json{{"kw", value_of(d, s)}, {"n", s}}.dump();
        batch.push_back(std::move(r));
      }
      if (s % 20 == 19 || s == kSeconds - 1) {
        ASSERT_TRUE(b->append_wait(std::move(batch)).ok());
        batch.clear();
      }
    }
  }

  std::map<std::string, Reference> reference() const {
    std::map<std::string, Reference> out;
    for (int d = 0; d < kDevices; ++d) {
      for (int s = 0; s < kSeconds; ++s) {
        out[window_key("meter-" + std::to_string(d), kT0 + s / 10 * 10 * kSecond)].add(value_of(d, s), s);
      }
    }
    return out;
  }

  // The stream's committed position, read from the stopped gateway's file.
  std::uint64_t position() const {
    auto b = buffer::Buffer::open(options(true));
    for (const auto& [k, v] : b->source_state("streams/w10/position")) return std::stoull(v);
    return 0;
  }

  std::vector<buffer::Record> windows() const {
    auto b = buffer::Buffer::open(options(true));
    std::vector<buffer::Record> out;
    for (const auto& r : b->read_after(0, 10'000'000, SIZE_MAX).records) {
      if (r.source == "w10") out.push_back(r);
    }
    return out;
  }

  std::filesystem::path write_config() const {
    const auto path = dir_.path() / "tidegate.toml";
    std::ofstream(path) << "[gateway]\nid = \"crash-gw\"\n" << testing::kQuietDaemon << "[buffer]\npath = \""
                        << db().string()
                        // Retention keeps what the stream has read and made (no
                        // sink here delivers it), for the test to read.
                        << "\"\ndisk_reserve = 0\nretention = \"3650d\"\n"
                           "[[processors.window]]\nname = \"w10\"\nfields = [\"kw\"]\nsize = \"10s\"\n"
                           "start = \"earliest\"\nroute = { sources = [\"meters\"] }\n";
    return path;
  }

  // Every window in the buffer against `expected`: none twice, none
  // unexpected, none missing, every aggregate exact.
  void expect_windows(const std::map<std::string, Reference>& expected, std::size_t& seen_count) const {
    std::set<std::string> seen;
    for (const auto& r : windows()) {
      const auto w = Json::parse(r.payload);
      ASSERT_TRUE(r.device_ts_ns);  // the window's end
      const std::string key = window_key(w["device"].get<std::string>(), *r.device_ts_ns - 10 * kSecond);
      ASSERT_TRUE(seen.insert(key).second) << "window " << key << " emitted twice";
      ASSERT_TRUE(expected.count(key)) << "window " << key << " was never expected";
      const auto& ref = expected.at(key);
      const auto& f = w["fields"]["kw"];
      EXPECT_EQ(w["inputs"].get<std::uint64_t>(), ref.count) << key;
      EXPECT_EQ(f["count"].get<std::uint64_t>(), ref.count) << key;
      EXPECT_EQ(f["min"].get<double>(), ref.min) << key;
      EXPECT_EQ(f["max"].get<double>(), ref.max) << key;
      EXPECT_EQ(f["sum"].get<double>(), ref.sum) << key;
      EXPECT_EQ(f["first"].get<double>(), ref.first) << key;
      EXPECT_EQ(f["last"].get<double>(), ref.last) << key;
      EXPECT_DOUBLE_EQ(f["mean"].get<double>(), ref.sum / static_cast<double>(ref.count)) << key;
      double sq = 0;
      const double mean = ref.sum / static_cast<double>(ref.count);
      for (const double v : ref.values) sq += (v - mean) * (v - mean);
      const double stddev = ref.count > 1 ? std::sqrt(sq / static_cast<double>(ref.count - 1)) : 0.0;
      EXPECT_NEAR(f["stddev"].get<double>(), stddev, 1e-9) << key;
    }
    EXPECT_EQ(seen.size(), expected.size()) << "windows missing";
    seen_count = seen.size();
  }

  std::size_t runs_started() const { return testing::runs_started(log()); }
  std::filesystem::path log() const { return dir_.path() / "gateway.log"; }

  testing::TempDir dir_;
};

TEST_F(StreamsCrashTest, EveryWindowIsEmittedExactlyOnceThroughRepeatedKills) {
  write_backlog();
  const auto config = write_config();
  const std::uint64_t last_input = static_cast<std::uint64_t>(kDevices) * kSeconds;
  std::mt19937 rng(18);
  std::uniform_int_distribution<int> up_ms(0, 60);
  int kills_mid_work = 0;
  for (int run = 0; run < 200 && kills_mid_work < 20; ++run) {
    const auto before = runs_started();
    Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
    for (int i = 0; i < 3000 && runs_started() == before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_GT(runs_started(), before) << testing::read_text(log());
    std::this_thread::sleep_for(std::chrono::milliseconds(up_ms(rng)));
    gw.signal_and_wait(SIGKILL);
    if (position() >= last_input) break;  // done: the last windows close in the clean run below
    ++kills_mid_work;
  }
  ASSERT_GE(kills_mid_work, 20) << "the gateway finished before it could be killed often enough";

  // A last run, stopped cleanly once every window is out (a read-only look
  // beside the running gateway).
  {
    Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
    const auto expected = reference().size();
    ASSERT_TRUE(testing::wait_for([&] { return windows().size() >= expected; }, std::chrono::seconds(120)))
        << testing::read_text(log());
    EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  }

  std::size_t seen = 0;
  expect_windows(reference(), seen);
  if (HasFatalFailure()) return;
  std::printf("windows exactly once: %zu windows from %llu readings through %d kills mid-work\n", seen,
              static_cast<unsigned long long>(last_input), kills_mid_work);
}

// Live: a publisher sends numbered readings of 50 devices over a real
// mosquitto (QoS 1) while the gateway, which takes them in with its MQTT
// source and aggregates them into 10-second windows on ingest time, is
// SIGKILLed at least 20 times. Windows close by input and, once the stream
// has read everything, by the clock: both paths cross the kills here. Every
// reading the broker acknowledged reaches the buffer (a resend after a kill
// may store one twice: MQTT's at-least-once, before the stream); the windows
// must equal a reference computed from the readings the buffer holds, with
// the ingest times it gave them: none missing, none twice, every aggregate
// exact.
TEST_F(StreamsCrashTest, LiveReadingsMakeExactWindowsThroughRepeatedKills) {
  testing::Mosquitto broker(dir_.path() / "broker");
  const auto config = dir_.path() / "live.toml";
  std::ofstream(config) << "[gateway]\nid = \"live-gw\"\n" << testing::kQuietDaemon << "[buffer]\npath = \""
                        << db().string() << "\"\ndisk_reserve = 0\nretention = \"3650d\"\n"
                        << "[[sources.mqtt]]\nname = \"meters\"\nurl = \"mqtt://127.0.0.1:" << broker.port()
                        << "\"\ntopics = [\"live/#\"]\nkey_from_topic = \"live/{device}\"\n"
                        // Lateness covers a commit delayed on a loaded machine:
                        // a reading's ingest time is when it was received.
                        << "[[processors.window]]\nname = \"w10\"\nfields = [\"kw\"]\nsize = \"10s\"\n"
                           "allowed_lateness = \"3s\"\nroute = { sources = [\"meters\"] }\n";
  auto started = [&](std::size_t before) {
    return testing::wait_for([&] { return runs_started() > before; }, std::chrono::seconds(10));
  };
  // The first run makes the broker keep a session for the gateway, so what
  // is published while it is down waits for it.
  {
    const auto before = runs_started();
    Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
    ASSERT_TRUE(started(before)) << testing::read_text(log());
    ASSERT_TRUE(testing::wait_for([&] { return testing::read_text(log()).find("subscribed to") != std::string::npos; }))
        << testing::read_text(log());
    gw.signal_and_wait(SIGKILL);
  }

  std::atomic<bool> stop{false}, publisher_done{false}, publish_failed{false};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    testing::SetOnExit done(publisher_done);
    try {
      ::mqtt::async_client client(broker.uri(), "live-meters", 100000, nullptr);
      client.connect(::mqtt::connect_options_builder().clean_session(true).max_inflight(100).finalize())->wait();
      std::vector<::mqtt::delivery_token_ptr> window;
      for (int n = 0; !stop; ++n) {
        const int d = n % kDevices;
        window.push_back(client.publish(::mqtt::make_message(
            "live/meter-" + std::to_string(d), Json{{"kw", value_of(d, n)}, {"n", n}}.dump(), 1, false)));
        if (window.size() == 50) {  // ~1,000 readings a second
          for (auto& t : window) {
            if (!t->wait_for(std::chrono::seconds(30))) publish_failed = true;
          }
          published = n + 1;
          window.clear();
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
      for (auto& t : window) {
        if (!t->wait_for(std::chrono::seconds(30))) publish_failed = true;
      }
      published += static_cast<int>(window.size());
      client.disconnect()->wait_for(std::chrono::seconds(10));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the publisher failed: " << e.what();
      publish_failed = true;
    }
  });

  std::mt19937 rng(21);
  std::uniform_int_distribution<int> up_ms(100, 900);
  int kills = 0;
  for (; kills < 22 && !publisher_done; ++kills) {
    const auto before = runs_started();
    Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
    ASSERT_TRUE(started(before)) << testing::read_text(log());
    std::this_thread::sleep_for(std::chrono::milliseconds(up_ms(rng)));
    gw.signal_and_wait(SIGKILL);
  }
  stop = true;
  publisher.join();
  ASSERT_FALSE(publish_failed.load());
  ASSERT_GE(kills, 20);
  const int readings = published.load();

  // The last run: every reading arrives, and the last windows close on the
  // clock (their end plus the lateness) while no input comes.
  struct Input {
    std::string device;
    std::int64_t ingest_ns;
    double kw;
  };
  std::vector<Input> inputs;  // in the buffer's order
  auto read_inputs = [&] {
    inputs.clear();
    std::vector<int> seen(static_cast<std::size_t>(readings), 0);
    auto b = buffer::Buffer::open(options(true));
    for (const auto& r : b->read_after(0, 10'000'000, SIZE_MAX).records) {
      if (r.source != "meters") continue;
      const auto j = Json::parse(r.payload);
      seen[j["n"].get<std::size_t>()] = 1;
      inputs.push_back({r.partition_key, r.ingest_ns, j["kw"].get<double>()});
    }
    return std::count(seen.begin(), seen.end(), 0) == 0;
  };
  auto live_reference = [&] {
    std::map<std::string, Reference> out;
    for (const auto& in : inputs) {
      out[window_key(in.device, in.ingest_ns - in.ingest_ns % (10 * kSecond))].add(in.kw, in.ingest_ns);
    }
    return out;
  };
  Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
  ASSERT_TRUE(testing::wait_for(read_inputs, std::chrono::seconds(60)))
      << "readings the broker acknowledged are missing from the buffer\n" << testing::read_text(log());
  // Every reading may already have been stored before this run starts; the
  // broker then still resends the last ones the killed gateway had not
  // acknowledged, and they are stored again, now. So the reference is the
  // buffer's inputs once every one of them is in a window: the windows'
  // inputs add up to the inputs the buffer holds (a stream that counted an
  // input twice after a kill never gets there, and fails here).
  std::map<std::string, Reference> expected;
  std::size_t windowed = 0;
  ASSERT_TRUE(testing::wait_for(
      [&] {
        read_inputs();
        expected = live_reference();
        windowed = 0;
        for (const auto& r : windows()) windowed += Json::parse(r.payload)["inputs"].get<std::size_t>();
        return windowed == inputs.size();
      },
      std::chrono::seconds(60)))
      << windowed << " of " << inputs.size() << " inputs in " << windows().size() << " of " << expected.size()
      << " windows\n" << testing::read_text(log());
  EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  read_inputs();
  const auto stopped = live_reference();
  ASSERT_EQ(stopped.size(), expected.size()) << "inputs came after their windows closed";

  std::size_t seen = 0;
  expect_windows(stopped, seen);
  if (HasFatalFailure()) return;
  std::printf("live windows exactly once: %zu windows from %zu stored readings (%d published) through %d kills\n",
              seen, inputs.size(), readings, kills);
}

// An operator's rewind of a window recomputes its windows from the retained
// input: through the running gateway (its API), and on the file while no
// gateway runs (the next start recomputes).
TEST_F(StreamsCrashTest, ARewindThroughTheGatewayOrOnTheFileMakesTheWindowsAgain) {
  {
    auto b = buffer::Buffer::open(options(false));
    std::vector<buffer::NewRecord> batch;
    for (int s = 0; s < 60; ++s) {
      for (int d = 0; d < 5; ++d) {
        buffer::NewRecord r;
        r.ingest_ns = kT0 + s * kSecond + d;
        r.source = "meters";
        r.partition_key = "meter-" + std::to_string(d);
        r.payload = Json{{"kw", value_of(d, s)}}.dump();
        batch.push_back(std::move(r));
      }
    }
    ASSERT_TRUE(b->append_wait(std::move(batch)).ok());
  }
  const auto status_port = testing::free_loopback_port();
  const auto config = dir_.path() / "tidegate.toml";
  std::ofstream(config) << "[gateway]\nid = \"rewind-gw\"\n[heartbeat]\ninterval = \"0s\"\n[buffer]\npath = \""
                        << db().string() << "\"\ndisk_reserve = 0\nretention = \"3650d\"\n"
                        << "[status]\nlisten = \"127.0.0.1:" << status_port << "\"\ntoken = \"s3cret\"\n"
                        << "[[processors.window]]\nname = \"w10\"\nfields = [\"kw\"]\nsize = \"10s\"\n"
                           "start = \"earliest\"\nroute = { sources = [\"meters\"] }\n";
  auto cli = [&](const std::string& args) {
    return testing::capture(std::string(TIDEGATE_BINARY) + " " + args + " --yes --config " + config.string() +
                            " 2>&1; echo \"exit=$?\"");
  };
  auto each_window_times = [&](std::size_t times) {
    std::map<std::string, std::size_t> seen;
    for (const auto& r : windows()) seen[r.partition_key + " " + std::to_string(*r.device_ts_ns)] += 1;
    if (seen.size() != 30) return false;
    for (const auto& [key, n] : seen) {
      if (n != times) return false;
    }
    return true;
  };
  {
    Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
    ASSERT_TRUE(testing::wait_for([&] { return each_window_times(1); }, std::chrono::seconds(30)))
        << testing::read_text(log());
    const auto out = cli("sink rewind w10 --to-earliest");
    EXPECT_NE(out.find("exit=0"), std::string::npos) << out;
    EXPECT_NE(out.find("through the running gateway"), std::string::npos) << out;
    EXPECT_TRUE(testing::wait_for([&] { return each_window_times(2); }, std::chrono::seconds(30)));
    EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  }
  const auto out = cli("sink rewind w10 --to-seq 1");
  EXPECT_NE(out.find("exit=0"), std::string::npos) << out;
  EXPECT_NE(out.find("on the buffer file"), std::string::npos) << out;
  EXPECT_NE(out.find("drops its state"), std::string::npos) << out;
  Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, log());
  EXPECT_TRUE(testing::wait_for([&] { return each_window_times(3); }, std::chrono::seconds(30)))
      << testing::read_text(log());
}

}  // namespace
}  // namespace tidegate
