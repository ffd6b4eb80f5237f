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
//   (c) tidegate listener: the publisher connects to the gateway's own
//       [[sources.mqtt_listener]]; no edge broker, the same buffer and sink.
// Per path, in one invocation:
//   1. online: N readings as fast as the publisher's window allows; msgs/s is
//      N over first publish to last arrival;
//   2. outage: the upstream stops, N readings are published, the upstream
//      starts again; the drain rate is N over the first to the last arrival
//      (the time to reconnect is reported on its own);
//   3. latency: readings paced at 1,000/s for a few seconds, p50 and p99;
//   4. drain under live load: the upstream stops, N readings are published,
//      the upstream starts again and, from its first arrival there, a second
//      publisher sends live readings at 1,000/s until the backlog is through:
//      the backlog's drain rate and the live readings' p50/p99
//      (tidegate's sink reloaded with drain = "live-first", live_lag = "5s";
//      the bridge has one queue, first in first out).
// CPU seconds (user + system from /proc/PID/stat) of every process on the
// edge side (the edge broker, and the gateway), their peak RSS (VmHWM) and
// RSS before and after the outage, and the bytes they wrote to disk
// (/proc/PID/io write_bytes) per reading.
//
//   bench_compare [--quick] [--readings N] [--out DIR] [--tidegate PATH] [--dir DIR] [--sink-keys TOML] [--buffer-keys TOML]
//   bench_compare --callgrind: the edge broker and the gateway under valgrind
//   --tool=callgrind, counters zeroed once connected and dumped once 5,000
//   readings arrived upstream: instructions per reading, deterministic on a
//   noisy machine (issue 23's "<= 2x the bridge's").
// (--sink-keys, --buffer-keys: more keys for the gateway's [[sinks.mqtt]] and
// [buffer], e.g. 'linger = "0ms"')
#include <unistd.h>

#include <algorithm>
#include <csignal>
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
constexpr std::uint64_t kMaxLive = 600'000;  // phase 4: live readings at most (10 minutes)

