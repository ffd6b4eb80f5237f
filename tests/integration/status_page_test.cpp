// The status page of a running gateway, as a technician and a monitoring
// system see it: simulated sensors, a local file sink that works, and an
// uplink (Kinesis) that is down. Checked through curl, Prometheus' own text
// parser (python3-prometheus-client), and a headless Chromium rendering the
// page.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "mosquitto.h"
#include "process.h"
#include "test_support.h"
#include "tidegate/buffer/buffer.h"

namespace tidegate {
namespace {

using testing::Process;
using testing::wait_for;
using namespace std::chrono_literals;

// Runs a shell command; its standard output.
using testing::capture;

class StatusPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<testing::Mosquitto>(dir_.path());
    port_ = testing::free_loopback_port();
    const auto dead_uplink = testing::free_loopback_port();  // nothing listens there
    const auto config = dir_ / "tidegate.toml";
    std::ofstream(config) << "[gateway]\nid = \"plant-7\"\n"
                          << "[buffer]\npath = \"" << (dir_ / "buffer.db").string()
                          << "\"\ndisk_reserve = 0\ncommit_window = \"5ms\"\n" << buffer_limits()
                          << "[status]\nlisten = \"127.0.0.1:" << port_ << "\"\ntoken = \"t0ken\"\n"
                          << "failing_red_after = \"2s\"\n"
                          << "[heartbeat]\ninterval = \"1s\"\n"
                          << "[[sources.sim]]\nname = \"sensors\"\nmode = \"buffer\"\ndevices = 10\nrate = 10.0\n"
                          << "[[sources.mqtt]]\nname = \"site\"\nurl = \"mqtt://127.0.0.1:" << broker_->port() << "\"\n"
                          << "[[sources.mqtt_listener]]\nname = \"devices\"\nlisten = \"127.0.0.1:" << listener_port_
                          << "\"\n"
                          << "[[sinks.file]]\nname = \"local\"\ndirectory = \"" << (dir_ / "out").string() << "\"\n"
                          << "[[sinks.kinesis]]\nname = \"cloud\"\nstream = \"readings\"\nregion = \"eu-west-1\"\n"
                          << "endpoint = \"http://127.0.0.1:" << dead_uplink << "\"\naccess_key_id = \"AK\"\n"
                          << "secret_access_key = \"SK\"\nretry_min = \"50ms\"\nretry_max = \"500ms\"\n";
    before_start();
    gateway_ = std::make_unique<Process>(std::vector<std::string>{TIDEGATE_BINARY, "run", "--config", config.string()},
                                         dir_ / "gateway.log");
    ASSERT_TRUE(wait_for([&] { return !http("/healthz").empty(); }, 20s)) << gateway_->output();
  }

  // For a fixture of its own: what to do to the files before the gateway starts.
  virtual void before_start() {}

  // Extra [buffer] keys for a fixture of its own.
  virtual std::string buffer_limits() const { return ""; }

