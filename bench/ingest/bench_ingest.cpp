// bench/ingest: messages/s from mosquitto into the buffer through the MQTT
// source, side by side with the broker's own ceiling: mosquitto_sub
// receiving the same messages in the same run.
//
// Two shapes, QoS 0 and 1, 100-byte payloads:
// - drain: N messages are queued in the broker for an offline persistent
//   session, then the subscriber connects and the clock runs until it has
//   all N (the publisher cannot be the bottleneck).
// - live: a publisher (Paho, waiting for every acknowledgement with a
//   window) sends N while the subscriber is online.
//
//   bench_ingest [--quick] [--out DIR]
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mqtt/async_client.h>
#include <sstream>
#include <thread>

#include "mosquitto.h"
#include "test_support.h"
#include "report.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/mqtt/mqtt_source.h"

using namespace tidegate;
using bench::fmt;
using bench::rss_kib;
using Steady = std::chrono::steady_clock;

namespace {

const std::string kPayload(100, 'x');

void publish(const std::string& uri, std::uint64_t n, int qos) {
  ::mqtt::async_client client(uri, "bench-publisher", 100000, nullptr);
  client.connect(::mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize())->wait();
  std::vector<::mqtt::delivery_token_ptr> window;
  window.reserve(500);
  for (std::uint64_t i = 0; i < n; ++i) {
    window.push_back(client.publish("bench/d" + std::to_string(i % 16), kPayload.data(), kPayload.size(), qos, false));
    if (window.size() == 500) {
      for (auto& t : window) t->wait();
      window.clear();
    }
  }
  for (auto& t : window) t->wait();
  client.disconnect()->wait();
}

// mosquitto_sub with a persistent session; returns when it exited (after n
// messages, or right after subscribing with subscribe_only).
Steady::time_point mosquitto_sub_receive(std::uint16_t port, const std::string& id, std::uint64_t n, int qos, bool subscribe_only,
                             const std::function<void()>& while_running = {}) {
  const std::string cmd = "mosquitto_sub -h 127.0.0.1 -p " + std::to_string(port) + " -c -i " + id + " -q " +
                          std::to_string(qos) + " -t 'bench/#' " +
                          (subscribe_only ? std::string("-E") : "-C " + std::to_string(n)) + " > /dev/null";
  Steady::time_point end;
  std::thread runner([&] {
    if (std::system(cmd.c_str()) != 0) std::cerr << "mosquitto_sub failed\n";
    end = Steady::now();
  });
  if (while_running) while_running();
  runner.join();
  return end;
}

double seconds_since(Steady::time_point start, Steady::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

struct GatewayResult {
  double seconds;
  std::uint64_t rss_before_kib;
  std::uint64_t rss_after_kib;
};

drivers::mqtt::MqttSourceOptions source_options(std::uint16_t port, int qos, const std::string& id) {
  drivers::mqtt::MqttSourceOptions o;
  o.name = "bench";
  o.port = port;
  o.client_id = id;
  o.subscriptions = {{"bench/#", static_cast<std::uint8_t>(qos)}};
  return o;
}

std::unique_ptr<buffer::Buffer> open_buffer(const std::filesystem::path& path) {
  buffer::BufferOptions b;
  b.path = path;
  b.max_bytes = 0;
  b.disk_reserve_bytes = 0;
  b.log = [](buffer::LogLevel level, std::string_view msg) {
    if (level >= buffer::LogLevel::kWarning) std::cerr << msg << "\n";
  };
  return buffer::Buffer::open(b);
}

// Waits until the buffer holds `target` records, then returns seconds since t0.
double wait_records(buffer::Buffer& buf, std::uint64_t target, Steady::time_point t0) {
  while (buf.stats().records < target) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string out_dir;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out_dir = argv[++i];
    else {
      std::cerr << "usage: bench_ingest [--quick] [--out DIR]\n";
      return 2;
    }
  }
  const std::uint64_t n = quick ? 20000 : 200000;
  const auto nd = static_cast<double>(n);
  testing::TempDir dir;
  // The broker keeps everything queued for offline sessions, QoS 0 included.
  testing::Mosquitto broker(dir / "broker", "queue_qos0_messages true\nautosave_interval 0\n");
  const auto port = broker.port();

  struct Sample {
    double baseline_rate;
    double gateway_rate;
    std::uint64_t rss_before_kib;
    std::uint64_t rss_after_kib;
  };
  int run = 0;
  // Drain: messages queued in the broker while the subscriber is away, then
  // the clock runs from connect until the subscriber has all of them.
  auto drain = [&](int qos) {
    const std::string tag = std::to_string(run++);
    mosquitto_sub_receive(port, "bench-sub-" + tag, 0, qos, true);  // register the session, then leave
    publish(broker.uri(), n, qos);
    const auto sub_start = Steady::now();
    const double sub_s = seconds_since(sub_start, mosquitto_sub_receive(port, "bench-sub-" + tag, n, qos, false));

    auto buf = open_buffer(dir / ("drain-" + tag + ".db"));
    {
      drivers::mqtt::MqttSource s(source_options(port, qos, "bench-gw-" + tag), *buf, {});
      s.start();
      while (s.mqtt_stats().state != "connected") std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // SUBACK
      s.stop();
    }
    publish(broker.uri(), n, qos);
    const auto rss_before = rss_kib();
    const auto t0 = Steady::now();
    drivers::mqtt::MqttSource source(source_options(port, qos, "bench-gw-" + tag), *buf, {});
    source.start();
    const double gw_s = wait_records(*buf, n, t0);
    const auto rss_after = rss_kib();
    source.stop();
    return Sample{nd / sub_s, nd / gw_s, rss_before, rss_after};
  };
  // Live: the subscriber is online while a publisher sends, waiting for its
  // acknowledgements; timed from the first publish to the last arrival.
  auto live = [&](int qos) {
    const std::string tag = std::to_string(run++);
    Steady::time_point pub_start;
    const auto sub_end = mosquitto_sub_receive(port, "bench-live-sub-" + tag, n, qos, false, [&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed
      pub_start = Steady::now();
      publish(broker.uri(), n, qos);
    });
    const double sub_s = seconds_since(pub_start, sub_end);
    auto buf = open_buffer(dir / ("live-" + tag + ".db"));
    drivers::mqtt::MqttSource source(source_options(port, qos, "bench-live-gw-" + tag), *buf, {});
    source.start();
    while (source.mqtt_stats().state != "connected") std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto rss_before = rss_kib();
    const auto t1 = Steady::now();
    std::thread pub([&] { publish(broker.uri(), n, qos); });
    const double gw_s = wait_records(*buf, n, t1);
    pub.join();
    const auto rss_after = rss_kib();
    source.stop();
    return Sample{nd / sub_s, nd / gw_s, rss_before, rss_after};
  };
  // Median of `reps` runs, each rate on its own: one noisy run moves nothing.
  const int reps = quick ? 1 : 3;
  auto median = [&](const std::function<Sample()>& once) {
    std::vector<Sample> runs;
    for (int i = 0; i < reps; ++i) runs.push_back(once());
    auto pick = [&](auto field) {
      std::vector<double> v;
      for (const auto& r : runs) v.push_back(field(r));
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    Sample m{pick([](const Sample& x) { return x.baseline_rate; }), pick([](const Sample& x) { return x.gateway_rate; }),
             runs.front().rss_before_kib, 0};
    for (const auto& r : runs) m.rss_after_kib = std::max(m.rss_after_kib, r.rss_after_kib);
    return m;
  };

  std::ostringstream table;
  table << "| shape | QoS | messages | mosquitto_sub msg/s | tidegate msg/s | ratio | RSS before / max after |\n"
        << "|---|---|---|---|---|---|---|\n";
  for (int qos : {0, 1}) {
    for (const char* shape : {"drain of a queued backlog", "live, publisher waiting for acks"}) {
      const bool is_drain = shape[0] == 'd';
      const Sample m = median([&] { return is_drain ? drain(qos) : live(qos); });
      table << "| " << shape << " | " << qos << " | " << n << " | " << fmt(m.baseline_rate) << " | "
            << fmt(m.gateway_rate) << " | " << fmt(m.gateway_rate / m.baseline_rate, 2) << " | "
            << m.rss_before_kib / 1024 << " / " << m.rss_after_kib / 1024 << " MiB |\n";
    }
  }

  std::ostringstream doc;
  doc << "# bench/ingest results, " << bench::today_utc() << "\n\n"
      << bench::machine_lines()
      << "- " << bench::shell("mosquitto -h 2>/dev/null | head -1") << "; buffer crash-safe, 10 ms commit window\n"
      << "- payload 100 bytes; 16 topics; MQTT 5 for tidegate, mosquitto_sub's default (3.1.1) for the baseline\n"
      << "- command: `build/bench/ingest/bench_ingest" << (quick ? " --quick" : "") << " --out bench/results`\n\n"
      << "ratio = tidegate msg/s / mosquitto_sub msg/s (the broker's ceiling to a plain subscriber); each rate is the "
         "median of " << reps << " run(s).\n"
      << "RSS is of the whole benchmark process (gateway source and buffer, plus the Paho publisher in live runs).\n\n"
      << table.str();
  bench::publish_results("ingest", out_dir, doc.str());
}
