// Routes and processors on a running gateway with real peers: devices
// publish to the gateway's own MQTT listener (mosquitto_pub), a file sink
// keeps everything raw, an MQTT sink sends a filtered, enriched and redacted
// subset to a real upstream mosquitto. A SIGHUP with a changed chain and a
// rewind replay history through the new chain.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mosquitto.h"
#include "process.h"
#include "test_support.h"
#include "tidegate/processors/redact.h"
#include "upstream_collector.h"

namespace tidegate {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::wait_for;

class ProcessingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_port_ = testing::free_loopback_port();
    status_port_ = testing::free_loopback_port();
    std::ofstream(dir_ / "assets.csv") << "device,building,floor\nahu-*,B,2\n";
    std::ofstream(dir_ / "site.key") << kKey << "\n";
  }

  // The configuration with the given filter condition and site name.
  void write_config(const std::string& condition, const std::string& site) {
    std::ofstream(dir_ / "tidegate.toml")
        << "[gateway]\nid = \"proc-test\"\n"
        << "[buffer]\npath = \"" << (dir_ / "buffer.db").string() << "\"\nretention = \"1h\"\n"
        << "[[sources.mqtt_listener]]\nname = \"devices\"\nlisten = \"127.0.0.1:" << listener_port_
        << "\"\nkey_from_topic = \"site/+/{device}/#\"\n"
        << "[[processors.filter]]\nname = \"hot\"\ncondition = '" << condition << "'\n"
        << "[[processors.enrich]]\nname = \"site\"\nfields = { site = \"" << site << "\" }\ntable_file = \""
        << (dir_ / "assets.csv").string() << "\"\n"
        << "[[processors.redact]]\nname = \"private\"\nfields = [\"badge\"]\nmode = \"hash\"\nkey_file = \""
        << (dir_ / "site.key").string() << "\"\n"
        << "[[sinks.file]]\nname = \"raw\"\ndirectory = \"" << (dir_ / "out").string()
        << "\"\nmax_file_age = \"1s\"\nlinger = \"5ms\"\n"
        << "[[sinks.mqtt]]\nname = \"cloud\"\nurl = \"mqtt://127.0.0.1:" << upstream_.port()
        << "\"\nlinger = \"5ms\"\nprocessors = [\"hot\", \"site\", \"private\"]\nroute = { topics = [\"site/#\"] }\n"
        << "[status]\nlisten = \"127.0.0.1:" << status_port_ << "\"\ntoken = \"s3cret\"\n"
        << "[heartbeat]\ninterval = \"0s\"\n";
  }

  void start_gateway() {
    gateway_ = std::make_unique<testing::Process>(
        std::vector<std::string>{TIDEGATE_BINARY, "run", "--config", (dir_ / "tidegate.toml").string()},
        dir_ / "gateway.log");
    ASSERT_TRUE(wait_for([&] { return testing::port_accepts(status_port_); }, 20s)) << gateway_->output();
  }

  // One mosquitto_pub per topic, one message per line, QoS 1.
  void publish_lines(const std::string& topic, const std::vector<std::string>& lines) {
    const auto file = dir_ / "lines";
    {
      std::ofstream out(file, std::ios::trunc);
      for (const auto& l : lines) out << l << "\n";
    }
    const auto cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(listener_port_) + " -q 1 -i pub -t " + topic +
                     " -l < " + file.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  // Every line of the file sink's closed and open files.
  std::vector<json> raw_lines() {
    std::vector<json> out;
    if (!std::filesystem::exists(dir_ / "out")) return out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "out")) {
      std::ifstream in(e.path());
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) out.push_back(json::parse(line));
      }
    }
    return out;
  }

  std::pair<int, std::string> cli(const std::string& args) {
    const auto text = testing::capture(std::string(TIDEGATE_BINARY) + " " + args + " --config " +
                                       (dir_ / "tidegate.toml").string() + " 2>&1; echo \"exit=$?\"");
    const auto at = text.rfind("exit=");
    return {std::stoi(text.substr(at + 5)), text.substr(0, at)};
  }

  static constexpr const char* kKey = "a-site-key-of-32-bytes-for-hmacs";
  testing::TempDir dir_;
  testing::Mosquitto upstream_{dir_ / "upstream"};
  std::uint16_t listener_port_ = 0, status_port_ = 0;
  std::unique_ptr<testing::Process> gateway_;
};