  void TearDown() override {
    if (gateway_ && gateway_->running()) {
      const int status = gateway_->signal_and_wait(SIGTERM);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << gateway_->output();
    }
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string http(const std::string& path, const std::string& extra = "") {
    return capture("curl -s --max-time 5 " + extra + " '" + url(path) + "'");
  }
  nlohmann::json status() {
    const auto body = http("/api/status");
    return body.empty() ? nlohmann::json() : nlohmann::json::parse(body);
  }
  nlohmann::json sink(const nlohmann::json& s, const std::string& name) {
    for (const auto& k : s["sinks"]) {
      if (k["name"] == name) return k;
    }
    return {};
  }

  // The DOM after the page's script ran against the live gateway.
  std::string rendered_dom(const std::string& extra = "") {
    const auto profile = dir_ / "chromium-profile";
    return capture(
        "chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
        "--disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage "
        "--user-data-dir=" +
        profile.string() + " --virtual-time-budget=4000 " + extra + " --dump-dom '" + url("/") + "' 2>/dev/null");
  }

  testing::TempDir dir_;
  std::uint16_t port_ = 0;
  std::uint16_t listener_port_ = testing::free_loopback_port();
  std::unique_ptr<testing::Mosquitto> broker_;  // the MQTT source's broker
  std::unique_ptr<Process> gateway_;
};

TEST_F(StatusPageTest, ApiShowsTheFailingUplinkTheWorkingSinkAndTheGrowingBacklog) {
  nlohmann::json s;
  ASSERT_TRUE(wait_for(
      [&] {
        s = status();
        return !s.is_null() && sink(s, "cloud")["condition"] == "failing" && s["health"]["level"] == "red";
      },
      20s))
      << s.dump(2);
  const auto cloud = sink(s, "cloud");
  EXPECT_NE(cloud["last_error"].get<std::string>().find("Connection refused"), std::string::npos) << cloud;
  EXPECT_TRUE(cloud["last_success_age_s"].is_null());
  EXPECT_EQ(sink(s, "local")["condition"], "ok");
  EXPECT_NE(s["health"]["reasons"][0].get<std::string>().find("sink cloud failing"), std::string::npos) << s;
  EXPECT_EQ(s["gateway_id"], "plant-7");
  // Sources in the plugin list's order: MQTT, the listener, simulated sensors.
  EXPECT_EQ(s["sources"][0]["name"], "site");
  EXPECT_EQ(s["sources"][0]["kind"], "mqtt");
  EXPECT_EQ(s["sources"][1]["name"], "devices");
  EXPECT_EQ(s["sources"][1]["kind"], "mqtt_listener");
  EXPECT_EQ(s["sources"][2]["name"], "sensors");
  EXPECT_EQ(s["sources"][2]["kind"], "sim");

  const auto lag_before = cloud["lag_records"].get<std::uint64_t>();
  ASSERT_TRUE(
      wait_for([&] { return sink(status(), "cloud")["lag_records"].get<std::uint64_t>() > lag_before + 50; }, 10s));
  // The rate chart's points come every 5 s.
  ASSERT_TRUE(wait_for([&] { return !status()["rates"].empty(); }, 10s));
  s = status();
  EXPECT_LT(sink(s, "local")["lag_records"].get<std::uint64_t>(), 50u) << "the working sink keeps up";
  EXPECT_GT(s["buffer"]["records"].get<std::uint64_t>(), lag_before);
  EXPECT_GT(s["rates"].back()["ingest_per_s"].get<double>(), 50.0);
  EXPECT_FALSE(s["warnings"].empty()) << "the uplink's failures are among the latest warnings";

  EXPECT_EQ(http("/healthz"), "ok\n");
  EXPECT_EQ(http("/readyz"), "ready\n");
}

TEST_F(StatusPageTest, MetricsParseWithPrometheusOwnParser) {
  ASSERT_TRUE(wait_for([&] { return sink(status(), "cloud")["condition"] == "failing"; }, 20s));
  const auto metrics = dir_ / "metrics.txt";
  std::ofstream(metrics) << http("/metrics");
  const auto script = dir_ / "parse.py";
  std::ofstream(script) << R"(import sys
from prometheus_client.parser import text_string_to_metric_families
values = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        label = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        values[f"{s.name}{{{label}}}"] = s.value
for key in sys.argv[2:]:
    print(key, values.get(key, "MISSING"))
print("families", len(list(text_string_to_metric_families(open(sys.argv[1]).read()))))
)";
  // Debian's python3, which has python3-prometheus-client (not a pyenv's).
  const auto out = capture("/usr/bin/python3 " + script.string() + " " + metrics.string() +
                           " 'tidegate_sink_up{sink=cloud}' 'tidegate_sink_up{sink=local}'"
                           " 'tidegate_sink_lag_records{sink=cloud}' 'tidegate_health_level{}'"
                           " 'tidegate_buffer_appended_records_total{}'"
                           " 'tidegate_mqtt_source_refused_total{source=site}'"
                           " 'tidegate_mqtt_source_qos0_lost_total{source=site}'"
                           " 'tidegate_mqtt_source_protocol_errors_total{source=site}'"
                           " 'tidegate_mqtt_source_redelivered_total{source=site}' 2>&1");
  // The MQTT source's own counters, declared by its plugin.
  EXPECT_NE(out.find("tidegate_mqtt_source_refused_total{source=site} 0.0"), std::string::npos) << out;
  EXPECT_NE(out.find("tidegate_sink_up{sink=cloud} 0.0"), std::string::npos) << out;
  EXPECT_NE(out.find("tidegate_sink_up{sink=local} 1.0"), std::string::npos) << out;
  EXPECT_EQ(out.find("MISSING"), std::string::npos) << out;
  EXPECT_EQ(out.find("Error"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(tidegate_sink_lag_records\{sink=cloud\} ([0-9.]+))"))) << out;
  EXPECT_GT(std::stod(m[1]), 0.0);
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(families ([0-9]+))")));
  EXPECT_GT(std::stoi(m[1]), 30);
}

TEST_F(StatusPageTest, HeartbeatRecordsReachTheWorkingSink) {
  nlohmann::json heartbeat;
  ASSERT_TRUE(wait_for(
      [&] {
        for (const auto& entry : std::filesystem::directory_iterator(dir_ / "out")) {
          std::ifstream in(entry.path());
          std::string line;
          while (std::getline(in, line)) {
            if (line.find("tidegate/heartbeat") == std::string::npos) continue;
            const auto record = nlohmann::json::parse(line, nullptr, false);
            if (record.is_discarded() || record["topic"] != "tidegate/heartbeat") continue;
            heartbeat = nlohmann::json::parse(record["payload"].get<std::string>());
            EXPECT_EQ(record["source"], "tidegate");
            EXPECT_EQ(record["partition_key"], "plant-7");
            return true;
          }
        }
        return false;
      },
      20s));
  EXPECT_EQ(heartbeat["type"], "tidegate.heartbeat");
  EXPECT_EQ(heartbeat["gateway_id"], "plant-7");
  EXPECT_FALSE(heartbeat["version"].get<std::string>().empty());
  EXPECT_EQ(heartbeat["sinks"].size(), 2u);
  EXPECT_TRUE(heartbeat["buffer"].contains("records"));
}

TEST_F(StatusPageTest, OperationsNeedTheTokenAndPauseTheSink) {
  const auto refused = http("/api/sinks/local/pause", "-X POST -o /dev/null -w '%{http_code}'");
  EXPECT_EQ(refused, "401");
  const auto wrong =
      http("/api/sinks/local/pause", "-X POST -H 'Authorization: Bearer nope' -o /dev/null -w '%{http_code}'");
  EXPECT_EQ(wrong, "401");
  const auto done = http("/api/sinks/local/pause", "-X POST -H 'Authorization: Bearer t0ken'");
  EXPECT_EQ(done, R"({"error":"","ok":true})");
  ASSERT_TRUE(wait_for([&] { return sink(status(), "local")["condition"] == "paused"; }, 10s));
  ASSERT_TRUE(wait_for([&] { return sink(status(), "local")["lag_records"].get<std::uint64_t>() > 20; }, 10s));
  http("/api/sinks/local/resume", "-X POST -H 'Authorization: Bearer t0ken'");
  EXPECT_TRUE(wait_for(
      [&] {
        const auto k = sink(status(), "local");
        return k["condition"] == "ok" && k["lag_records"].get<std::uint64_t>() < 20;
      },
      10s));
  EXPECT_NE(gateway_->output().find("operator request: pause sink 'local': done"), std::string::npos);
}

TEST_F(StatusPageTest, TheRenderedPageShowsTheSinkFailingAndTheBacklogGrowing) {
  ASSERT_TRUE(wait_for([&] { return status()["health"]["level"] == "red"; }, 20s));
  const std::regex cloud_row(
      R"re(<tr class="failing" data-sink="cloud" data-condition="failing" data-lag-records="([0-9]+)")re");
  auto first = rendered_dom();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first, m, cloud_row)) << first;
  const auto lag_first = std::stoull(m[1]);
  EXPECT_NE(first.find(R"(data-health="red")"), std::string::npos);
  EXPECT_NE(first.find("Problem"), std::string::npos);
  EXPECT_NE(first.find("Connection refused"), std::string::npos) << "the error text is on the page";
  EXPECT_NE(first.find(R"(data-sink="local" data-condition="ok")"), std::string::npos);
  EXPECT_NE(first.find("<polyline"), std::string::npos) << "the rate chart is drawn";

