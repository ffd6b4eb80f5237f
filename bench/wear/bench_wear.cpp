// bench/wear: bytes the gateway writes to its disk per reading, the figure
// that wears out an SD card.
//
// The real tidegate binary runs with a [[sources.mqtt_listener]] (sensors
// publish to it, QoS 1, 100-byte JSON readings from 50 devices) and a
// [[sinks.mqtt]] to a real upstream mosquitto. A paced publisher offers R
// readings/s; after a warm-up the gateway's /proc/PID/io write_bytes (minus
// cancelled_write_bytes) is read at the start and end of the measured span.
// The kernel counts a page when it becomes dirty, so a page rewritten while
// still dirty counts once, as the card would see it; ext4's own journal
// (jbd2) is not in the figure.
//
// Each rate runs with the uplink up (a subscriber on the upstream also
// measures publish-to-upstream latency) and down (the sink has nowhere to
// connect: the buffer fills). An idle run (no readings, heartbeat and status
// page on) gives bytes per hour. Each setting (a [buffer] block, and keys of
// the sink for linger-0) runs the whole matrix.
//
//   bench_wear [--quick] [--out DIR] [--tidegate PATH] [--seconds N]
//              [--rates 1,10,100] [--settings default,low-wear] [--dir DIR]
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
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

// A setting is the [buffer] block the gateway runs with (beside its path),
// and for some keys of its sink.
struct Setting {
  std::string name;
  std::string buffer_toml;
  std::string what;
  std::string sink_toml = {};  // keys of [[sinks.mqtt]]
};

const std::vector<Setting>& all_settings() {
  static const std::vector<Setting> settings = {
      {"default", "", "the defaults: crash-safe, commit_window 10ms, sync_interval 1s, maintenance_interval 10s, page_size 1024 (new files)"},
      {"low-wear",
       "commit_window = \"5s\"\ncommit_max_bytes = \"16KiB\"\nsync_interval = \"30s\"\nmaintenance_interval = \"60s\"\n",
       "commit_window 5s closed early by commit_max_bytes 16KiB, sync_interval 30s, maintenance_interval 60s: an "
       "acknowledgement waits up to 5 s at low rates, a power cut may lose the last 30 s, a crash re-sends up to 10 "
       "minutes of deliveries; kill -9 loses nothing"},
      {"page-4096", "page_size = 4096\n", "the defaults with SQLite's usual 4 KiB pages (the previous default)"},
      {"power-safe", "durability = \"power-safe\"\n", "fsync before every acknowledgement (survives a power cut)"},
      {"linger-0", "", "the defaults, with the sink's linger 0 (a batch leaves as soon as the previous one is acknowledged)",
       "linger = \"0s\"\n"},
  };
  return settings;
}

// Publishes QoS 1 readings at a steady rate from one connection, round robin
// over kDevices topics, until stopped.
class Publisher {
 public:
  Publisher(std::uint16_t port, double rate) : rate_(rate), client_("tcp://127.0.0.1:" + std::to_string(port), "bench-wear") {
    client_.connect(::mqtt::connect_options_builder().clean_session(true).max_inflight(65535).finalize())->wait();
    if (rate_ > 0) thread_ = std::thread([this] { run(); });
  }
  ~Publisher() { stop(); }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (client_.is_connected()) {
      try {
        client_.disconnect()->wait_for(std::chrono::seconds(5));
      } catch (const std::exception&) {
      }
    }
  }
  std::uint64_t published() const { return published_; }
  std::uint64_t acknowledged() const { return acknowledged_; }
  std::uint64_t failed() const { return failed_; }

 private:
  void run() {
    const auto start = Steady::now();
    std::uint64_t i = 0;
    while (!stopping_) {
      const auto due = start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(i) * 1e9 / rate_));
      if (Steady::now() < due) {
        std::this_thread::sleep_until(std::min(due, Steady::now() + std::chrono::milliseconds(50)));
        continue;
      }
      const auto topic = "sensors/dev-" + std::to_string(i % kDevices) + "/temp";
      try {
        // The listener goes in with the publish: set afterwards, an early
        // acknowledgement would find none and go uncounted.
        client_.publish(::mqtt::make_message(topic, bench::timed_reading(i, steady_ns(), kReadingBytes), 1, false), nullptr, callbacks_);
        published_ += 1;
      } catch (const ::mqtt::exception&) {
        failed_ += 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      ++i;
    }
  }

  struct Callbacks : ::mqtt::iaction_listener {
    explicit Callbacks(Publisher& owner) : publisher(owner) {}
    void on_success(const ::mqtt::token&) override { publisher.acknowledged_ += 1; }
    void on_failure(const ::mqtt::token&) override {
      if (!publisher.stopping_) publisher.failed_ += 1;  // in flight at the disconnect: not a failure
    }
    Publisher& publisher;
  };

  double rate_;
  ::mqtt::async_client client_;
  Callbacks callbacks_{*this};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> published_{0}, acknowledged_{0}, failed_{0};
  std::thread thread_;
};

