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
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
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

namespace tidegate {
namespace {

using namespace std::chrono_literals;
using testing::wait_for;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// What the upstream broker delivered to a persistent QoS 1 subscriber: the
// reading ids, in arrival order, parsed from the sink's envelopes.
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
    try {
      const auto envelope = nlohmann::json::parse(msg->to_string());
      id = nlohmann::json::parse(envelope.at("payload").get<std::string>()).at("id").get<int>();
    } catch (const std::exception&) {
      std::lock_guard lock(mu_);
      ++unreadable_;
      return;
    }
    std::lock_guard lock(mu_);
    arrivals_.push_back(id);
  }
  std::vector<int> arrivals() {
    std::lock_guard lock(mu_);
    return arrivals_;
  }
  int unreadable() {
    std::lock_guard lock(mu_);
    return unreadable_;
  }

 private:
  ::mqtt::async_client client_;
  std::mutex mu_;
  std::vector<int> arrivals_;
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
        const std::string payload = "{\"id\":" + std::to_string(next) + "}";
        try {
          window.emplace_back(next, client.publish(::mqtt::make_message(
                                        "campaign/d" + std::to_string(next % devices_), payload, 1, false)));
        } catch (const ::mqtt::exception&) {
          break;  // disconnected: the next round reconnects
        }
      }
      for (auto& [id, token] : window) {
        bool ok = false;
        try {
          ok = token->wait_for(std::chrono::seconds(5)) && token->get_return_code() == 0;
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
  std::unique_ptr<testing::Process> start(const std::filesystem::path& config) {
    return std::make_unique<testing::Process>(
        std::vector<std::string>{TIDEGATE_BINARY, "run", "--config", config.string()}, dir_ / "gateway.log");
  }
  // Reading ids in the buffer (delivered ones included), read beside the
  // running gateway.
  std::set<int> stored_ids() {
    buffer::BufferOptions o;
    o.path = db();
    o.read_only = true;
    o.integrity_check = buffer::IntegrityCheck::kNone;
    o.log = [](buffer::LogLevel, std::string_view) {};
    std::set<int> ids;
    try {
      auto b = buffer::Buffer::open(o);
      for (const auto& r : b->read_after(0, 100'000'000, SIZE_MAX).records) {
        ids.insert(nlohmann::json::parse(r.payload).at("id").get<int>());
      }
    } catch (const std::exception&) {
    }
    return ids;
  }
  std::string log_tail() {
    const auto log = testing::read_text(dir_ / "gateway.log");
    return log.substr(log.size() - std::min<std::size_t>(log.size(), 4000));
  }
  testing::TempDir dir_;
};

TEST_F(FaultCampaign, MixedFaultsLoseNothingTheGatewayStored) {
  const int seconds = env_int("TIDEGATE_CAMPAIGN_SECONDS", 20);
  const int seed = env_int("TIDEGATE_CAMPAIGN_SEED", 1);
  const int rate = env_int("TIDEGATE_CAMPAIGN_RATE", 500);
  const int devices = env_int("TIDEGATE_CAMPAIGN_DEVICES", 50);
  // The edge broker as the package's drop-in sets it up.
  testing::Mosquitto edge(dir_ / "edge", "autosave_interval 60\n");
  testing::Mosquitto upstream(dir_ / "upstream");
  const auto status_port = testing::free_loopback_port();
  const auto config = write_config(edge.port(), upstream.port(), status_port);
  UpstreamReader reader(upstream.uri());
  auto gw = start(config);
  ASSERT_TRUE(wait_for([&] { return testing::read_text(dir_ / "gateway.log").find("connected to") != std::string::npos; }))
      << log_tail();

  Account a;
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Publisher publisher(edge.uri(), devices, rate);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(between(300, 1500)));
    const int pick = between(0, 99);
    if (pick < 45) {
      gw->signal_and_wait(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 300)));
      gw = start(config);
      a.faults["gateway SIGKILL"] += 1;
    } else if (pick < 55) {
      gw->signal_and_wait(SIGTERM);
      gw = start(config);
      a.faults["gateway SIGTERM"] += 1;
    } else if (pick < 75) {
      edge.kill();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 500)));
      edge.start();
      a.faults["edge broker SIGKILL"] += 1;
    } else {
      upstream.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(500, 3000)));
      upstream.start();
      a.faults["uplink outage"] += 1;
    }
  }
  publisher.stop();

  // Everything is up again: the edge broker hands over what it kept, the
  // backlog drains. Done when what is stored has stopped growing and is
  // upstream.
  std::set<int> stored, delivered;
  std::size_t last_stored = 0;
  const bool drained = wait_for(
      [&] {
        stored = stored_ids();
        const auto arrivals = reader.arrivals();
        delivered = std::set<int>(arrivals.begin(), arrivals.end());
        const bool settled = stored.size() == last_stored;
        last_stored = stored.size();
        return settled && !stored.empty() &&
               std::includes(delivered.begin(), delivered.end(), stored.begin(), stored.end());
      },
      std::chrono::seconds(180));

  const auto arrivals = reader.arrivals();
  const auto acked = publisher.acknowledged();
  const std::set<int> acked_set(acked.begin(), acked.end());
  a.published = publisher.attempted();
  a.acknowledged = static_cast<int>(acked.size());
  a.stored = stored.size();
  a.delivered = delivered.size();
  a.arrivals = arrivals.size();
  a.unreadable = reader.unreadable();
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
  const auto text = account_text(a);
  std::printf("fault campaign, seed %d, %d s, %d readings/s, %d devices:\n%s", seed, seconds, rate, devices,
              text.c_str());

  // Healthy at the end without a restart: the status API says green.
  nlohmann::json status;
  const bool green = wait_for(
      [&] {
        const auto body = testing::capture("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(status_port) +
                                           "/api/status");
        try {
          status = nlohmann::json::parse(body);
        } catch (const std::exception&) {
          return false;
        }
        return status["health"]["level"] == "green";
      },
      std::chrono::seconds(30));
  EXPECT_EQ(gw->signal_and_wait(SIGTERM), 0) << log_tail();
  const auto verify = testing::capture(std::string(TIDEGATE_BINARY) + " buffer verify --config " + config.string() +
                                       " 2>&1; echo \"exit $?\"");

  if (const char* out = std::getenv("TIDEGATE_CAMPAIGN_ACCOUNT"); out && *out) {
    utsname u{};
    ::uname(&u);
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    std::ofstream(out) << "# Fault campaign — " << date << "\n\n- machine: " << u.machine << ", "
                       << std::thread::hardware_concurrency() << " cores, Linux " << u.release
                       << "\n- run: `TIDEGATE_CAMPAIGN_SECONDS=" << seconds << " TIDEGATE_CAMPAIGN_SEED=" << seed
                       << " TIDEGATE_CAMPAIGN_RATE=" << rate << " TIDEGATE_CAMPAIGN_DEVICES=" << devices
                       << " build/tests/integration/fault_campaign_test`\n- edge broker: mosquitto, persistence on, "
                          "autosave_interval 60 (the package's drop-in)\n- end: "
                       << (drained ? "drained" : "NOT drained") << ", health " << status["health"]["level"].dump()
                       << ", `buffer verify`: " << verify.substr(verify.rfind("exit")) << "\n\n"
                       << text;
  }
  EXPECT_TRUE(drained) << "stored " << stored.size() << ", delivered " << delivered.size() << "\n" << log_tail();
  EXPECT_EQ(a.lost_by_gateway, 0u);
  EXPECT_EQ(a.unreadable, 0);
  EXPECT_GT(a.delivered, 0u);
  EXPECT_GT(a.faults["gateway SIGKILL"], 0);
  EXPECT_TRUE(green) << status.dump(2);
  EXPECT_NE(verify.find("exit 0"), std::string::npos) << verify;
}

}  // namespace
}  // namespace tidegate