  std::this_thread::sleep_for(2s);
  const auto shot = dir_ / "status-page.png";
  const auto second = rendered_dom("--window-size=1200,1100 --screenshot=" + shot.string());
  ASSERT_TRUE(std::regex_search(second, m, cloud_row)) << second;
  EXPECT_GT(std::stoull(m[1]), lag_first) << "the backlog grows while the uplink is down";
  ASSERT_TRUE(std::filesystem::exists(shot));
  EXPECT_GT(std::filesystem::file_size(shot), 10'000u);
  // Kept for a look after a failed run (and for the operations guide).
  if (const char* keep = std::getenv("TIDEGATE_SCREENSHOT"))
    std::filesystem::copy_file(shot, keep, std::filesystem::copy_options::overwrite_existing);
}

// The listener's figures as a technician sees them: how many devices are
// connected now, and a device refused for its credentials.
TEST_F(StatusPageTest, TheListenerShowsConnectedDevicesAndAuthenticationFailures) {
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(listener_port_);
  std::vector<std::unique_ptr<::mqtt::async_client>> devices;
  for (int i = 0; i < 3; ++i) {
    devices.push_back(std::make_unique<::mqtt::async_client>(uri, "device-" + std::to_string(i)));
    devices.back()->connect()->wait();
  }
  // No password file: a device sending a user name is refused, and counted.
  EXPECT_NE(std::system(("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(listener_port_) +
                         " -u someone -P x -t sensors/x/t -m 1 2>/dev/null")
                            .c_str()),
            0);
  auto figure = [&](const std::string& name) {
    const auto s = status();
    for (const auto& src : s["sources"]) {
      if (src["name"] != "devices") continue;
      for (const auto& c : src["counters"]) {
        if (c["name"] == name) return c["value"].get<double>();
      }
    }
    return -1.0;
  };
  ASSERT_TRUE(wait_for([&] { return figure("clients_connected") == 3 && figure("auth_failures_total") == 1; }, 10s))
      << status().dump() << gateway_->output();
  EXPECT_NE(http("/metrics").find("tidegate_mqtt_listener_source_clients_connected{source=\"devices\"} 3"),
            std::string::npos);
  // Messages and bytes per second of a source: the simulated sensors' 100 readings/s.
  ASSERT_TRUE(wait_for(
      [&] {
        const auto s = status();
        for (const auto& src : s["sources"]) {
          if (src["name"] == "sensors") return src["bytes_per_s"].get<double>() > 1000;
        }
        return false;
      },
      10s));
  const auto dom = rendered_dom();
  EXPECT_NE(dom.find("clients connected: 3"), std::string::npos) << dom;
  EXPECT_NE(dom.find("auth failures: 1"), std::string::npos) << dom;
  EXPECT_NE(dom.find(" KiB/s"), std::string::npos) << "bytes per second in the rate column: " << dom;
  for (auto& d : devices)
    d->disconnect()->wait();
}

// The page on a technician's phone, 390 px wide, and on a laptop: each sink
// and source reads as a card on the phone, and no table squeezes a column
// below its longest word on either, so nothing wraps letter by letter. The page's
// own HTML runs in a local copy with a <base> pointing at the gateway (the
// page forbids framing), and a script after the page's measures, for every
// word in every visible cell, on how many lines the browser laid it out.
TEST_F(StatusPageTest, AtPhoneAndLaptopWidthNoWordInATableCellIsBrokenAcrossLines) {
  ASSERT_TRUE(wait_for([&] { return status()["health"]["level"] == "red"; }, 20s));
  for (const int width : {390, 1200}) {
    SCOPED_TRACE("page width " + std::to_string(width));
    std::string page = http("/");
    ASSERT_NE(page.find("</head>"), std::string::npos);
    // Headless Chromium keeps its window at least 500 px wide: the page's
    // width is set to a phone's (the phone rules apply below 640 px).
    page.insert(page.find("<head>") + 6,
                "<base href=\"" + url("/") + "\"><style>html { width: " + std::to_string(width) + "px; }</style>");
    const std::string check = R"js(
<script>
function layoutCheck() {
  if (!document.querySelector('tr[data-sink="cloud"]') || !document.querySelector("tr[data-source]")) {
    setTimeout(layoutCheck, 100);
    return;
  }
  const broken = [];
  let words = 0;
  for (const cell of document.querySelectorAll("td, th, dd")) {
    if (!cell.getClientRects().length) continue;  // hidden, as the header row on a phone
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const re = /\S+/g;
      for (let m = re.exec(t.data); m; m = re.exec(t.data)) {
        const range = document.createRange();
        range.setStart(t, m.index);
        range.setEnd(t, m.index + m[0].length);
        const lines = new Set(Array.from(range.getClientRects()).filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        words++;
        if (lines.size > 1) {
          broken.push(m[0] + " (" + lines.size + " lines, in a " + t.parentElement.tagName.toLowerCase() + "." +
                      t.parentElement.className + " " + Math.round(t.parentElement.getBoundingClientRect().width) + " px wide)");
        }
      }
    }
  }
  const out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({ width: document.body.clientWidth, words: words, broken: broken });
  document.body.append(out);
}
setTimeout(layoutCheck, 500);
</script>)js";
    page.insert(page.rfind("</body>"), check);
    const auto local = dir_ / "phone.html";
    std::ofstream(local) << page;
    const auto profile = dir_ / "chromium-phone-profile";
    const auto dom = capture(
        "chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
        "--disable-sync --no-first-run --disable-dev-shm-usage --disable-web-security --allow-file-access-from-files "
        "--user-data-dir=" +
        profile.string() + " --window-size=" + std::to_string(std::max(width, 500)) +
        ",2400 --virtual-time-budget=6000 --dump-dom 'file://" + local.string() + "' 2>/dev/null");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(dom, m, std::regex(R"re(<pre id="layout-check">(.*)</pre>)re"))) << dom;
    const auto result = nlohmann::json::parse(std::regex_replace(m[1].str(), std::regex("&quot;"), "\""));
    EXPECT_EQ(result["width"], width) << result.dump();
    EXPECT_GT(result["words"].get<int>(), 50) << result.dump();  // the cells were filled from the live API
    EXPECT_TRUE(result["broken"].empty()) << result.dump();
  }
}

