// bench/compare: forwarding over MQTT side by side with mosquitto's own
// bridge, the peer a site without the gateway would use (issue 23).
//
// Both paths get the same workload from the same publisher: QoS 1 readings
// of 100 bytes from 50 devices, 20 in flight, published to an edge mosquitto
// (persistence on, autosave_interval 60, unlimited queues); both deliver to
// the same kind of upstream mosquitto, where a persistent QoS 1 subscriber
// counts every reading (lost, duplicated) and its publish-to-arrival time.
//   (a) bridge: the edge broker bridges sensors/# out to the upstream.
//   (b) tidegate: the real binary takes sensors/# from the edge broker
//       ([[sources.mqtt]]) into its buffer and forwards it ([[sinks.mqtt]],
//       payload raw) to the upstream; default buffer settings (crash-safe).
// Per path, in one invocation:
//   1. online: N readings as fast as the publisher's window allows; msgs/s is
//      N over first publish to last arrival;
//   2. outage: the upstream stops, N readings are published, the upstream
//      starts again; the drain rate is N over the first to the last arrival
//      (the time to reconnect is reported on its own);
//   3. latency: readings paced at 1,000/s for a few seconds, p50 and p99.
// CPU seconds (user + system from /proc/PID/stat) of every process on the
// edge side (the edge broker, and the gateway), their peak RSS (VmHWM) and
// RSS before and after the outage, and the bytes they wrote to disk
// (/proc/PID/io write_bytes) per reading.
//
//   bench_compare [--quick] [--readings N] [--out DIR] [--tidegate PATH] [--dir DIR] [--sink-keys TOML] [--buffer-keys TOML]
// (--sink-keys, --buffer-keys: more keys for the gateway's [[sinks.mqtt]] and
// [buffer], e.g. 'linger = "0ms"')
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <mqtt/async_client.h>

#include "mosquitto.h"
#include "process.h"
#include "report.h"
#include "timed_readings.h"
#include "test_support.h"

using namespace tidegate;
using bench::fmt;
using bench::steady_ns;
using Steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadingBytes = 100;
constexpr int kDevices = 50;
constexpr int kWindow = 20;  // the publisher's QoS 1 messages in flight

// Publishes numbered readings, QoS 1, round robin over kDevices topics: with
// at most kWindow unacknowledged, or paced at a rate.
class Publisher {
 public:
  explicit Publisher(std::uint16_t port)
      : client_("tcp://127.0.0.1:" + std::to_string(port), "compare-publisher", 100000, nullptr) {
    client_.connect(::mqtt::connect_options_builder().clean_session(true).max_inflight(kWindow * 2).finalize())->wait();
  }
  ~Publisher() {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
  }
  // Readings first..first+count-1; returns when every one is acknowledged.
  void publish_window(std::uint64_t first, std::uint64_t count) {
    for (std::uint64_t n = first; n < first + count; ++n) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return in_flight_ < kWindow; });
        in_flight_ += 1;
      }
      send(n);
    }
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
  }
  // Readings from `first`, `rate` a second, for `seconds`; returns the count.
  std::uint64_t publish_paced(std::uint64_t first, double rate, double seconds) {
    const auto start = Steady::now();
    const auto count = static_cast<std::uint64_t>(rate * seconds);
    for (std::uint64_t i = 0; i < count; ++i) {
      std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(i) * 1e9 / rate)));
      {
        std::lock_guard lock(mu_);
        in_flight_ += 1;
      }
      send(first + i);
    }
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    return count;
  }
  std::uint64_t failed() const { return failed_; }

 private:
  void send(std::uint64_t n) {
    // The listener goes in with the publish: set afterwards, an early
    // acknowledgement would find none and the window would never close.
    client_.publish(::mqtt::make_message("sensors/dev-" + std::to_string(n % kDevices) + "/temp", bench::timed_reading(n, steady_ns(), kReadingBytes),
                                         1, false),
                    nullptr, callbacks_);
  }
  void done(bool ok) {
    if (!ok) failed_ += 1;
    std::lock_guard lock(mu_);
    in_flight_ -= 1;
    cv_.notify_all();
  }
  struct Callbacks : ::mqtt::iaction_listener {
    explicit Callbacks(Publisher& p) : owner(p) {}
    void on_success(const ::mqtt::token&) override { owner.done(true); }
    void on_failure(const ::mqtt::token&) override { owner.done(false); }
    Publisher& owner;
  };

  ::mqtt::async_client client_;
  Callbacks callbacks_{*this};
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  std::atomic<std::uint64_t> failed_{0};
};