// Subscribes to what the gateway forwards upstream and records each
// reading's publish-to-arrival latency.
class Subscriber {
 public:
  explicit Subscriber(std::uint16_t port) : client_("tcp://127.0.0.1:" + std::to_string(port), "bench-wear-sub") {
    client_.set_message_callback([this](::mqtt::const_message_ptr m) {
      const auto now = steady_ns();
      const std::string& p = m->get_payload_str();
      const auto at = p.find("\"t\":");
      if (at == std::string::npos) return;
      const auto sent = std::strtoll(p.c_str() + at + 4, nullptr, 10);
      std::lock_guard lock(mu_);
      latencies_ns_.push_back(now - sent);
    });
    client_.connect(::mqtt::connect_options_builder().clean_session(true).finalize())->wait();
    client_.subscribe("bench/#", 1)->wait();
  }
  ~Subscriber() {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
  }
  std::size_t received() {
    std::lock_guard lock(mu_);
    return latencies_ns_.size();
  }
  // Latency percentile, ms, over the readings received so far.
  double percentile_ms(double q) {
    std::lock_guard lock(mu_);
    return bench::percentile_ms(latencies_ns_, q);
  }

 private:
  ::mqtt::async_client client_;
  std::mutex mu_;
  std::vector<std::int64_t> latencies_ns_;
};

struct Row {
  std::string setting;
  double rate = 0;  // 0 = idle
  bool uplink = true;
  double seconds = 0;
  std::uint64_t readings = 0;  // acknowledged by the gateway in the measured span
  std::uint64_t bytes = 0;
  double p50_ms = 0, p99_ms = 0;
  std::string note;
};

struct Run {
  std::string binary;
  std::filesystem::path dir;
  std::chrono::seconds span{60};
  std::chrono::seconds idle_span{120};
};

