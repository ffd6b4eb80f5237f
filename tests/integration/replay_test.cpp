// Replay and repair on a running gateway, with real peers: devices publish to
// the gateway's own MQTT listener (mosquitto_pub), a real mosquitto is the
// upstream of an MQTT sink, a loopback HTTP server the receiver of an HTTP
// sink. The operator uses the tidegate CLI, which goes through the status API.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "http_server.h"
#include "mosquitto.h"
#include "process.h"
#include "test_support.h"
#include "upstream_collector.h"

namespace tidegate {
namespace {

using namespace std::chrono_literals;
using testing::wait_for;

using testing::capture;

using Upstream = testing::UpstreamCollector;

std::string broker_url(const testing::Mosquitto& broker) {
  return "mqtt://127.0.0.1:" + std::to_string(broker.port());
}

class ReplayTest : public ::testing::Test {
 protected:
  void start_gateway(const std::string& sources, const std::string& sinks, const std::string& buffer_extra = "") {
    const auto status_port = testing::free_loopback_port();
    std::ofstream(dir_ / "tidegate.toml") << "[gateway]\nid = \"replay-test\"\n"
                                          << "[buffer]\npath = \"" << (dir_ / "buffer.db").string() << "\"\n"
                                          << buffer_extra
                                          << sources << sinks << "[status]\nlisten = \"127.0.0.1:" << status_port
                                          << "\"\ntoken = \"s3cret\"\n[heartbeat]\ninterval = \"0s\"\n";
    gateway_ = std::make_unique<testing::Process>(
        std::vector<std::string>{TIDEGATE_BINARY, "run", "--config", (dir_ / "tidegate.toml").string()},
        dir_ / "gateway.log");
    ASSERT_TRUE(wait_for([&] { return testing::port_accepts(status_port); }, 20s)) << gateway_->output();
  }
  // The CLI as an operator runs it: exit status and what it printed.
  std::pair<int, std::string> cli(const std::string& args) {
    const auto text = capture(std::string(TIDEGATE_BINARY) + " " + args + " --config " +
                              (dir_ / "tidegate.toml").string() + " 2>&1; echo \"exit=$?\"");
    const auto at = text.rfind("exit=");
    return {std::stoi(text.substr(at + 5)), text.substr(0, at)};
  }
  void publish(std::uint16_t port, const std::string& topic, const std::string& payload) {
    const auto file = dir_ / "payload";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << payload;
    const auto cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(port) + " -q 1 -i dev -t " + topic + " -f " +
                     file.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::Process> gateway_;
};

// Dead letters from the listener (too large, not JSON) and from a sink (HTTP
// 400) are listed with their reasons, exported whole, and replayed once the
// receiver is fixed: each arrives where it was missing, and only there.
TEST_F(ReplayTest, DeadLettersAreListedExportedAndReplayedToWhereTheyWereMissing) {
  testing::Mosquitto upstream_broker(dir_ / "upstream");
  Upstream upstream(upstream_broker.uri());
  std::atomic<bool> fixed{false};
  std::mutex mu;
  std::vector<std::string> accepted;  // request bodies the receiver took (JSON lines)
  testing::LoopbackHttpServer receiver([&](const testing::LoopbackHttpServer::Request& req, int) {
    if (!fixed && req.body().find("reject-me") != std::string::npos) {
      return std::pair<int, std::string>{400, "field t must be a number"};
    }
    std::lock_guard lock(mu);
    accepted.push_back(req.body());
    return std::pair<int, std::string>{200, ""};
  });
  auto received_by_receiver = [&] {
    std::lock_guard lock(mu);
    std::vector<std::string> payloads;
    for (const auto& body : accepted) {
      std::istringstream in(body);
      for (std::string line; std::getline(in, line);) payloads.push_back(nlohmann::json::parse(line)["payload"]);
    }
    return payloads;
  };
  const auto listener_port = testing::free_loopback_port();
  start_gateway("[[sources.mqtt_listener]]\nname = \"devices\"\nlisten = \"127.0.0.1:" + std::to_string(listener_port) +
                    "\"\nrequire_json = true\nmax_payload = \"1KiB\"\nkey_from_topic = \"sensors/{device}/#\"\n",
                "[[sinks.mqtt]]\nname = \"cloud\"\nurl = \"" + broker_url(upstream_broker) + "\"\nlinger = \"5ms\"\n"
                "[[sinks.http]]\nname = \"warehouse\"\nurl = \"http://127.0.0.1:" + std::to_string(receiver.port()) +
                    "/ingest\"\nformat = \"jsonl\"\ngzip = false\nbatch_max_records = 1\nlinger = \"5ms\"\n",
                "retention = \"1h\"\n");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(wait_for([&] { return testing::port_accepts(listener_port); }, 10s)) << gateway_->output();

  const std::string big = "{\"blob\":\"" + std::string(2000, 'x') + "\"}";
  publish(listener_port, "sensors/ahu-1/t", "{\"t\":1}");
  publish(listener_port, "sensors/ahu-1/blob", big);
  publish(listener_port, "sensors/ahu-1/t", "21.5 C");
  publish(listener_port, "sensors/ahu-1/t", "{\"t\":\"reject-me\"}");
  publish(listener_port, "sensors/ahu-1/t", "{\"t\":2}");
  ASSERT_TRUE(wait_for([&] { return upstream.got().size() >= 3 && received_by_receiver().size() >= 2; }, 20s))
      << gateway_->output();

  auto [code, out] = cli("dead-letters list");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("3 dead letter(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("exceeds max_payload"), std::string::npos) << out;
  EXPECT_NE(out.find("not valid JSON"), std::string::npos) << out;
  EXPECT_NE(out.find("sink 'warehouse'"), std::string::npos) << out;
  EXPECT_NE(out.find("source 'devices' (at ingest)"), std::string::npos) << out;
  EXPECT_NE(out.find("field t must be a number"), std::string::npos) << out;
  EXPECT_EQ(out.find(std::string(200, 'x')), std::string::npos) << "list shows a preview only";

  std::tie(code, out) = cli("dead-letters export --output " + (dir_ / "dead.jsonl").string());
  ASSERT_EQ(code, 0) << out;
  std::vector<nlohmann::json> exported;
  {
    std::ifstream in(dir_ / "dead.jsonl");
    for (std::string line; std::getline(in, line);) exported.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(exported.size(), 3u);
  EXPECT_EQ(exported[0]["refused_by"], "ingest");
  EXPECT_EQ(exported[0]["record"]["payload"], big);  // whole
  EXPECT_EQ(exported[1]["record"]["payload"], "21.5 C");
  EXPECT_EQ(exported[2]["refused_by"], "sink");
  EXPECT_EQ(exported[2]["sink"], "warehouse");
  EXPECT_EQ(exported[2]["record"]["payload"], "{\"t\":\"reject-me\"}");

  // Without --yes and without an answer nothing happens.
  std::tie(code, out) = cli("dead-letters replay --all < /dev/null");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("not confirmed"), std::string::npos) << out;

  fixed = true;  // the receiver's schema now takes strings
  const auto cloud_before = upstream.got().size();
  std::tie(code, out) = cli("dead-letters replay --all --yes");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("replayed 3 dead letter(s), through the running gateway"), std::string::npos) << out;

  // The input refused at ingest reaches both sinks; the record the receiver
  // refused reaches the receiver only (the cloud had it already).
  ASSERT_TRUE(wait_for([&] { return received_by_receiver().size() >= 5 && upstream.got().size() >= cloud_before + 2; },
                       20s))
      << gateway_->output();
  std::this_thread::sleep_for(500ms);  // nothing more may come
  auto receiver_got = received_by_receiver();
  EXPECT_EQ(receiver_got, (std::vector<std::string>{"{\"t\":1}", "{\"t\":2}", big, "21.5 C", "{\"t\":\"reject-me\"}"}));
  const auto cloud = upstream.got();
  ASSERT_EQ(cloud.size(), cloud_before + 2);
  EXPECT_EQ(cloud[cloud_before]["payload"], big);
  EXPECT_EQ(cloud[cloud_before + 1]["payload"], "21.5 C");
  EXPECT_EQ(cloud[cloud_before]["seq"], 4);  // a new record after the three stored at first
  EXPECT_EQ(cloud[cloud_before]["ingest_ns"], exported[0]["record"]["ingest_ns"]);  // its original ingest time

  std::tie(code, out) = cli("dead-letters list");
  EXPECT_NE(out.find("no dead letters"), std::string::npos) << out;
  // Logged with who asked: the address and the CLI with its user.
  EXPECT_NE(gateway_->output().find("operator request: replay dead letters (all): done (from 127.0.0.1, tidegate-cli/"),
            std::string::npos)
      << gateway_->output();
  EXPECT_EQ(WEXITSTATUS(gateway_->signal_and_wait(SIGTERM)), 0);

  // Export of history, from the stopped gateway's buffer: every stored record
  // in the envelope, narrowed by device.
  std::tie(code, out) = cli("export --device ahu-1 --output " + (dir_ / "history.jsonl").string());
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("exported 6 records"), std::string::npos) << out << gateway_->output();
  std::tie(code, out) = cli("export --device nobody");
  EXPECT_NE(out.find("exported 0 records"), std::string::npos) << out;
}

// A sink rewound by time on a running gateway sends again exactly the
// retained records from then, in order, to a real upstream broker, then live
// data with nothing skipped.
TEST_F(ReplayTest, ASinkRewoundByTimeRedeliversTheRetainedRecordsToTheUpstreamInOrderThenLiveData) {
  testing::Mosquitto upstream_broker(dir_ / "upstream");
  Upstream upstream(upstream_broker.uri());
  start_gateway("[[sources.sim]]\nname = \"sim\"\ndevices = 10\nrate = 10\n",
                "[[sinks.mqtt]]\nname = \"cloud\"\nurl = \"" + broker_url(upstream_broker) + "\"\nlinger = \"5ms\"\n",
                "retention = \"1h\"\n");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(wait_for([&] { return upstream.got().size() >= 300; }, 30s)) << gateway_->output();
  const auto first = upstream.got();
  // A whole second inside what was delivered: the replay starts at the first
  // record ingested at or after it.
  const std::int64_t from_s = first[first.size() / 3]["ingest_ns"].get<std::int64_t>() / 1'000'000'000 + 1;
  std::uint64_t expected_first = 0;
  for (const auto& r : first) {
    if (r["ingest_ns"].get<std::int64_t>() >= from_s * 1'000'000'000) {
      expected_first = r["seq"];
      break;
    }
  }
  ASSERT_GT(expected_first, 0u);
  auto [code, out] = cli("sink rewind cloud --to-time " + std::to_string(from_s) + " --yes");
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(wait_for([&] { return gateway_->output().find("replay done: back to live data") != std::string::npos; },
                       30s))
      << gateway_->output();
  const auto newest_before = first.back()["seq"].get<std::uint64_t>();
  ASSERT_TRUE(wait_for([&] { return upstream.got().back()["seq"].get<std::uint64_t>() > newest_before + 100; }, 30s));
  const auto all = upstream.got();
  // The first delivery in order up to the rewind, then from the target on,
  // every sequence once more in order and on into live data.
  std::size_t i = 1;
  while (i < all.size() && all[i]["seq"] == all[i - 1]["seq"].get<std::uint64_t>() + 1) ++i;
  ASSERT_LT(i, all.size());
  EXPECT_EQ(all[0]["seq"], 1);
  EXPECT_EQ(all[i]["seq"], expected_first);
  for (std::size_t k = i + 1; k < all.size(); ++k) {
    ASSERT_EQ(all[k]["seq"], all[k - 1]["seq"].get<std::uint64_t>() + 1) << "at " << k;
  }
  EXPECT_EQ(WEXITSTATUS(gateway_->signal_and_wait(SIGTERM)), 0);
}

}  // namespace
}  // namespace tidegate
