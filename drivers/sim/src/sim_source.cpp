#include "tidegate/drivers/sim/sim_source.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mqtt/async_client.h>
#include <mutex>
#include <thread>

#include "tidegate/drivers/error_boundary.h"
#include "tidegate/drivers/ingest_support.h"

namespace tidegate::drivers::sim {
namespace {

std::string rfc3339(std::int64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((ns / 1'000'000) % 1000));
  return buf;
}

std::string number(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

ReadingGenerator::ReadingGenerator(const SimOptions& options)
    : opts_(options), state_(options.devices), rng_(0x9E3779B97F4A7C15ull ^ options.seed) {
  for (std::uint32_t d = 0; d < opts_.devices; ++d) {
    const auto& kind = opts_.kinds[d % opts_.kinds.size()];
    auto& s = state_[d];
    if (kind == "temperature") s.value = 19.0 + 4.0 * uniform();
    if (kind == "humidity") s.value = 35.0 + 20.0 * uniform();
    if (kind == "co2") s.value = 420.0 + 200.0 * uniform();
    if (kind == "power") s.value = 200.0 + 800.0 * uniform();
  }
}

// xorshift64*: small, fast, deterministic across platforms.
double ReadingGenerator::uniform() {
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return static_cast<double>((rng_ * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

ReadingGenerator::Reading ReadingGenerator::next(std::uint32_t device, std::int64_t now_ns) {
  char id[16];
  std::snprintf(id, sizeof id, "%03u", device);
  Reading r;
  r.device = opts_.device_prefix + id;
  r.kind = opts_.kinds[device % opts_.kinds.size()];
  r.topic = opts_.topic_prefix + "/" + r.device + "/" + r.kind;
  auto& s = state_[device];
  const double hour = std::fmod(static_cast<double>(now_ns) / 3.6e12, 24.0);
  const double occupied = (hour > 8 && hour < 18) ? 1.0 : 0.0;  // office hours, UTC
  std::string value;
  std::string unit;
  if (r.kind == "temperature") {
    s.value += 0.2 * (uniform() - 0.5) + 0.01 * (21.5 - s.value);  // drifts around the setpoint
    value = number(s.value, 2);
    unit = "C";
  } else if (r.kind == "humidity") {
    s.value = std::clamp(s.value + (uniform() - 0.5), 20.0, 80.0);
    value = number(s.value, 1);
    unit = "%RH";
  } else if (r.kind == "co2") {
    const double target = 450.0 + 650.0 * occupied;  // people breathe
    s.value += 0.05 * (target - s.value) + 10.0 * (uniform() - 0.5);
    value = number(s.value, 0);
    unit = "ppm";
  } else {  // power meter: instantaneous power and a cumulative energy register
    s.value = std::clamp(s.value + 40.0 * (uniform() - 0.5) + 5.0 * occupied, 50.0, 5000.0);
    s.energy_kwh += s.value / 3.6e6;  // W over ~1 s, in kWh
    r.payload = "{\"device\":\"" + r.device + "\",\"kind\":\"power\",\"value\":" + number(s.value, 1) +
                ",\"unit\":\"W\",\"energy_kwh\":" + number(s.energy_kwh, 4) + ",\"ts\":\"" + rfc3339(now_ns) + "\"}";
    return r;
  }
  r.payload = "{\"device\":\"" + r.device + "\",\"kind\":\"" + r.kind + "\",\"value\":" + value + ",\"unit\":\"" +
              unit + "\",\"ts\":\"" + rfc3339(now_ns) + "\"}";
  return r;
}

class SimSource::Impl {
 public:
  Impl(SimOptions options, buffer::Buffer& buffer, buffer::LogFn log)
      : opts_(std::move(options)), buffer_(buffer), log_(std::move(log)), generator_(opts_) {}

  ~Impl() { stop(); }

  void start() {
    if (thread_.joinable()) return;
    if (opts_.mode == SimMode::kMqtt) {
      const std::string uri = "tcp://" + opts_.mqtt_host + ":" + std::to_string(opts_.mqtt_port);
      client_ = std::make_unique<mqtt::async_client>(uri, "tidegate-" + opts_.name, 10000, nullptr);
      auto conn = mqtt::connect_options_builder().clean_session(true).automatic_reconnect(true).finalize();
      try {
        client_->connect(conn);  // completes in the background; publishes wait in Paho's buffer
      } catch (const mqtt::exception& e) {
        note_error(std::string("connect: ") + e.what());
      }
    }
    stop_ = false;
    thread_ = std::thread([this] {
      drivers::run_guarded([this] { run(); },
                           [this](const std::string& what) { note_error("internal error (" + what + "); going on"); },
                           [this] {
                             std::lock_guard lock(mu_);
                             return stop_;
                           },
                           std::chrono::seconds(1));
    });
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (!thread_.joinable()) return;
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (client_) {
      try {
        if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
      } catch (const mqtt::exception& e) {
        note_error(std::string("disconnect: ") + e.what());
      }
      client_.reset();
    }
    buffer_.flush();
  }

  void pause() { paused_ = true; }
  void resume() { paused_ = false; }

  SourceStats stats() const {
    SourceStats s;
    s.name = opts_.name;
    s.connected = opts_.mode == SimMode::kBuffer || (client_ && client_->is_connected());
    s.received_total = generated_.load();
    s.received_bytes_total = generated_bytes_.load();
    s.committed_total = committed_.load();
    s.errors_total = errors_.load();
    s.last_message_ns = last_ns_.load();
    std::lock_guard lock(error_mu_);
    s.last_error = last_error_;
    return s;
  }

  const std::string& name() const { return opts_.name; }

 private:
  void note_error(const std::string& message) {
    errors_ += 1;
    std::lock_guard lock(error_mu_);
    if (last_error_ != message && log_) log_(buffer::LogLevel::kWarning, "sim source '" + opts_.name + "': " + message);
    last_error_ = message;
  }

  // Every device reports at its rate; the phases are spread so the load is
  // even rather than in bursts.
  void run() {
    const double total_rate = opts_.readings_per_device_per_s * opts_.devices;
    if (total_rate <= 0 || opts_.devices == 0) return;
    const auto interval = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / total_rate));
    auto next = std::chrono::steady_clock::now();
    std::uint32_t device = 0;
    std::unique_lock lock(mu_);
    while (!stop_) {
      // Emit everything due, in one append call.
      std::vector<buffer::NewRecord> batch;
      const auto now = std::chrono::steady_clock::now();
      while (next <= now && batch.size() < 10000) {
        if (!paused_) {
          const auto ns = wall_now_ns();
          auto reading = generator_.next(device, ns);
          generated_ += 1;
          generated_bytes_ += reading.payload.size();
          last_ns_ = ns;
          emit(std::move(reading), ns, batch);
        }
        device = (device + 1) % opts_.devices;
        next += interval;
      }
      if (!batch.empty()) {
        const auto n = batch.size();
        buffer_.append(std::move(batch), [this, n](const buffer::AppendOutcome& out) {
          if (out.ok()) {
            committed_ += n;
          } else {
            note_error(std::string("buffer refused readings: ") + buffer::to_string(out.status));
          }
        });
      }
      cv_.wait_until(lock, next, [&] { return stop_; });
    }
  }

  void emit(ReadingGenerator::Reading reading, std::int64_t ns, std::vector<buffer::NewRecord>& batch) {
    if (opts_.mode == SimMode::kMqtt) {
      try {
        auto msg = mqtt::make_message(reading.topic, reading.payload, opts_.mqtt_qos, false);
        client_->publish(msg);
        committed_ += 1;  // handed to the client; the broker's PUBACK completes it
      } catch (const mqtt::exception& e) {
        note_error(std::string("publish: ") + e.what());
      }
      return;
    }
    buffer::NewRecord r;
    r.ingest_ns = ns;
    r.clock_synced = clock_sync_.synchronized();
    r.source = opts_.name;
    r.partition_key = reading.device;
    r.topic = std::move(reading.topic);
    r.payload = std::move(reading.payload);
    r.content_type = "application/json";
    r.device_ts_ns = ns;
    batch.push_back(std::move(r));
  }

  SimOptions opts_;
  buffer::Buffer& buffer_;
  buffer::LogFn log_;
  ReadingGenerator generator_;
  ClockSyncProbe clock_sync_;
  std::unique_ptr<mqtt::async_client> client_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> paused_{false};
  std::atomic<std::uint64_t> generated_{0}, generated_bytes_{0}, committed_{0}, errors_{0};
  std::atomic<std::int64_t> last_ns_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;
};

SimSource::SimSource(SimOptions options, buffer::Buffer& buffer, buffer::LogFn log)
    : impl_(std::make_unique<Impl>(std::move(options), buffer, std::move(log))) {}
SimSource::~SimSource() = default;
const std::string& SimSource::name() const { return impl_->name(); }
void SimSource::start() { impl_->start(); }
void SimSource::stop() { impl_->stop(); }
void SimSource::pause() { impl_->pause(); }
void SimSource::resume() { impl_->resume(); }
SourceStats SimSource::stats() const { return impl_->stats(); }

}  // namespace tidegate::drivers::sim