// A persistent QoS 1 subscriber on the upstream: what it misses while the
// upstream is down waits in its session. Counts each reading by number.
class Subscriber {
 public:
  Subscriber(std::uint16_t port, std::uint64_t readings) : port_(port), seen_(readings, 0) { connect(); }
  ~Subscriber() { disconnect(); }
  void connect() {
    client_ = std::make_unique<::mqtt::async_client>("tcp://127.0.0.1:" + std::to_string(port_), "compare-subscriber",
                                                     0, nullptr);
    client_->set_message_callback([this](::mqtt::const_message_ptr m) { on_message(m->get_payload_str()); });
    for (int attempt = 0;; ++attempt) {
      try {
        client_->connect(::mqtt::connect_options_builder().clean_session(false).finalize())->wait();
        break;
      } catch (const ::mqtt::exception&) {
        if (attempt > 100) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    client_->subscribe("sensors/#", 1)->wait();
  }
  void disconnect() {
    if (!client_) return;
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
    client_.reset();
  }
  // Waits until every reading before `end` arrived (the phases publish
  // in order, so none after it can be counted yet); false on timeout.
  bool wait_all(std::uint64_t end, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return distinct_ >= end; });
  }
  std::int64_t last_arrival_ns() {
    std::lock_guard lock(mu_);
    return last_arrival_ns_;
  }
  // The arrival of the first reading after the last mark().
  void mark() {
    std::lock_guard lock(mu_);
    first_arrival_ns_ = 0;
  }
  std::int64_t first_arrival_ns() {
    std::lock_guard lock(mu_);
    return first_arrival_ns_;
  }
  void reset_latencies() {
    std::lock_guard lock(mu_);
    latencies_ns_.clear();
  }
  double percentile_ms(double q) {
    std::lock_guard lock(mu_);
    return bench::percentile_ms(latencies_ns_, q);
  }
  // Readings in [0, end) never seen, and extra copies of those seen.
  std::pair<std::uint64_t, std::uint64_t> lost_and_duplicated(std::uint64_t end) {
    std::lock_guard lock(mu_);
    std::uint64_t lost = 0, dup = 0;
    for (std::uint64_t n = 0; n < end; ++n) {
      if (seen_[n] == 0) lost += 1;
      else dup += seen_[n] - 1;
    }
    return {lost, dup};
  }

 private:
  void on_message(const std::string& p) {
    const auto now = steady_ns();
    const auto t = p.find("\"t\":"), n = p.find("\"n\":");
    if (t == std::string::npos || n == std::string::npos) return;
    const auto sent = std::strtoll(p.c_str() + t + 4, nullptr, 10);
    const auto number = std::strtoull(p.c_str() + n + 4, nullptr, 10);
    std::lock_guard lock(mu_);
    if (number < seen_.size() && seen_[number]++ == 0) distinct_ += 1;
    latencies_ns_.push_back(now - sent);
    last_arrival_ns_ = now;
    if (first_arrival_ns_ == 0) first_arrival_ns_ = now;
    cv_.notify_all();
  }

  std::uint16_t port_;
  std::unique_ptr<::mqtt::async_client> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::uint32_t> seen_;
  std::uint64_t distinct_ = 0;
  std::vector<std::int64_t> latencies_ns_;
  std::int64_t last_arrival_ns_ = 0, first_arrival_ns_ = 0;
};

// The processes on the edge side of one path, for CPU, memory and disk.
struct Edge {
  std::unique_ptr<testing::Mosquitto> broker;
  std::unique_ptr<testing::Process> gateway;  // tidegate's path only

  std::vector<pid_t> pids() const {
    std::vector<pid_t> out{broker->pid()};
    if (gateway) out.push_back(gateway->pid());
    return out;
  }
  double cpu() const {
    double s = 0;
    for (auto pid : pids()) s += bench::cpu_seconds(pid);
    return s;
  }
  std::uint64_t written() const {
    std::uint64_t b = 0;
    for (auto pid : pids()) b += bench::written_bytes(pid);
    return b;
  }
  std::uint64_t rss_kib(const char* field) const {
    std::uint64_t k = 0;
    for (auto pid : pids()) k += bench::status_kib(pid, field);
    return k;
  }
};