TEST_F(ProcessingTest, TheUpstreamGetsTheTransformedSubsetTheFileEverythingAndARewindReplaysThroughTheNewChain) {
  testing::UpstreamCollector upstream(upstream_.uri());
  write_config(".t >= 25", "plant-3");
  start_gateway();
  if (HasFatalFailure()) return;

  std::vector<std::string> ahu;
  for (int i = 0; i < 10; ++i)
    ahu.push_back(R"({"t": )" + std::to_string(20 + i) + R"(, "badge": "B-)" + std::to_string(i) + R"("})");
  publish_lines("site/north/ahu-1/temp", ahu);                       // 10: 5 hot enough
  publish_lines("other/ahu-2/temp", {R"({"t": 30})", R"({"t": 31})"});  // 2: not routed (topic)
  publish_lines("site/north/door-3/state", {"open", "closed"});          // 2: not JSON, dead-lettered by hot

  // The file sink has all 14, exactly as published.
  ASSERT_TRUE(wait_for([&] { return raw_lines().size() >= 14; }, 20s)) << gateway_->output();
  const auto raw = raw_lines();
  EXPECT_EQ(raw.size(), 14u);
  std::multiset<std::string> raw_payloads;
  for (const auto& r : raw) raw_payloads.insert(r["payload"].get<std::string>());
  EXPECT_EQ(raw_payloads.count(ahu[0]), 1u);
  EXPECT_EQ(raw_payloads.count("open"), 1u);

  // The upstream has the 5 hot readings, enriched, the badge hashed.
  ASSERT_TRUE(wait_for([&] { return upstream.got().size() >= 5; }, 20s)) << gateway_->output();
  auto got = upstream.got();
  ASSERT_EQ(got.size(), 5u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto p = json::parse(got[i]["payload"].get<std::string>());
    const int n = 25 + static_cast<int>(i);
    EXPECT_EQ(p["t"], n);
    EXPECT_EQ(p["site"], "plant-3");
    EXPECT_EQ(p["building"], "B");
    EXPECT_EQ(p["floor"], 2);
    EXPECT_EQ(p["badge"], processors::hmac_sha256_hex(kKey, "B-" + std::to_string(n - 20)));
  }

  // Counted: not routed, filtered, dead-lettered with the processor's name.
  const auto metrics = testing::capture("curl -s http://127.0.0.1:" + std::to_string(status_port_) + "/metrics");
  EXPECT_NE(metrics.find("tidegate_sink_not_routed_records_total{sink=\"cloud\"} 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tidegate_sink_filtered_records_total{sink=\"cloud\"} 5"), std::string::npos);
  EXPECT_NE(metrics.find("tidegate_processor_records_in_total{sink=\"cloud\",processor=\"hot\",kind=\"filter\"} 12"),
            std::string::npos);
  EXPECT_NE(metrics.find("tidegate_processor_dead_lettered_records_total{sink=\"cloud\",processor=\"hot\","
                         "kind=\"filter\"} 2"),
            std::string::npos);
  EXPECT_NE(metrics.find("tidegate_processor_records_out_total{sink=\"cloud\",processor=\"private\","
                         "kind=\"redact\"} 5"),
            std::string::npos);
  auto [code, dead] = cli("dead-letters list");
  EXPECT_EQ(code, 0) << dead;
  EXPECT_NE(dead.find("processor 'hot' (filter): the payload is not JSON"), std::string::npos) << dead;

  // A new chain at SIGHUP (another threshold, another site name), then a
  // rewind: history goes through today's logic.
  write_config(".t >= 28", "plant-4");
  gateway_->signal(SIGHUP);
  ASSERT_TRUE(wait_for([&] { return gateway_->output().find("sink 'cloud' restarted") != std::string::npos; }, 10s))
      << gateway_->output();
  EXPECT_EQ(gateway_->output().find("sink 'raw' restarted"), std::string::npos);  // its chain did not change
  auto [rc, out] = cli("sink rewind cloud --to-earliest --yes");
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(wait_for([&] { return upstream.got().size() >= 7; }, 20s)) << gateway_->output();
  got = upstream.got();
  ASSERT_EQ(got.size(), 7u);
  for (std::size_t i = 5; i < 7; ++i) {
    const auto p = json::parse(got[i]["payload"].get<std::string>());
    EXPECT_EQ(p["t"], 28 + static_cast<int>(i - 5));
    EXPECT_EQ(p["site"], "plant-4");
  }
  // The file sink was not rewound: it still has each record once.
  EXPECT_EQ(raw_lines().size(), 14u);
  EXPECT_EQ(WEXITSTATUS(gateway_->signal_and_wait(SIGTERM)), 0);
}

}  // namespace
}  // namespace tidegate
