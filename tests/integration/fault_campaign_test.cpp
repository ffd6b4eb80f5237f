// The fault campaign (issue 19): the real binary between a real edge broker
// and a real upstream broker, numbered QoS 1 readings from many devices, and
// faults mixed at random with a fixed seed: SIGKILL and SIGTERM of the
// gateway (during ingest and forwarding: both run all the time), SIGKILL of
// the edge broker, and uplink outages. At the end everything is brought back,
// the backlog drains, and one account says what happened to every reading.
//
// Pass: nothing the gateway stored is missing upstream, the gateway is green
// without a restart, and the buffer passes `tidegate buffer verify`. What the
// edge broker acknowledged to a publisher but lost when it was SIGKILLed
// (mosquitto saves its state every autosave_interval) is reported apart: the
// gateway never saw it.
//
// Length and mix from the environment, so that CI runs a short campaign and a
// long one writes its account to bench/results/:
//   TIDEGATE_CAMPAIGN_SECONDS (20)  TIDEGATE_CAMPAIGN_SEED (1)
//   TIDEGATE_CAMPAIGN_RATE (500 readings/s)  TIDEGATE_CAMPAIGN_DEVICES (50)
//   TIDEGATE_CAMPAIGN_ACCOUNT (a file for the account, in Markdown)
//
// The soak (TIDEGATE_SOAK_SECONDS; skipped without it) keeps one gateway
// process running at a steady rate through periodic outages and edge broker
// restarts, samples it every second into a CSV (RSS, descriptors, buffer,
// disk bytes written, latency; TIDEGATE_SOAK_CSV, with a gnuplot PNG beside
// it) and passes when memory and descriptors stay flat and nothing is lost.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mosquitto.h"
#include "process.h"
#include "test_support.h"
#include "tidegate/buffer/buffer.h"
#include "report.h"          // bench/common: machine_lines, today_utc
#include "timed_readings.h"  // bench/common: written_bytes, percentile_ms