struct Result {
  std::string path;
  double online_per_s = 0, drain_per_s = 0, reconnect_s = 0;
  double online_cpu_s = 0, outage_cpu_s = 0;  // edge side, per phase
  double gateway_cpu_s = 0;                   // of online_cpu_s: the gateway alone
  std::uint64_t peak_rss_kib = 0, rss_before_outage_kib = 0, rss_after_outage_kib = 0;
  double online_bytes_per_reading = 0, outage_bytes_per_reading = 0;
  double p50_ms = 0, p99_ms = 0;
  std::uint64_t lost = 0, duplicated = 0, publish_failures = 0;
  std::string note;
};

struct Options {
  std::string binary = TIDEGATE_BINARY;
  std::filesystem::path dir;
  std::uint64_t readings = 200'000;
  double latency_seconds = 10;
  std::string sink_keys;    // more keys of the gateway's [[sinks.mqtt]] (--sink-keys)
  std::string buffer_keys;  // and of its [buffer] (--buffer-keys)
};

std::unique_ptr<testing::Process> start_tidegate(const Options& o, const std::filesystem::path& dir,
                                                 std::uint16_t edge_port, std::uint16_t upstream_port) {
  std::filesystem::create_directories(dir);
  const auto config = dir / "tidegate.toml";
  std::ofstream(config) << "[gateway]\nid = \"compare\"\n[heartbeat]\ninterval = \"0s\"\n[status]\nenabled = false\n"
                        << "[buffer]\npath = \"" << (dir / "buffer.db").string() << "\"\nmax_bytes = \"2GiB\"\n"
                        << "disk_reserve = 0\n" << o.buffer_keys << "\n"
                        << "[[sources.mqtt]]\nname = \"edge\"\nurl = \"mqtt://127.0.0.1:" << edge_port << "\"\n"
                        << "topics = [\"sensors/#\"]\nkey_from_topic = \"sensors/{device}/#\"\n"
                        << "[[sinks.mqtt]]\nname = \"upstream\"\nurl = \"mqtt://127.0.0.1:" << upstream_port << "\"\n"
                        << "topic = \"{topic}\"\npayload = \"raw\"\nretry_max = \"1s\"\n" << o.sink_keys << "\n";
  const auto log = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm/tidegate-compare.log")
                                                       : dir / "gateway.log";
  std::filesystem::remove(log);
  auto p = std::make_unique<testing::Process>(std::vector<std::string>{o.binary, "run", "--config", config.string()}, log);
  if (!testing::wait_for([&] { return testing::read_text(log).find("subscribed to") != std::string::npos; },
                         std::chrono::seconds(20))) {
    throw std::runtime_error("the gateway did not subscribe; see " + log.string());
  }
  return p;
}