// Publishes numbered readings, QoS 1, round robin over kDevices topics: with
// at most kWindow unacknowledged, or paced at a rate.
class Publisher {
 public:
  // `channel`: the last topic level ("temp"; phase 4's live readings "live").
  explicit Publisher(std::uint16_t port, const std::string& client_id = "compare-publisher",
                     std::string channel = "temp")
      : client_("tcp://127.0.0.1:" + std::to_string(port), client_id, 100000, nullptr), channel_(std::move(channel)) {
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
    std::atomic<bool> never{false};
    return publish_paced_until(first, rate, static_cast<std::uint64_t>(rate * seconds), never);
  }
  // The same, until `stop` is set or `max` readings were sent.
  std::uint64_t publish_paced_until(std::uint64_t first, double rate, std::uint64_t max, const std::atomic<bool>& stop) {
    const auto start = Steady::now();
    std::uint64_t count = 0;
    for (std::uint64_t i = 0; i < max && !stop; ++i, ++count) {
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
    client_.publish(::mqtt::make_message("sensors/dev-" + std::to_string(n % kDevices) + "/" + channel_, bench::timed_reading(n, steady_ns(), kReadingBytes),
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
  const std::string channel_;
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
  // `filter`: what it counts; phase 4 has a second one for the live readings
  // alone, with its own queue in the upstream broker (one subscriber's queue
  // is first in first out: live readings would wait there behind the backlog
  // whatever the path did).
  Subscriber(std::uint16_t port, std::uint64_t readings, std::string client_id = "compare-subscriber",
             std::string filter = "sensors/#")
      : port_(port), client_id_(std::move(client_id)), filter_(std::move(filter)), seen_(readings, 0) {
    connect();
  }
  ~Subscriber() { disconnect(); }
  void connect() {
    client_ = std::make_unique<::mqtt::async_client>("tcp://127.0.0.1:" + std::to_string(port_), client_id_,
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
    client_->subscribe(filter_, 1)->wait();
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
  // Readings numbered from `from` on are live ones (phase 4): the backlog's
  // last arrival is that of the last reading before them.
  void split_live_from(std::uint64_t from) {
    std::lock_guard lock(mu_);
    live_from_ = from;
  }
  std::int64_t last_backlog_arrival_ns() {
    std::lock_guard lock(mu_);
    return last_backlog_arrival_ns_;
  }
  // Waits until every reading in [first, end) arrived; false on timeout.
  // Each wake-up resumes where the last stopped: a check per arrival over the
  // whole range would cost the bench's own CPU on the edge side's cores.
  bool wait_range(std::uint64_t first, std::uint64_t end, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      while (first < end && seen_[first] != 0) ++first;
      return first == end;
    });
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
    if (number < live_from_) last_backlog_arrival_ns_ = now;
    last_arrival_ns_ = now;
    if (first_arrival_ns_ == 0) first_arrival_ns_ = now;
    cv_.notify_all();
  }

  std::uint16_t port_;
  const std::string client_id_, filter_;
  std::unique_ptr<::mqtt::async_client> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::uint32_t> seen_;
  std::uint64_t distinct_ = 0;
  std::vector<std::int64_t> latencies_ns_;
  std::int64_t last_arrival_ns_ = 0, first_arrival_ns_ = 0;
  std::uint64_t live_from_ = UINT64_MAX;
  std::int64_t last_backlog_arrival_ns_ = 0;
};

// The processes on the edge side of one path, for CPU, memory and disk.
struct Edge {
  std::unique_ptr<testing::Mosquitto> broker;  // none on the listener path
  std::unique_ptr<testing::Process> gateway;   // tidegate's paths only

  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    if (broker) out.push_back(broker->pid());
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
  // Phase 4: the backlog's drain rate while live readings arrive at 1,000/s,
  // and those live readings' latency.
  double drain_under_live_per_s = 0, live_p50_ms = 0, live_p99_ms = 0;
  std::uint64_t live_readings = 0;
  std::uint64_t lost = 0, duplicated = 0, publish_failures = 0;
  std::string note;
  // --callgrind: instructions per reading of the edge broker and the gateway.
  double broker_instructions = 0, gateway_instructions = 0;
};

struct Options {
  std::string binary = TIDEGATE_BINARY;
  std::filesystem::path dir;
  std::uint64_t readings = 200'000;
  double latency_seconds = 10;
  std::string sink_keys;    // more keys of the gateway's [[sinks.mqtt]] (--sink-keys)
  std::string buffer_keys;  // and of its [buffer] (--buffer-keys)
  std::filesystem::path callgrind_dir;  // --callgrind: edge-side processes run under valgrind
};

// The three ways from the sensors to the upstream broker.
enum class Path {
  kBridge,    // the edge broker's bridge
  kTidegate,  // the edge broker, then tidegate's MQTT source, buffer and sink
  kListener,  // the sensors publish to tidegate's own listener: no edge broker
};

const char* path_name(Path p) {
  switch (p) {
    case Path::kBridge: return "mosquitto bridge";
    case Path::kTidegate: return "tidegate";
    case Path::kListener: return "tidegate listener";
  }
  return "";
}

// --callgrind: the command prefix that runs a process of the edge side under
// callgrind, its profile in callgrind_dir/ROLE.PID (empty without --callgrind).
std::vector<std::string> callgrind_prefix(const Options& o, const std::string& role) {
  if (o.callgrind_dir.empty()) return {};
  return {"/usr/bin/valgrind", "--tool=callgrind", "--dump-instr=no",
          "--callgrind-out-file=" + (o.callgrind_dir / role).string() + ".%p"};
}

void callgrind_command(const char* command, pid_t pid) {
  const auto line = std::string("callgrind_control ") + command + " " + std::to_string(pid) + " > /dev/null 2>&1";
  if (std::system(line.c_str()) != 0) throw std::runtime_error(line + " failed");
}

// Instructions of the dump callgrind_control -d wrote (ROLE.PID.1).
std::uint64_t callgrind_dumped_instructions(const Options& o, const std::string& role, pid_t pid) {
  const auto file = o.callgrind_dir / (role + "." + std::to_string(pid) + ".1");
  for (int i = 0; i < 600 && !std::filesystem::exists(file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("summary: ", 0) == 0) return std::stoull(line.substr(9));
  }
  throw std::runtime_error("no summary in " + file.string());
}

std::filesystem::path gateway_log(const std::filesystem::path& dir) {
  return std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm/tidegate-compare.log")
                                             : dir / "gateway.log";
}

// `ingest_port`: the edge broker's (kTidegate) or the listener's (kListener).
// `more_sink_keys`: phase 4's drain policy, applied by a reload.
void write_tidegate_config(const Options& o, const std::filesystem::path& dir, Path path, std::uint16_t ingest_port,
                           std::uint16_t upstream_port, const std::string& more_sink_keys) {
  std::ofstream toml(dir / "tidegate.toml");
  toml << "[gateway]\nid = \"compare\"\n[heartbeat]\ninterval = \"0s\"\n[status]\nenabled = false\n"
       << "[buffer]\npath = \"" << (dir / "buffer.db").string() << "\"\nmax_bytes = \"2GiB\"\n"
       << "disk_reserve = 0\n" << o.buffer_keys << "\n";
  if (path == Path::kListener) {
    toml << "[[sources.mqtt_listener]]\nname = \"devices\"\nlisten = \"127.0.0.1:" << ingest_port << "\"\n"
         << "key_from_topic = \"sensors/{device}/#\"\n";
  } else {
    toml << "[[sources.mqtt]]\nname = \"edge\"\nurl = \"mqtt://127.0.0.1:" << ingest_port << "\"\n"
         << "topics = [\"sensors/#\"]\nkey_from_topic = \"sensors/{device}/#\"\n";
  }
  toml << "[[sinks.mqtt]]\nname = \"upstream\"\nurl = \"mqtt://127.0.0.1:" << upstream_port << "\"\n"
       << "topic = \"{topic}\"\npayload = \"raw\"\nretry_max = \"1s\"\n" << o.sink_keys << "\n"
       << more_sink_keys;
}

std::unique_ptr<testing::Process> start_tidegate(const Options& o, const std::filesystem::path& dir, Path path,
                                                 std::uint16_t ingest_port, std::uint16_t upstream_port) {
  std::filesystem::create_directories(dir);
  const auto config = dir / "tidegate.toml";
  write_tidegate_config(o, dir, path, ingest_port, upstream_port, "");
  const auto log = gateway_log(dir);
  std::filesystem::remove(log);
  std::vector<std::string> argv = callgrind_prefix(o, "gateway");
  for (const auto& a : {o.binary, std::string("run"), std::string("--config"), config.string()}) argv.push_back(a);
  auto p = std::make_unique<testing::Process>(argv, log);
  const char* ready = path == Path::kListener ? "listening for MQTT" : "subscribed to";
  if (!testing::wait_for([&] { return testing::read_text(log).find(ready) != std::string::npos; },
                         std::chrono::seconds(o.callgrind_dir.empty() ? 20 : 120))) {
    throw std::runtime_error(std::string("the gateway did not start its source (\"") + ready + "\" not logged); see " +
                             log.string());
  }
  return p;
}

Result run_path(const Options& options, Path path) {
  Result r;
  r.path = path_name(path);
  const bool bridge = path == Path::kBridge;
  const std::string leaf = bridge ? "bridge" : path == Path::kTidegate ? "tidegate" : "listener";
  const auto dir = options.dir / leaf;
  Options o = options;
  if (!o.callgrind_dir.empty()) {
    o.callgrind_dir /= leaf;
    std::filesystem::create_directories(o.callgrind_dir);
  }
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
  if (path != Path::kListener) {
    edge.broker = std::make_unique<testing::Mosquitto>(dir / "edge", edge_conf, callgrind_prefix(o, "edge-broker"));
  }
  const std::uint64_t total = 3 * o.readings + static_cast<std::uint64_t>(1000 * o.latency_seconds) + 1 + kMaxLive;
  Subscriber sub(upstream.port(), total);
  const std::uint16_t ingest_port = edge.broker ? edge.broker->port() : testing::free_loopback_port();
  if (!bridge) edge.gateway = start_tidegate(o, dir / "gw", path, ingest_port, upstream.port());
  Publisher pub(ingest_port);
  // Warm-up: one reading through, so both paths are connected end to end.
  pub.publish_window(0, 1);
  if (!sub.wait_all(1, std::chrono::seconds(30))) throw std::runtime_error(r.path + ": nothing arrived upstream");

  std::uint64_t next = 1;
  if (!o.callgrind_dir.empty()) {
    // Counters zeroed once connected, dumped once every reading arrived.
    if (edge.broker) callgrind_command("-z", edge.broker->pid());
    if (edge.gateway) callgrind_command("-z", edge.gateway->pid());
    pub.publish_window(next, o.readings);
    if (!sub.wait_all(next + o.readings, std::chrono::seconds(600))) r.note += "not all arrived; ";
    const double n = static_cast<double>(o.readings);
    if (edge.broker) {
      callgrind_command("-d", edge.broker->pid());
      r.broker_instructions = static_cast<double>(callgrind_dumped_instructions(o, "edge-broker", edge.broker->pid())) / n;
    }
    if (edge.gateway) {
      callgrind_command("-d", edge.gateway->pid());
      r.gateway_instructions = static_cast<double>(callgrind_dumped_instructions(o, "gateway", edge.gateway->pid())) / n;
      edge.gateway->signal_and_wait(SIGTERM);
    }
    std::tie(r.lost, r.duplicated) = sub.lost_and_duplicated(next + o.readings);
    return r;
  }

  // 1. Online.
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

  // 4. A backlog drains while live readings keep coming.
  if (edge.gateway) {
    write_tidegate_config(o, dir / "gw", path, ingest_port, upstream.port(),
                          "drain = \"live-first\"\nlive_lag = \"5s\"\n");
    const auto log = gateway_log(dir / "gw");
    ::kill(edge.gateway->pid(), SIGHUP);
    if (!testing::wait_for([&] { return testing::read_text(log).find("reload done") != std::string::npos; },
                           std::chrono::seconds(20))) {
      r.note += "phase 4: the reload was not logged; ";
    }
  }
  sub.disconnect();
  upstream.stop();
  const std::uint64_t backlog_first = next;
  pub.publish_window(next, o.readings);
  next += o.readings;
  std::this_thread::sleep_for(std::chrono::seconds(6));  // the backlog is older than live_lag
  Publisher live(ingest_port, "compare-live", "live");
  upstream.start();
  sub.mark();
  sub.connect();
  // Live readings from the moment the path is back (readings published while
  // it reconnects would measure the reconnect, reported in phase 2).
  if (!testing::wait_for([&] { return sub.first_arrival_ns() != 0; }, std::chrono::seconds(60))) {
    r.note += "drain with live: nothing arrived; ";
  }
  sub.split_live_from(next);
  Subscriber live_sub(upstream.port(), total, "compare-live-subscriber", "sensors/+/live");
  std::atomic<bool> drained{false};
  std::uint64_t live_sent = 0;
  std::thread live_thread([&] { live_sent = live.publish_paced_until(next, 1000, kMaxLive, drained); });
  if (!sub.wait_range(backlog_first, next, std::chrono::seconds(900))) r.note += "drain with live: not all arrived; ";
  drained = true;
  live_thread.join();
  r.drain_under_live_per_s = static_cast<double>(o.readings) /
                             (static_cast<double>(sub.last_backlog_arrival_ns() - sub.first_arrival_ns()) / 1e9);
  if (!sub.wait_range(next, next + live_sent, std::chrono::seconds(60))) r.note += "live readings: not all arrived; ";
  r.live_readings = live_sent;
  if (!live_sub.wait_range(next, next + live_sent, std::chrono::seconds(60))) r.note += "live subscriber: not all arrived; ";
  r.live_p50_ms = live_sub.percentile_ms(0.50);
  r.live_p99_ms = live_sub.percentile_ms(0.99);
  next += live_sent;
  r.publish_failures += live.failed();

  r.peak_rss_kib = edge.rss_kib("VmHWM:");
  std::tie(r.lost, r.duplicated) = sub.lost_and_duplicated(next);
  r.publish_failures += pub.failed();
  if (edge.gateway) {
    if (!edge.gateway->running()) r.note += "the gateway exited; ";
    edge.gateway->signal_and_wait(SIGTERM);
  }
  return r;
}

std::string ratio(double a, double b) { return b > 0 ? fmt(a / b, 2) + "x" : "-"; }

int report_instructions(const std::vector<Result>& results, const Options& o, const std::string& command,
                        const std::string& out_dir) {
  const double bridge = results[0].broker_instructions;
  std::string doc = "# bench/compare --callgrind — " + bench::today_utc() + "\n\n" + bench::machine_lines() +
                    "- command: `" + command + "`\n" +
                    "- the same workload and paths as bench_compare (QoS 1, 100-byte readings, 50 devices, 20 in "
                    "flight); " + std::to_string(o.readings) +
                    " readings online, the edge side's processes under `valgrind --tool=callgrind`, counters zeroed "
                    "once the path is connected end to end and dumped once every reading arrived upstream; the "
                    "gateway with default settings (payload raw)\n\n"
                    "| path | edge broker, instructions per reading | gateway | edge side in all | vs the bridge | "
                    "target |\n|---|---|---|---|---|---|\n";
  for (const auto& r : results) {
    const double all = r.broker_instructions + r.gateway_instructions;
    doc += "| " + r.path + " | " + (r.broker_instructions > 0 ? fmt(r.broker_instructions) : "-") + " | " +
           (r.gateway_instructions > 0 ? fmt(r.gateway_instructions) : "-") + " | " + fmt(all) + " | " +
           ratio(all, bridge) + " | " + (r.path == "mosquitto bridge" ? "" : "<= 2.0x") + " |\n";
  }
  for (const auto& r : results) {
    if (r.lost) doc += "\n" + r.path + ": " + std::to_string(r.lost) + " readings lost.";
    if (!r.note.empty()) doc += "\n" + r.path + ": " + r.note;
  }
  doc += "\n";
  bench::publish_results("compare-callgrind", out_dir, doc);
  std::cout << "profiles (callgrind_annotate FILE): " << o.callgrind_dir.string() << "\n";
  return std::all_of(results.begin(), results.end(), [](const Result& r) { return r.note.empty() && r.lost == 0; }) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string out_dir;
  std::string dir = "/var/tmp";
  std::string command = "bench_compare";
  bool callgrind = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    command += " " + a;
    auto value = [&] {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      command += std::string(" ") + argv[i + 1];
      return std::string(argv[++i]);
    };
    if (a == "--quick") {  // shows every path completes; too short for figures
      o.readings = 5'000;
      o.latency_seconds = 2;
    } else if (a == "--readings") {
      o.readings = std::stoull(value());
    } else if (a == "--out") {
      out_dir = value();
    } else if (a == "--tidegate") {
      o.binary = value();
    } else if (a == "--dir") {
      dir = value();
    } else if (a == "--callgrind") {  // instructions per reading instead of rates (valgrind; slow)
      callgrind = true;
      o.readings = 5'000;
    } else if (a == "--sink-keys") {  // e.g. --sink-keys 'linger = "5ms"'
      o.sink_keys = value();
    } else if (a == "--buffer-keys") {  // e.g. --buffer-keys 'commit_window = "2ms"'
      o.buffer_keys = value();
    } else {
      std::cerr << "usage: bench_compare [--quick] [--readings N] [--out DIR] [--tidegate PATH] [--dir DIR] [--sink-keys TOML] [--buffer-keys TOML] [--callgrind]\n";
      return 2;
    }
  }
  o.dir = std::filesystem::path(dir) / ("tidegate-bench-compare-" + std::to_string(::getpid()));
  std::filesystem::create_directories(o.dir);
  if (callgrind) o.callgrind_dir = o.dir / "callgrind";

  std::vector<Result> results;
  try {
    results.push_back(run_path(o, Path::kBridge));
    results.push_back(run_path(o, Path::kTidegate));
    results.push_back(run_path(o, Path::kListener));
  } catch (const std::exception& e) {
    std::cerr << "bench_compare: " << e.what() << "\n";
    return 1;
  }
  const auto& b = results[0];
  const auto& t = results[1];
  if (callgrind) return report_instructions(results, o, command, out_dir);
  const double n = static_cast<double>(o.readings);
  std::string doc = "# bench/compare — " + bench::today_utc() + "\n\n" + bench::machine_lines() +
                    "- command: `" + command + "`\n" +
                    "- workload: QoS 1 readings of 100 bytes from " + std::to_string(kDevices) +
                    " devices, " + std::to_string(kWindow) + " in flight, one Paho publisher to an edge mosquitto "
                    "(persistence, autosave_interval 60, unlimited queues); a persistent QoS 1 subscriber on an "
                    "upstream mosquitto counts every reading\n"
                    "- paths: (a) the edge broker's bridge (`topic sensors/# out 1`); (b) tidegate taking "
                    "`sensors/#` from the edge broker into its buffer (default settings: crash-safe, 10 ms commit "
                    "window) and forwarding with `[[sinks.mqtt]]` (payload raw, default linger 0); (c) tidegate "
                    "listener: the publisher connects to tidegate's `[[sources.mqtt_listener]]`, no edge broker, the "
                    "same buffer and sink\n"
                    "- " + std::to_string(o.readings) + " readings online, " + std::to_string(o.readings) +
                    " through an outage of the upstream, then " + fmt(o.latency_seconds) +
                    " s paced at 1,000/s, then another outage of " + std::to_string(o.readings) +
                    " readings drained while a second publisher sends live readings at 1,000/s (tidegate's sink "
                    "reloaded with `drain = \"live-first\"`, `live_lag = \"5s\"`); CPU, memory and disk are the edge side's processes (bridge: the edge "
                    "broker; tidegate: the edge broker and the gateway; listener: the gateway)\n\n";
  const auto& l = results[2];
  doc += "| | mosquitto bridge | tidegate | tidegate vs bridge | tidegate listener | listener vs bridge | target |\n"
         "|---|---|---|---|---|---|---|\n";
  // A row of figures; `compare`: with each tidegate path's ratio to the bridge.
  auto row = [&](const std::string& what, double (*get)(const Result&), int decimals, bool compare,
                 const std::string& target) {
    auto cell = [&](const Result& r) { return fmt(get(r), decimals); };
    doc += "| " + what + " | " + cell(b) + " | " + cell(t) + " | " + (compare ? ratio(get(t), get(b)) : "") + " | " +
           cell(l) + " | " + (compare ? ratio(get(l), get(b)) : "") + " | " + target + " |\n";
  };
  auto mib = [](std::uint64_t kib) { return fmt(static_cast<double>(kib) / 1024, 1); };
  row("online, msgs/s", [](const Result& r) { return r.online_per_s; }, 0, true, ">= 1.0x");
  row("drain after the outage, msgs/s", [](const Result& r) { return r.drain_per_s; }, 0, true, ">= 1.0x");
  row("upstream back to first reading there, s", [](const Result& r) { return r.reconnect_s; }, 2, false, "");
  row("CPU s per " + fmt(n / 1000) + " k online (edge side)", [](const Result& r) { return r.online_cpu_s; }, 2, true,
      "<= 1.0x");
  row("of which the gateway", [](const Result& r) { return r.gateway_cpu_s; }, 2, false, "");
  row("CPU s per " + fmt(n / 1000) + " k through the outage (edge side)", [](const Result& r) { return r.outage_cpu_s; },
      2, true, "");
  doc += "| peak RSS (edge side), MiB | " + mib(b.peak_rss_kib) + " | " + mib(t.peak_rss_kib) + " | | " +
         mib(l.peak_rss_kib) + " | | |\n";
  doc += "| RSS before → after the outage, MiB | " + mib(b.rss_before_outage_kib) + " → " + mib(b.rss_after_outage_kib) +
         " | " + mib(t.rss_before_outage_kib) + " → " + mib(t.rss_after_outage_kib) + " | | " +
         mib(l.rss_before_outage_kib) + " → " + mib(l.rss_after_outage_kib) + " | | flat |\n";
  row("disk bytes written per reading, online", [](const Result& r) { return r.online_bytes_per_reading; }, 0, false, "");
  row("disk bytes written per reading, outage", [](const Result& r) { return r.outage_bytes_per_reading; }, 0, false, "");
  auto latency = [](const Result& r) { return fmt(r.p50_ms, 1) + " / " + fmt(r.p99_ms, 1); };
  doc += "| latency at 1,000/s, p50 / p99 ms | " + latency(b) + " | " + latency(t) + " | | " + latency(l) +
         " | | p99 <= 25 ms |\n";
  doc += "| drain of " + fmt(n / 1000) + " k with live readings at 1,000/s (live-first), backlog msgs/s | " +
         fmt(b.drain_under_live_per_s, 0) + " | " + fmt(t.drain_under_live_per_s, 0) + " | " +
         ratio(t.drain_under_live_per_s, 1000) + " of live | " + fmt(l.drain_under_live_per_s, 0) + " | " +
         ratio(l.drain_under_live_per_s, 1000) + " of live | >= 10x live |\n";
  auto live = [](const Result& r) {
    return fmt(r.live_p50_ms, 1) + " / " + fmt(r.live_p99_ms, 1) + " (" + std::to_string(r.live_readings) + ")";
  };
  doc += "| meanwhile the live readings, p50 / p99 ms (how many) | " + live(b) + " | " + live(t) + " | | " + live(l) +
         " | | p99 < 100 ms |\n";
  auto lost = [](const Result& r) { return std::to_string(r.lost) + " / " + std::to_string(r.duplicated); };
  doc += "| lost / duplicated | " + lost(b) + " | " + lost(t) + " | | " + lost(l) + " | | 0 lost |\n";
  for (const auto& r : results) {
    if (r.publish_failures) doc += "\n" + r.path + ": " + std::to_string(r.publish_failures) + " publishes failed.";
    if (!r.note.empty()) doc += "\n" + r.path + ": " + r.note;
  }
  doc += "\n";
  bench::publish_results("compare", out_dir, doc);
  std::filesystem::remove_all(o.dir);
  const bool complete = std::all_of(results.begin(), results.end(), [](const Result& r) { return r.note.empty() && r.lost == 0; });
  return complete ? 0 : 1;
}