namespace tidegate {
namespace {

using namespace std::chrono_literals;
using testing::wait_for;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

std::string env_text(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the upstream broker delivered to a persistent QoS 1 subscriber: the
// reading ids, in arrival order, parsed from the sink's envelopes. Unlike
// tests/helpers' UpstreamCollector it reconnects after the broker restarts
// and keeps only ids and latencies (an hour's soak is 700,000 envelopes).
class UpstreamReader : public ::mqtt::callback {
 public:
  explicit UpstreamReader(const std::string& uri) : client_(uri, "campaign-upstream-reader", 0, nullptr) {
    client_.set_callback(*this);
    client_.connect(::mqtt::connect_options_builder()
                        .clean_session(false)
                        .automatic_reconnect(std::chrono::milliseconds(100), std::chrono::seconds(1))
                        .finalize())
        ->wait();
    client_.subscribe("tidegate/#", 1)->wait();
  }
  ~UpstreamReader() override {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
  }
  void message_arrived(::mqtt::const_message_ptr msg) override {
    int id = -1;
    std::int64_t sent_ns = 0;
    try {
      const auto envelope = nlohmann::json::parse(msg->to_string());
      const auto reading = nlohmann::json::parse(envelope.at("payload").get<std::string>());
      id = reading.at("id").get<int>();
      sent_ns = reading.at("t").get<std::int64_t>();
    } catch (const std::exception&) {
      std::lock_guard lock(mu_);
      ++unreadable_;
      return;
    }
    std::lock_guard lock(mu_);
    arrivals_.push_back(id);
    if (firsts_.insert(id).second) latencies_ns_.push_back(wall_ns() - sent_ns);
  }
  std::vector<int> arrivals() {
    std::lock_guard lock(mu_);
    return arrivals_;
  }
  std::size_t arrival_count() {
    std::lock_guard lock(mu_);
    return arrivals_.size();
  }
  // Publish-to-upstream latencies of the first arrivals since the last call.
  std::vector<std::int64_t> take_latencies() {
    std::lock_guard lock(mu_);
    return std::exchange(latencies_ns_, {});
  }
  int unreadable() {
    std::lock_guard lock(mu_);
    return unreadable_;
  }

 private:
  ::mqtt::async_client client_;
  std::mutex mu_;
  std::vector<int> arrivals_;
  std::set<int> firsts_;
  std::vector<std::int64_t> latencies_ns_;
  int unreadable_ = 0;
};

// Publishes readings 0, 1, 2, ... round-robin over the devices at a steady
// rate, 20 in flight, and remembers which the edge broker acknowledged. A
// reading whose PUBACK never came (the broker died) is not retried: the
// publisher was told it failed, so it is no loss.
class Publisher {
 public:
  Publisher(std::string uri, int devices, int rate) : uri_(std::move(uri)), devices_(devices), rate_(rate) {
    thread_ = std::thread([this] { run(); });
  }
  ~Publisher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int attempted() const { return attempted_; }
  std::vector<int> acknowledged() {
    std::lock_guard lock(mu_);
    return acked_;
  }

 private:
  void run() {
    ::mqtt::async_client client(uri_, "campaign-publisher", 0, nullptr);
    const auto start = std::chrono::steady_clock::now();
    int next = 0;
    while (!stop_) {
      if (!client.is_connected()) {
        try {
          client.connect(::mqtt::connect_options_builder().clean_session(true).max_inflight(100).finalize())
              ->wait_for(std::chrono::seconds(2));
        } catch (const ::mqtt::exception&) {
        }
        if (!client.is_connected()) {
          std::this_thread::sleep_for(100ms);
          continue;
        }
      }
      std::vector<std::pair<int, ::mqtt::delivery_token_ptr>> window;
      for (int i = 0; i < 20 && !stop_; ++i, ++next) {
        ++attempted_;
        const std::string payload = "{\"id\":" + std::to_string(next) + ",\"t\":" + std::to_string(wall_ns()) + "}";
        try {
          window.emplace_back(next, client.publish(::mqtt::make_message(
                                        "campaign/d" + std::to_string(next % devices_), payload, 1, false)));
        } catch (const ::mqtt::exception&) {
          break;  // disconnected: the next round reconnects
        }
      }
      // One deadline for the window: after a broker dies, its tokens never
      // complete, and waiting for each in turn would stall the publisher.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      for (auto& [id, token] : window) {
        bool ok = false;
        try {
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
          ok = token->wait_for(std::max(left, std::chrono::milliseconds(0))) && token->get_return_code() == 0;
        } catch (const ::mqtt::exception&) {
        }
        if (ok) {
          std::lock_guard lock(mu_);
          acked_.push_back(id);
        }
      }
      std::this_thread::sleep_until(start + std::chrono::microseconds(static_cast<std::int64_t>(next) * 1'000'000 / rate_));
    }
    try {
      client.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const ::mqtt::exception&) {
    }
  }

  std::string uri_;
  int devices_;
  int rate_;
  std::atomic<bool> stop_{false};
  std::atomic<int> attempted_{0};
  std::mutex mu_;
  std::vector<int> acked_;
  std::thread thread_;
};

struct Account {
  int published = 0;
  int acknowledged = 0;
  std::size_t stored = 0;
  std::size_t delivered = 0;
  std::size_t arrivals = 0;
  std::size_t lost_by_gateway = 0;
  std::size_t lost_inside_edge_broker = 0;
  std::size_t stored_without_ack = 0;
  std::size_t out_of_order = 0;
  int unreadable = 0;
  std::map<std::string, int> faults;
};

std::string account_text(const Account& a) {
  std::ostringstream o;
  o << "| published | acknowledged by the edge broker | stored by the gateway | delivered upstream (distinct) "
       "| duplicates | lost by the gateway | lost inside the edge broker | stored, publisher saw a failure "
       "| out of order per device | unreadable upstream |\n"
    << "|---|---|---|---|---|---|---|---|---|---|\n"
    << "| " << a.published << " | " << a.acknowledged << " | " << a.stored << " | " << a.delivered << " | "
    << a.arrivals - a.delivered << " | **" << a.lost_by_gateway << "** | " << a.lost_inside_edge_broker << " | "
    << a.stored_without_ack << " | " << a.out_of_order << " | " << a.unreadable << " |\n\nFaults:";
  for (const auto& [name, n] : a.faults) o << " " << name << " " << n << ";";
  o << "\n";
  return o.str();
}

class FaultCampaign : public ::testing::Test {
 protected:
  // The edge broker as the package's drop-in sets it up, an upstream broker
  // with a persistent reader, and the gateway between them.
  void start_world() {
    edge_ = std::make_unique<testing::Mosquitto>(dir_ / "edge", "autosave_interval 60\n");
    upstream_ = std::make_unique<testing::Mosquitto>(dir_ / "upstream");
    status_port_ = testing::free_loopback_port();
    config_ = write_config(edge_->port(), upstream_->port(), status_port_);
    reader_ = std::make_unique<UpstreamReader>(upstream_->uri());
    gw_ = start_gateway();
    ASSERT_TRUE(wait_for([&] { return log_text().find("connected to") != std::string::npos; })) << log_tail();
  }
  std::filesystem::path write_config(std::uint16_t edge, std::uint16_t upstream, std::uint16_t status) {
    const auto file = dir_ / "tidegate.toml";
    std::ofstream(file) << "[gateway]\nid = \"campaign\"\n[buffer]\npath = \"" << db().string()
                        << "\"\ndisk_reserve = 0\n"
                        // Delivered records stay, so the account can tell what the gateway stored.
                        << "retention = \"2h\"\n"
                        << "[status]\nlisten = \"127.0.0.1:" << status << "\"\n[heartbeat]\ninterval = \"0s\"\n"
                        << "[[sources.mqtt]]\nname = \"edge\"\nurl = \"mqtt://127.0.0.1:" << edge
                        << "\"\ntopics = [\"campaign/#\"]\n"
                        << "[[sinks.mqtt]]\nname = \"upstream\"\nurl = \"mqtt://127.0.0.1:" << upstream
                        << "\"\ntimeout = \"2s\"\nretry_min = \"50ms\"\nretry_max = \"500ms\"\n";
    return file;
  }
  std::filesystem::path db() const { return dir_ / "buffer.db"; }
  std::unique_ptr<testing::Process> start_gateway() {
    return std::make_unique<testing::Process>(
        std::vector<std::string>{TIDEGATE_BINARY, "run", "--config", config_.string()}, dir_ / "gateway.log");
  }
  // Reading ids in the buffer (delivered ones included), read beside the
  // running gateway.
  std::set<int> stored_ids() {
    std::set<int> ids;
    if (auto b = testing::open_beside(db())) {
      for (const auto& r : b->read_after(0, 100'000'000, SIZE_MAX).records) {
        ids.insert(nlohmann::json::parse(r.payload).at("id").get<int>());
      }
    }
    return ids;
  }
  nlohmann::json api_status() {
    const auto body =
        testing::capture("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(status_port_) + "/api/status");
    try {
      return nlohmann::json::parse(body);
    } catch (const std::exception&) {
      return {};
    }
  }
  std::string log_text() { return testing::read_text(dir_ / "gateway.log"); }
  std::string log_tail() {
    const auto log = log_text();
    return log.substr(log.size() - std::min<std::size_t>(log.size(), 4000));
  }

  // Waits until what is stored has stopped growing and is all upstream, then
  // counts: fills `a` from the publisher, the buffer and the reader.
  bool drain_and_count(Publisher& publisher, int devices, Account& a) {
    std::set<int> stored, delivered;
    std::size_t last_stored = 0;
    const bool drained = wait_for(
        [&] {
          stored = stored_ids();
          const auto arrivals = reader_->arrivals();
          delivered = std::set<int>(arrivals.begin(), arrivals.end());
          const bool settled = stored.size() == last_stored;
          last_stored = stored.size();
          return settled && !stored.empty() &&
                 std::includes(delivered.begin(), delivered.end(), stored.begin(), stored.end());
        },
        std::chrono::seconds(180));
    const auto arrivals = reader_->arrivals();
    const auto acked = publisher.acknowledged();
    const std::set<int> acked_set(acked.begin(), acked.end());
    a.published = publisher.attempted();
    a.acknowledged = static_cast<int>(acked.size());
    a.stored = stored.size();
    a.delivered = delivered.size();
    a.arrivals = arrivals.size();
    a.unreadable = reader_->unreadable();
    for (int id : stored) {
      if (!delivered.count(id)) ++a.lost_by_gateway;
      if (!acked_set.count(id)) ++a.stored_without_ack;
    }
    for (int id : acked) {
      if (!stored.count(id)) ++a.lost_inside_edge_broker;
    }
    std::map<int, int> newest_per_device;  // first arrivals only: duplicates repeat what came before
    std::set<int> seen;
    for (int id : arrivals) {
      if (!seen.insert(id).second) continue;
      auto [it, fresh] = newest_per_device.emplace(id % devices, id);
      if (!fresh) {
        if (id < it->second) ++a.out_of_order;
        it->second = std::max(it->second, id);
      }
    }
    if (!drained) ADD_FAILURE() << "not drained: stored " << stored.size() << ", delivered " << delivered.size();
    return drained;
  }

  struct Ending {
    bool green = false;
    std::string verify;  // "exit N" of `tidegate buffer verify`
  };
  // Green on /api/status (within 30 s of everything being up), then stopped
  // with SIGTERM and its file checked with `buffer verify`.
  Ending end_green_and_verified() {
    nlohmann::json status;
    const bool green = wait_for(
        [&] {
          status = api_status();
          return status.is_object() && status["health"]["level"] == "green";
        },
        std::chrono::seconds(30));
    if (!green) ADD_FAILURE() << "not green at the end: " << status.dump(2);
    EXPECT_EQ(gw_->signal_and_wait(SIGTERM), 0) << log_tail();
    const auto verify = testing::capture(std::string(TIDEGATE_BINARY) + " buffer verify --config " +
                                         config_.string() + " 2>&1; echo \"exit $?\"");
    EXPECT_NE(verify.find("exit 0"), std::string::npos) << verify;
    return {green, verify.substr(verify.rfind("exit"))};
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::Mosquitto> edge_, upstream_;
  std::uint16_t status_port_ = 0;
  std::filesystem::path config_;
  std::unique_ptr<UpstreamReader> reader_;
  std::unique_ptr<testing::Process> gw_;
};

TEST_F(FaultCampaign, MixedFaultsLoseNothingTheGatewayStored) {
  const int seconds = env_int("TIDEGATE_CAMPAIGN_SECONDS", 20);
  const int seed = env_int("TIDEGATE_CAMPAIGN_SEED", 1);
  const int rate = env_int("TIDEGATE_CAMPAIGN_RATE", 500);
  const int devices = env_int("TIDEGATE_CAMPAIGN_DEVICES", 50);
  ASSERT_NO_FATAL_FAILURE(start_world());

  Account a;
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Publisher publisher(edge_->uri(), devices, rate);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(between(300, 1500)));
    const int pick = between(0, 99);
    if (pick < 45) {
      gw_->signal_and_wait(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 300)));
      gw_ = start_gateway();
      a.faults["gateway SIGKILL"] += 1;
    } else if (pick < 55) {
      gw_->signal_and_wait(SIGTERM);
      gw_ = start_gateway();
      a.faults["gateway SIGTERM"] += 1;
    } else if (pick < 75) {
      edge_->kill();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 500)));
      edge_->start();
      a.faults["edge broker SIGKILL"] += 1;
    } else {
      upstream_->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(500, 3000)));
      upstream_->start();
      a.faults["uplink outage"] += 1;
    }
  }
  publisher.stop();

  const bool drained = drain_and_count(publisher, devices, a);
  const auto text = account_text(a);
  std::printf("fault campaign, seed %d, %d s, %d readings/s, %d devices:\n%s", seed, seconds, rate, devices,
              text.c_str());
  const auto ending = end_green_and_verified();
  if (const auto out = env_text("TIDEGATE_CAMPAIGN_ACCOUNT"); !out.empty()) {
    std::ofstream(out) << "# Fault campaign — " << bench::today_utc() << "\n\n" << bench::machine_lines()
                       << "- run: `TIDEGATE_CAMPAIGN_SECONDS=" << seconds
                       << " TIDEGATE_CAMPAIGN_SEED=" << seed << " TIDEGATE_CAMPAIGN_RATE=" << rate
                       << " TIDEGATE_CAMPAIGN_DEVICES=" << devices
                       << " build/tests/integration/fault_campaign_test`\n- edge broker: mosquitto, persistence on, "
                          "autosave_interval 60 (the package's drop-in)\n- end: "
                       << (drained ? "drained" : "NOT drained") << ", " << (ending.green ? "green" : "NOT green")
                       << ", `buffer verify`: " << ending.verify << "\n\n"
                       << text;
  }
  EXPECT_EQ(a.lost_by_gateway, 0u);
  EXPECT_EQ(a.unreadable, 0);
  EXPECT_GT(a.delivered, 0u);
  EXPECT_GT(a.faults["gateway SIGKILL"], 0);
}