Result run_path(const Options& o, bool bridge) {
  Result r;
  r.path = bridge ? "mosquitto bridge" : "tidegate";
  const auto dir = o.dir / (bridge ? "bridge" : "tidegate");
  std::filesystem::remove_all(dir);
  testing::Mosquitto upstream(dir / "upstream");
  // The edge broker as the packaged drop-in runs it (persistence, autosave
  // every 60 s, unlimited queue); the bridge reconnects within a second, as
  // the gateway's sink does with retry_max 1s.
  std::string edge_conf = "autosave_interval 60\n";
  if (bridge) {
    edge_conf += "connection upstream\naddress 127.0.0.1:" + std::to_string(upstream.port()) +
                 "\ntopic sensors/# out 1\ncleansession false\nrestart_timeout 1\n";
  }
  Edge edge;
  edge.broker = std::make_unique<testing::Mosquitto>(dir / "edge", edge_conf);
  const std::uint64_t total = 2 * o.readings + static_cast<std::uint64_t>(1000 * o.latency_seconds) + 1;
  Subscriber sub(upstream.port(), total);
  if (!bridge) edge.gateway = start_tidegate(o, dir / "gw", edge.broker->port(), upstream.port());
  Publisher pub(edge.broker->port());
  // Warm-up: one reading through, so both paths are connected end to end.
  pub.publish_window(0, 1);
  if (!sub.wait_all(1, std::chrono::seconds(30))) throw std::runtime_error(r.path + ": nothing arrived upstream");

  // 1. Online.
  std::uint64_t next = 1;
  auto cpu0 = edge.cpu();
  const auto gw_cpu0 = edge.gateway ? bench::cpu_seconds(edge.gateway->pid()) : 0.0;
  auto io0 = edge.written();
  const auto t0 = steady_ns();
  pub.publish_window(next, o.readings);
  if (!sub.wait_all(next + o.readings, std::chrono::seconds(600))) r.note += "online: not all arrived; ";
  r.online_per_s = static_cast<double>(o.readings) / (static_cast<double>(sub.last_arrival_ns() - t0) / 1e9);
  r.online_cpu_s = edge.cpu() - cpu0;
  r.gateway_cpu_s = edge.gateway ? bench::cpu_seconds(edge.gateway->pid()) - gw_cpu0 : 0.0;
  r.online_bytes_per_reading = static_cast<double>(edge.written() - io0) / static_cast<double>(o.readings);
  next += o.readings;

  // 2. Outage, then the drain.
  r.rss_before_outage_kib = edge.rss_kib("VmRSS:");
  sub.disconnect();
  upstream.stop();
  cpu0 = edge.cpu();
  io0 = edge.written();
  pub.publish_window(next, o.readings);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // what the edge took in has settled
  upstream.start();
  const auto restarted = steady_ns();
  sub.mark();
  sub.connect();
  if (!sub.wait_all(next + o.readings, std::chrono::seconds(900))) r.note += "drain: not all arrived; ";
  // From the first reading upstream to the last: the reconnect (the bridge's
  // restart_timeout, the sink's backoff) is reported on its own.
  r.reconnect_s = static_cast<double>(sub.first_arrival_ns() - restarted) / 1e9;
  r.drain_per_s =
      static_cast<double>(o.readings) / (static_cast<double>(sub.last_arrival_ns() - sub.first_arrival_ns()) / 1e9);
  r.outage_cpu_s = edge.cpu() - cpu0;
  r.outage_bytes_per_reading = static_cast<double>(edge.written() - io0) / static_cast<double>(o.readings);
  r.rss_after_outage_kib = edge.rss_kib("VmRSS:");
  next += o.readings;

  // 3. Latency at 1,000 readings/s.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  sub.reset_latencies();
  const auto paced = pub.publish_paced(next, 1000, o.latency_seconds);
  if (!sub.wait_all(next + paced, std::chrono::seconds(60))) r.note += "latency run: not all arrived; ";
  r.p50_ms = sub.percentile_ms(0.50);
  r.p99_ms = sub.percentile_ms(0.99);
  next += paced;

  r.peak_rss_kib = edge.rss_kib("VmHWM:");
  std::tie(r.lost, r.duplicated) = sub.lost_and_duplicated(next);
  r.publish_failures = pub.failed();
  if (edge.gateway) {
    if (!edge.gateway->running()) r.note += "the gateway exited; ";
    edge.gateway->signal_and_wait(SIGTERM);
  }
  return r;
}