std::unique_ptr<testing::Process> start_gateway(const Run& run, const Setting& s, std::uint16_t listen_port,
                                                std::uint16_t upstream_port, bool idle) {
  const auto gw = run.dir / "gw";
  std::filesystem::remove_all(gw);
  std::filesystem::create_directories(gw);
  const auto config = gw / "tidegate.toml";
  std::ofstream(config) << "[gateway]\nid = \"wear\"\nlog_level = \"info\"\n"
                        << "[status]\nlisten = \"127.0.0.1:" << testing::free_loopback_port() << "\"\n"
                        << (idle ? "" : "[heartbeat]\ninterval = \"0s\"\n")  // idle: the default heartbeat
                        << "[buffer]\npath = \"" << (gw / "buffer.db").string() << "\"\n"
                        << "max_bytes = \"1GiB\"\ndisk_reserve = 0\n"
                        << s.buffer_toml << "[[sources.mqtt_listener]]\nlisten = \"127.0.0.1:" << listen_port << "\"\n"
                        << "key_from_topic = \"sensors/{device}/#\"\n"
                        << "[[sinks.mqtt]]\nname = \"upstream\"\nurl = \"mqtt://127.0.0.1:" << upstream_port << "\"\n"
                        << "topic = \"bench/{topic}\"\npayload = \"raw\"\nretry_max = \"1s\"\n" << s.sink_toml;
  // Its log goes to RAM (/dev/shm), as a gateway's goes to journald: the log
  // lines are the logging system's writes, not the gateway's.
  const auto log = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm/tidegate-wear-gateway.log")
                                                       : gw / "gateway.log";
  std::filesystem::remove(log);
  auto p = std::make_unique<testing::Process>(std::vector<std::string>{run.binary, "run", "--config", config.string()},
                                              log);
  for (int i = 0; i < 1000 && !testing::port_accepts(listen_port); ++i) {
    if (!p->running()) throw std::runtime_error("the gateway exited at start; see " + log.string());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p;
}

Row measure(const Run& run, const Setting& s, double rate, bool uplink) {
  Row row;
  row.setting = s.name;
  row.rate = rate;
  row.uplink = uplink;
  const bool idle = rate == 0;
  std::unique_ptr<testing::Mosquitto> upstream;
  std::uint16_t upstream_port = testing::free_loopback_port();  // nothing listens there when the uplink is down
  if (uplink) {
    std::filesystem::remove_all(run.dir / "upstream");
    upstream = std::make_unique<testing::Mosquitto>(run.dir / "upstream");
    upstream_port = upstream->port();
  }
  std::unique_ptr<Subscriber> sub;
  if (uplink) sub = std::make_unique<Subscriber>(upstream_port);
  const auto listen_port = testing::free_loopback_port();
  auto gw = start_gateway(run, s, listen_port, upstream_port, idle);
  Publisher pub(listen_port, rate);

  // Warm-up: connections made, the first commits and checkpoints behind us.
  std::this_thread::sleep_for(std::chrono::seconds(idle ? 5 : 3));
  const auto span = idle ? run.idle_span : run.span;
  const auto written0 = bench::written_bytes(gw->pid());
  const auto acked0 = pub.acknowledged();
  const auto t0 = Steady::now();
  std::this_thread::sleep_for(span);
  const auto written1 = bench::written_bytes(gw->pid());
  const auto acked1 = pub.acknowledged();
  row.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  row.readings = acked1 - acked0;
  row.bytes = written1 - std::min(written1, written0);
  pub.stop();
  if (pub.failed() > 0) row.note += std::to_string(pub.failed()) + " publishes failed; ";
  if (!idle && static_cast<double>(row.readings) < 0.9 * rate * row.seconds) {
    row.note += "only " + std::to_string(row.readings) + " readings acknowledged; ";
  }
  if (sub) {
    const auto published = pub.published();
    testing::wait_for([&] { return sub->received() >= published; }, std::chrono::seconds(20));
    if (sub->received() < published) {
      row.note += std::to_string(published - sub->received()) + " of " + std::to_string(published) +
                  " not upstream after 20 s; ";
    }
    row.p50_ms = sub->percentile_ms(0.50);
    row.p99_ms = sub->percentile_ms(0.99);
  }
  if (!gw->running()) row.note += "the gateway exited; ";
  gw->signal_and_wait(SIGTERM);
  return row;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

std::vector<double> parse_rates(const std::string& s) {
  std::vector<double> out;
  for (const auto& item : split(s)) out.push_back(std::stod(item));
  return out;
}

std::string human_bytes(double b) {
  if (b >= 1e9) return fmt(b / 1e9, 1) + " GB";
  if (b >= 1e6) return fmt(b / 1e6, 1) + " MB";
  if (b >= 1e3) return fmt(b / 1e3, 1) + " kB";
  return fmt(b, 0) + " B";
}

// gnuplot (Debian's gnuplot-nox) draws bytes per reading against the rate,
// one line per setting and uplink state.
void plot(const std::vector<Row>& rows, const std::filesystem::path& png) {
  const auto data = png.parent_path() / (png.stem().string() + ".dat");
  const auto script = png.parent_path() / (png.stem().string() + ".gp");
  // One data block per setting and uplink state, in the order first seen.
  std::vector<std::pair<std::string, std::string>> series;
  for (const auto& r : rows) {
    if (r.rate == 0 || r.readings == 0) continue;
    const auto name = r.setting + (r.uplink ? ", uplink up" : ", uplink down");
    auto it = std::find_if(series.begin(), series.end(), [&](const auto& s) { return s.first == name; });
    if (it == series.end()) it = series.insert(series.end(), {name, ""});
    it->second += fmt(r.rate) + " " + fmt(static_cast<double>(r.bytes) / static_cast<double>(r.readings) / kReadingBytes, 2) + "\n";
  }
  {
    std::ofstream d(data);
    for (const auto& [name, points] : series) d << points << "\n\n";
  }
  std::ofstream g(script);
  g << "set terminal pngcairo size 900,560\nset output '" << png.string() << "'\n"
    << "set logscale xy\nset grid\nset key top right\n"
    << "set title 'tidegate: disk bytes written per 100-byte reading'\n"
    << "set xlabel 'readings per second'\nset ylabel 'bytes written / bytes received'\n"
    << "plot ";
  for (std::size_t i = 0; i < series.size(); ++i) {
    g << (i ? ", " : "") << "'" << data.string() << "' index " << i << " with linespoints title '" << series[i].first << "'";
  }
  g << ", 10 with lines dashtype 2 title 'target 10x', 3 with lines dashtype 3 title 'target 3x'\n";
  g.close();
  if (std::system(("gnuplot '" + script.string() + "' 2>/dev/null").c_str()) != 0) {
    std::cerr << "gnuplot failed or is missing (apt-get install gnuplot-nox); data in " << data << "\n";
  }
  std::filesystem::remove(data);
  std::filesystem::remove(script);
}

}  // namespace

int main(int argc, char** argv) {
  Run run;
  run.binary = TIDEGATE_BINARY;
  std::string out_dir;
  std::string rates_arg = "1,10,100,1000,10000";
  std::string settings_arg = "default,low-wear,page-4096";
  std::filesystem::path dir_arg;
  bool idle = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") {
      run.span = std::chrono::seconds(15);
      run.idle_span = std::chrono::seconds(60);
      rates_arg = "10,1000";
    } else if (a == "--out") {
      out_dir = next();
    } else if (a == "--tidegate") {
      run.binary = next();
    } else if (a == "--seconds") {
      run.span = std::chrono::seconds(std::stoi(next()));
    } else if (a == "--rates") {
      rates_arg = next();
    } else if (a == "--settings") {
      settings_arg = next();
    } else if (a == "--dir") {
      dir_arg = next();
    } else if (a == "--no-idle") {
      idle = false;
    } else {
      std::cerr << "usage: bench_wear [--quick] [--out DIR] [--tidegate PATH] [--seconds N] [--rates 1,10,...]\n"
                   "                  [--settings default,low-wear,page-4096,power-safe,linger-0] [--no-idle] [--dir DIR]\n";
      return 2;
    }
  }
  std::string arguments;  // for the results file: the run can be repeated as it was
  for (int i = 1; i < argc; ++i) arguments += std::string(" ") + argv[i];
  std::vector<Setting> settings;
  for (const auto& name : split(settings_arg)) {
    const auto& all = all_settings();
    const auto it = std::find_if(all.begin(), all.end(), [&](const Setting& s) { return s.name == name; });
    if (it == all.end()) {
      std::cerr << "unknown setting " << name << "\n";
      return 2;
    }
    settings.push_back(*it);
  }

  testing::TempDir temp;
  run.dir = dir_arg.empty() ? temp.path() : dir_arg;
  std::filesystem::create_directories(run.dir);
  struct statfs fs {};
  if (::statfs(run.dir.c_str(), &fs) == 0 && fs.f_type == 0x01021994 /* TMPFS_MAGIC */) {
    std::cerr << run.dir << " is on tmpfs, which writes nothing to a disk: pass --dir on a real filesystem\n";
    return 2;
  }
  const auto filesystem = bench::shell("df -T '" + run.dir.string() + "' | awk 'NR==2 {print $2}'");

  std::vector<Row> rows;
  for (const auto& s : settings) {
    for (const double rate : parse_rates(rates_arg)) {
      for (const bool uplink : {true, false}) {
        std::cerr << s.name << ", " << rate << "/s, uplink " << (uplink ? "up" : "down") << "...\n";
        rows.push_back(measure(run, s, rate, uplink));
      }
    }
    if (idle) {
      std::cerr << s.name << ", idle...\n";
      rows.push_back(measure(run, s, 0, true));
    }
  }

  std::ostringstream doc;
  doc << "# bench/wear: disk bytes written per reading\n\n"
      << "- date: " << bench::today_utc() << "\n"
      << bench::machine_lines() << "- filesystem of the buffer: " << filesystem << "\n"
      << "- command: `build/bench/wear/bench_wear" << arguments << "` (" << run.span.count() << " s per row, "
      << run.idle_span.count() << " s idle)\n"
      << "- load: QoS 1 readings of " << kReadingBytes << " bytes from " << kDevices
      << " devices over one MQTT connection to `[[sources.mqtt_listener]]`; `[[sinks.mqtt]]` to a real mosquitto "
         "(uplink up) or to a port nobody listens on (uplink down, the buffer fills)\n"
      << "- bytes: the gateway's `/proc/PID/io` write_bytes minus cancelled_write_bytes over the span (pages "
         "counted when they become dirty; ext4's journal not included; the gateway's log goes to /dev/shm, as it "
         "would go to journald); latency: publish to arrival upstream\n\n";
  for (const auto& s : settings) doc << "- **" << s.name << "**: " << s.what << "\n";
  doc << "\n| setting | readings/s | uplink | readings | bytes written | per reading | x reading | per day | p50 ms | p99 ms | note |\n"
      << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    const double per_day = static_cast<double>(r.bytes) / r.seconds * 86400;
    if (r.rate == 0) {
      doc << "| " << r.setting << " | idle | up | 0 | " << human_bytes(static_cast<double>(r.bytes)) << " | | | "
          << human_bytes(per_day) << " (" << human_bytes(per_day / 24) << " an hour) | | | " << r.note << " |\n";
      continue;
    }
    const double per = r.readings ? static_cast<double>(r.bytes) / static_cast<double>(r.readings) : 0;
    doc << "| " << r.setting << " | " << fmt(r.rate) << " | " << (r.uplink ? "up" : "down") << " | " << r.readings
        << " | " << human_bytes(static_cast<double>(r.bytes)) << " | " << fmt(per) << " | " << fmt(per / kReadingBytes, 1)
        << " | " << human_bytes(per_day) << " | " << (r.uplink ? fmt(r.p50_ms, 1) : "") << " | "
        << (r.uplink ? fmt(r.p99_ms, 1) : "") << " | " << r.note << " |\n";
  }
  bench::publish_results("wear", out_dir, doc.str());
  if (!out_dir.empty()) {
    utsname u{};
    ::uname(&u);
    plot(rows, std::filesystem::absolute(out_dir) / ("wear-" + bench::today_utc() + "-" + u.nodename + ".png"));
  }
  return 0;
}