std::size_t open_descriptors(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

TEST_F(FaultCampaign, SoakKeepsMemoryAndDescriptorsFlat) {
  const int seconds = env_int("TIDEGATE_SOAK_SECONDS", 0);
  if (seconds <= 0) GTEST_SKIP() << "set TIDEGATE_SOAK_SECONDS (CI's default preset runs 60)";
  const int rate = env_int("TIDEGATE_SOAK_RATE", 200);
  const int devices = 50;
  ASSERT_NO_FATAL_FAILURE(start_world());
  const auto csv_path = env_text("TIDEGATE_SOAK_CSV").empty() ? dir_ / "soak.csv"
                                                              : std::filesystem::path(env_text("TIDEGATE_SOAK_CSV"));
  std::ofstream csv(csv_path);
  csv << "t_s,rss_kib,descriptors,buffer_records,buffer_bytes,written_bytes,delivered,p50_ms,p99_ms\n";

  struct Sample {
    std::uint64_t rss_kib;
    std::size_t fds;
  };
  std::vector<Sample> samples;
  Account a;
  std::mt19937 rng(11);
  auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Publisher publisher(edge_->uri(), devices, rate);
  const auto started = std::chrono::steady_clock::now();
  auto next_fault = started + std::chrono::seconds(between(5, 15));
  const pid_t pid = gw_->pid();
  for (int t = 1; t <= seconds; ++t) {
    std::this_thread::sleep_until(started + std::chrono::seconds(t));
    const auto s = api_status();
    auto latencies = reader_->take_latencies();
    const Sample now{gw_->rss_kib(), open_descriptors(pid)};
    samples.push_back(now);
    csv << t << "," << now.rss_kib << "," << now.fds << "," << s.value("/buffer/records"_json_pointer, 0) << ","
        << s.value("/buffer/bytes"_json_pointer, 0) << "," << bench::written_bytes(pid) << ","
        << reader_->arrival_count() << "," << bench::percentile_ms(latencies, 0.5) << ","
        << bench::percentile_ms(latencies, 0.99) << "\n";
    if (std::chrono::steady_clock::now() >= next_fault && t + 10 < seconds) {
      if (between(0, 1) == 0) {
        upstream_->stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(between(1000, 4000)));
        upstream_->start();
        a.faults["uplink outage"] += 1;
      } else {
        edge_->restart();
        a.faults["edge broker restart"] += 1;
      }
      next_fault = std::chrono::steady_clock::now() + std::chrono::seconds(between(5, 15));
    }
  }
  publisher.stop();
  csv.close();
  ASSERT_EQ(gw_->pid(), pid);
  drain_and_count(publisher, devices, a);
  std::printf("soak, %d s at %d readings/s, CSV %s:\n%s", seconds, rate, csv_path.c_str(), account_text(a).c_str());
  if (!env_text("TIDEGATE_SOAK_CSV").empty()) {
    const auto png = std::filesystem::path(csv_path).replace_extension(".png");
    const auto script = dir_ / "soak.gp";
    std::ofstream(script) << "set terminal png size 1000,700\nset output '" << png.string()
                          << "'\nset datafile separator ','\nset key autotitle columnhead\nset multiplot layout 3,1\n"
                          << "set ylabel 'MiB / fds'\nplot '" << csv_path.string() << "' using 1:($2/1024) with lines title 'RSS MiB', '' using 1:3 with lines title 'descriptors'\n"
                          << "set ylabel 'records'\nplot '' using 1:4 with lines title 'buffer records'\n"
                          << "set ylabel 'ms'\nplot '' using 1:9 with lines title 'p99 latency', '' using 1:8 with lines title 'p50'\n"
                          << "unset multiplot\n";
    if (std::system(("gnuplot '" + script.string() + "' 2>/dev/null").c_str()) != 0) {
      std::printf("gnuplot failed or is missing (apt-get install gnuplot-nox): no plot\n");
    }
  }
  end_green_and_verified();
  EXPECT_EQ(a.lost_by_gateway, 0u);
  EXPECT_GT(a.delivered, 0u);

  // Flat: the last third of the run against the middle third (the first
  // third holds the warm-up: caches, the WAL, connection buffers).
  const std::size_t third = samples.size() / 3;
  ASSERT_GE(third, 5u) << "a soak needs at least 15 s";
  auto max_of = [&](std::size_t from, std::size_t to, auto field) {
    std::uint64_t m = 0;
    for (std::size_t i = from; i < to; ++i) m = std::max<std::uint64_t>(m, field(samples[i]));
    return m;
  };
  const auto fds_mid = max_of(third, 2 * third, [](const Sample& x) { return x.fds; });
  const auto fds_end = max_of(2 * third, samples.size(), [](const Sample& x) { return x.fds; });
  EXPECT_LE(fds_end, fds_mid + 4) << "descriptors grew";
#ifndef UNDER_ADDRESS_SANITIZER  // its quarantine keeps freed memory
  const auto rss_mid = max_of(third, 2 * third, [](const Sample& x) { return x.rss_kib; });
  const auto rss_end = max_of(2 * third, samples.size(), [](const Sample& x) { return x.rss_kib; });
  EXPECT_LE(rss_end, rss_mid + rss_mid / 5 + 4096) << "memory grew: " << rss_mid << " KiB, then " << rss_end;
#endif
}

}  // namespace
}  // namespace tidegate