// Issue 16, replay: an operator rewinds a sink of the running gateway by
// time with the CLI (through the status API). The sink, held first so the
// page can be seen saying so, sends the retained records from that time
// again, in order, then carries on with live data, nothing skipped.
TEST_F(StatusPageTest, ASinkRewoundByTimeSendsTheRecordsFromThenAgainInOrderThenLiveData) {
  // Every record the file sink wrote, in the order it wrote them (one file:
  // it rotates at 64 MiB or an hour).
  auto delivered = [&] {
    std::vector<std::pair<std::uint64_t, std::int64_t>> out;  // seq, ingest_ns
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "out")) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f);
      for (std::string line; std::getline(in, line);) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded()) out.emplace_back(j["seq"].get<std::uint64_t>(), j["ingest_ns"].get<std::int64_t>());
      }
    }
    return out;
  };
  ASSERT_TRUE(wait_for([&] { return delivered().size() >= 300; }, 20s));
  auto cli = [&](const std::string& args) {
    const auto text = capture(std::string(TIDEGATE_BINARY) + " " + args + " --config " +
                              (dir_ / "tidegate.toml").string() + " 2>&1; echo \"exit=$?\"");
    const auto at = text.rfind("exit=");
    return std::pair<int, std::string>{std::stoi(text.substr(at + 5)), text.substr(0, at)};
  };
  auto [code, out] = cli("sink pause local");
  ASSERT_EQ(code, 0) << out;
  const auto first = delivered();
  // A whole second inside what was delivered: the replay starts at the first
  // record ingested at or after it.
  const std::int64_t from_s = first[first.size() / 3].second / 1'000'000'000 + 1;
  std::uint64_t expected_first = 0;
  for (const auto& [seq, ingest] : first) {
    if (ingest >= from_s * 1'000'000'000) {
      expected_first = seq;
      break;
    }
  }
  ASSERT_GT(expected_first, 0u);
  std::tie(code, out) = cli("sink rewind local --to-time " + std::to_string(from_s) + " --yes");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("rewound sink 'local' to the first record ingested at or after " + std::to_string(from_s) +
                     ", through the running gateway"),
            std::string::npos)
      << out;
  nlohmann::json s;  // the status is sampled every few seconds
  ASSERT_TRUE(wait_for([&] { return (s = sink(status(), "local"))["replay"].is_object(); }, 10s)) << s.dump();
  EXPECT_GT(s["replay"]["records_to_go"].get<std::uint64_t>(), first.back().first - expected_first);
  EXPECT_NE(rendered_dom().find("replaying from "), std::string::npos);

  std::tie(code, out) = cli("sink resume local");
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(wait_for([&] { return sink(status(), "local")["replay"].is_null(); }, 20s));
  const auto newest_at_rewind = first.back().first;
  ASSERT_TRUE(wait_for([&] { return delivered().back().first > newest_at_rewind + 50; }, 20s));
  const auto all = delivered();
  // The first delivery: 1, 2, 3, ... up to where the sink was held.
  std::size_t i = 1;
  while (i < all.size() && all[i].first == all[i - 1].first + 1) ++i;
  ASSERT_LT(i, all.size());
  EXPECT_EQ(all[0].first, 1u);
  EXPECT_GE(all[i - 1].first, newest_at_rewind - 1);  // (the send in flight when held may have finished)
  // Then the replay from the first record of that second, and on into live
  // data, every sequence in order, none skipped.
  EXPECT_EQ(all[i].first, expected_first);
  for (std::size_t k = i + 1; k < all.size(); ++k) ASSERT_EQ(all[k].first, all[k - 1].first + 1) << "at " << k;
  EXPECT_NE(gateway_->output().find("rewound by an operator to sequence " + std::to_string(expected_first)),
            std::string::npos);
  EXPECT_NE(gateway_->output().find("replay done: back to live data"), std::string::npos);
}