std::string ratio(double a, double b) { return b > 0 ? fmt(a / b, 2) + "x" : "-"; }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string out_dir;
  std::string dir = "/var/tmp";
  std::string command = "bench_compare";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    command += " " + a;
    auto value = [&] {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      command += std::string(" ") + argv[i + 1];
      return std::string(argv[++i]);
    };
    if (a == "--quick") {
      o.readings = 20'000;
      o.latency_seconds = 3;
    } else if (a == "--readings") {
      o.readings = std::stoull(value());
    } else if (a == "--out") {
      out_dir = value();
    } else if (a == "--tidegate") {
      o.binary = value();
    } else if (a == "--dir") {
      dir = value();
    } else if (a == "--sink-keys") {  // e.g. --sink-keys 'linger = "5ms"'
      o.sink_keys = value();
    } else if (a == "--buffer-keys") {  // e.g. --buffer-keys 'commit_window = "2ms"'
      o.buffer_keys = value();
    } else {
      std::cerr << "usage: bench_compare [--quick] [--readings N] [--out DIR] [--tidegate PATH] [--dir DIR] [--sink-keys TOML] [--buffer-keys TOML]\n";
      return 2;
    }
  }
  o.dir = std::filesystem::path(dir) / ("tidegate-bench-compare-" + std::to_string(::getpid()));
  std::filesystem::create_directories(o.dir);

  std::vector<Result> results;
  try {
    results.push_back(run_path(o, true));
    results.push_back(run_path(o, false));
  } catch (const std::exception& e) {
    std::cerr << "bench_compare: " << e.what() << "\n";
    return 1;
  }
  const auto& b = results[0];
  const auto& t = results[1];
  const double n = static_cast<double>(o.readings);
  std::string doc = "# bench/compare — " + bench::today_utc() + "\n\n" + bench::machine_lines() +
                    "- command: `" + command + "`\n" +
                    "- workload: QoS 1 readings of 100 bytes from " + std::to_string(kDevices) +
                    " devices, " + std::to_string(kWindow) + " in flight, one Paho publisher to an edge mosquitto "
                    "(persistence, autosave_interval 60, unlimited queues); a persistent QoS 1 subscriber on an "
                    "upstream mosquitto counts every reading\n"
                    "- paths: (a) the edge broker's bridge (`topic sensors/# out 1`); (b) tidegate taking "
                    "`sensors/#` from the edge broker into its buffer (default settings: crash-safe, 10 ms commit "
                    "window) and forwarding with `[[sinks.mqtt]]` (payload raw, default linger 20 ms)\n"
                    "- " + std::to_string(o.readings) + " readings online, " + std::to_string(o.readings) +
                    " through an outage of the upstream, then " + fmt(o.latency_seconds) +
                    " s paced at 1,000/s; CPU, memory and disk are the edge side's processes (bridge: the edge "
                    "broker; tidegate: the edge broker and the gateway)\n\n";
  doc += "| | mosquitto bridge | tidegate | tidegate vs bridge | target |\n|---|---|---|---|---|\n";
  doc += "| online, msgs/s | " + fmt(b.online_per_s) + " | " + fmt(t.online_per_s) + " | " +
         ratio(t.online_per_s, b.online_per_s) + " | >= 1.0x |\n";
  doc += "| drain after the outage, msgs/s | " + fmt(b.drain_per_s) + " | " + fmt(t.drain_per_s) + " | " +
         ratio(t.drain_per_s, b.drain_per_s) + " | >= 1.0x |\n";
  doc += "| upstream back to first reading there, s | " + fmt(b.reconnect_s, 2) + " | " + fmt(t.reconnect_s, 2) +
         " | | |\n";
  doc += "| CPU s per " + fmt(n / 1000) + " k online (edge side) | " + fmt(b.online_cpu_s, 2) + " | " +
         fmt(t.online_cpu_s, 2) + " (gateway " + fmt(t.gateway_cpu_s, 2) + ") | " +
         ratio(t.online_cpu_s, b.online_cpu_s) + " | <= 1.0x |\n";
  doc += "| CPU s per " + fmt(n / 1000) + " k through the outage (edge side) | " + fmt(b.outage_cpu_s, 2) + " | " +
         fmt(t.outage_cpu_s, 2) + " | " + ratio(t.outage_cpu_s, b.outage_cpu_s) + " | |\n";
  doc += "| peak RSS (edge side), MiB | " + fmt(static_cast<double>(b.peak_rss_kib) / 1024, 1) + " | " +
         fmt(static_cast<double>(t.peak_rss_kib) / 1024, 1) + " | | |\n";
  doc += "| RSS before → after the outage, MiB | " + fmt(static_cast<double>(b.rss_before_outage_kib) / 1024, 1) +
         " → " + fmt(static_cast<double>(b.rss_after_outage_kib) / 1024, 1) + " | " +
         fmt(static_cast<double>(t.rss_before_outage_kib) / 1024, 1) + " → " +
         fmt(static_cast<double>(t.rss_after_outage_kib) / 1024, 1) + " | | flat |\n";
  doc += "| disk bytes written per reading, online | " + fmt(b.online_bytes_per_reading) + " | " +
         fmt(t.online_bytes_per_reading) + " | | |\n";
  doc += "| disk bytes written per reading, outage | " + fmt(b.outage_bytes_per_reading) + " | " +
         fmt(t.outage_bytes_per_reading) + " | | |\n";
  doc += "| latency at 1,000/s, p50 / p99 ms | " + fmt(b.p50_ms, 1) + " / " + fmt(b.p99_ms, 1) + " | " +
         fmt(t.p50_ms, 1) + " / " + fmt(t.p99_ms, 1) + " | | p99 <= 25 ms |\n";
  doc += "| lost / duplicated | " + std::to_string(b.lost) + " / " + std::to_string(b.duplicated) + " | " +
         std::to_string(t.lost) + " / " + std::to_string(t.duplicated) + " | | 0 lost |\n";
  for (const auto& r : results) {
    if (r.publish_failures) doc += "\n" + r.path + ": " + std::to_string(r.publish_failures) + " publishes failed.";
    if (!r.note.empty()) doc += "\n" + r.path + ": " + r.note;
  }
  doc += "\n";
  bench::publish_results("compare", out_dir, doc);
  std::filesystem::remove_all(o.dir);
  const bool complete = b.note.empty() && t.note.empty() && b.lost == 0 && t.lost == 0;
  return complete ? 0 : 1;
}