// A full buffer under reject-new: the MQTT source's refusals are on the page
// (under the source's name), in /api/status and on /metrics.
class StatusPageFullBufferTest : public StatusPageTest {
 protected:
  std::string buffer_limits() const override { return "max_records = 100\nfull_policy = \"reject-new\"\n"; }
};

TEST_F(StatusPageFullBufferTest, RefusedMessagesAreShownUnderTheSource) {
  // The simulated sensors fill the buffer: the uplink is down, so nothing leaves.
  ASSERT_TRUE(wait_for([&] { return status()["buffer"]["records"].get<std::uint64_t>() >= 95; }, 20s));
  auto refused = [&] {
    const auto s = status();
    for (const auto& src : s["sources"]) {
      if (src["name"] != "site") continue;
      for (const auto& c : src["counters"]) {
        if (c["name"] == "refused_total") return c["value"].get<double>();
      }
    }
    return 0.0;
  };
  ASSERT_TRUE(wait_for(
      [&] {
        capture("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_->port()) +
                " -q 1 -t sensors/boiler/t -m 71.5 2>&1");
        return refused() > 0;
      },
      20s))
      << status().dump() << gateway_->output();
  EXPECT_NE(http("/metrics").find("tidegate_mqtt_source_refused_total{source=\"site\"} "), std::string::npos);
  const auto dom = rendered_dom();
  EXPECT_NE(dom.find("data-counter=\"refused_total\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("refused: "), std::string::npos) << dom;
}

// Issue 19, defect 3: a buffer file found damaged at start was moved aside
// and salvaged with only a log line to show for it. Now the API, /metrics
// and the page say so, and health names it.
class StatusPageRecoveredBufferTest : public StatusPageTest {
 protected:
  void before_start() override {
    std::ofstream f(dir_ / "buffer.db", std::ios::binary);
    for (int i = 0; i < 10000; ++i) f << static_cast<char>((i * 7919) & 0xff);
  }
};

TEST_F(StatusPageRecoveredBufferTest, ADamagedBufferFileAtStartIsShownUntilTheNextStart) {
  const auto s = status();
  const auto& r = s["buffer"]["recovered_at_start"];
  ASSERT_TRUE(r.is_object()) << s.dump();
  EXPECT_NE(r["moved_aside_to"].get<std::string>().find("buffer.db.corrupt-"), std::string::npos);
  EXPECT_EQ(r["salvaged_records"], 0);
  bool named = false;
  for (const auto& reason : s["health"]["reasons"]) {
    named = named || reason.get<std::string>().find("the buffer file was damaged at start") != std::string::npos;
  }
  EXPECT_TRUE(named) << s["health"].dump();
  EXPECT_NE(http("/metrics").find("tidegate_buffer_recovered_at_start"), std::string::npos);
  const auto dom = rendered_dom();
  EXPECT_NE(dom.find("Recovered at start"), std::string::npos) << dom;
}

// Issue 22: a sink taken out of the configuration left a cursor holding
// records, and losses from before a restart kept the page amber for good.
// Both are on the page now, and the operator clears them on the running
// gateway with the CLI, which goes through the status API and its token.
class StatusPageRetiredSinkTest : public StatusPageTest {
 protected:
  void before_start() override {
    buffer::BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.max_records = 5;
    o.disk_reserve_bytes = 0;
    o.log = [](buffer::LogLevel, std::string_view) {};
    auto b = buffer::Buffer::open(o);
    ASSERT_EQ(b->ensure_sink("old-cloud", buffer::StartPosition::kEarliest), buffer::Status::kOk);
    ASSERT_TRUE(b->append_wait(testing::make_records(5)).ok());
    ASSERT_TRUE(b->append_wait(testing::make_records(3)).ok());  // 3 lost to old-cloud
    ASSERT_EQ(b->stats().evicted_total, 3u);
  }

  // The CLI as an operator runs it: exit status and everything it printed.
  std::pair<int, std::string> cli(const std::string& args) {
    const auto text = capture(std::string(TIDEGATE_BINARY) + " " + args + " --config " +
                              (dir_ / "tidegate.toml").string() + " 2>&1; echo \"exit=$?\"");
    const auto at = text.rfind("exit=");
    return {std::stoi(text.substr(at + 5)), text.substr(0, at)};
  }

  static bool has_reason(const nlohmann::json& s, const std::string& text) {
    for (const auto& r : s["health"]["reasons"]) {
      if (r.get<std::string>().find(text) != std::string::npos) return true;
    }
    return false;
  }
};

TEST_F(StatusPageRetiredSinkTest, TheOperatorForgetsARetiredSinkAndAcknowledgesLossesOnTheRunningGateway) {
  auto s = status();
  ASSERT_EQ(s["retired_sinks"].size(), 1u) << s.dump();
  EXPECT_EQ(s["retired_sinks"][0]["name"], "old-cloud");
  EXPECT_GE(s["retired_sinks"][0]["lag_records"].get<std::uint64_t>(), 5u);
  EXPECT_EQ(s["buffer"]["evicted_unacknowledged"], 3);
  EXPECT_EQ(s["buffer"]["evicted_since_start"], 0);
  EXPECT_TRUE(has_reason(s, "sink old-cloud is no longer configured")) << s["health"].dump();
  EXPECT_TRUE(has_reason(s, "3 undelivered records lost to the cap, not yet acknowledged (0 since start)"))
      << s["health"].dump();
  EXPECT_NE(http("/metrics").find("tidegate_retired_sink_lag_records{sink=\"old-cloud\"}"), std::string::npos);
  EXPECT_NE(http("/metrics").find("tidegate_buffer_evicted_unacknowledged_records 3"), std::string::npos);
  const auto dom = rendered_dom();
  EXPECT_NE(dom.find("data-retired-sink=\"old-cloud\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("3 not acknowledged"), std::string::npos) << dom;

  auto [code, out] = cli("sink list");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("old-cloud            NO (retired?)"), std::string::npos) << out;
  std::tie(code, out) = cli("sink forget local --yes");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("sink 'local' is configured"), std::string::npos) << out;

  std::tie(code, out) = cli("sink forget old-cloud --yes");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("forgot sink 'old-cloud', through the running gateway"), std::string::npos) << out;
  std::tie(code, out) = cli("buffer acknowledge-losses --yes");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("acknowledged 3 lost records, through the running gateway"), std::string::npos) << out;

  // The status is sampled every few seconds: wait for a sample after both.
  ASSERT_TRUE(wait_for(
      [&] {
        s = status();
        return s["retired_sinks"].empty() && s["buffer"]["evicted_unacknowledged"] == 0;
      },
      15s))
      << s.dump();
  EXPECT_EQ(s["buffer"]["evicted_unacknowledged"], 0);
  EXPECT_FALSE(has_reason(s, "old-cloud")) << s["health"].dump();
  EXPECT_FALSE(has_reason(s, "not yet acknowledged")) << s["health"].dump();
  EXPECT_NE(gateway_->output().find("operator request: forget sink 'old-cloud': done"), std::string::npos);
}

}  // namespace
}  // namespace tidegate
