#include "tidegate/drivers/modbus/modbus_source.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "tidegate/common/clock.h"
#include "tidegate/common/text.h"
#include "tidegate/drivers/ingest_support.h"
#include "tidegate/drivers/modbus/exception_report.h"
#include "tidegate/drivers/modbus/link.h"

namespace tidegate::drivers::modbus {

namespace asio = boost::asio;
using buffer::LogLevel;
using Clock = std::chrono::steady_clock;

class ModbusSource::Impl {
 public:
  Impl(ModbusOptions o, buffer::Buffer& b, buffer::LogFn log) : o_(std::move(o)), buffer_(b), log_(std::move(log)) {
    std::map<std::string, std::shared_ptr<Link>> links;
    for (const auto& d : o_.devices) {
      auto& link = links[Link::key(d.link)];
      if (!link) link = std::make_shared<Link>(io_, d.link);
      devices_.push_back(std::make_unique<Device>(io_, d, o_.maps.at(d.map), link));
    }
    stats_.name = o_.name;
  }

  const std::string& name() const { return o_.name; }

  void start() {
    work_.emplace(asio::make_work_guard(io_));
    for (auto& d : devices_) {
      d->due = Clock::now();
      asio::post(io_, [this, dev = d.get()] { poll(*dev); });
    }
    thread_ = std::thread([this] { io_.run(); });
    std::lock_guard lock(mu_);
    stats_.connected = true;
  }

  void stop() {
    if (!thread_.joinable()) return;
    io_.stop();  // a poll in flight is abandoned; its record was not made
    thread_.join();
    std::lock_guard lock(mu_);
    stats_.connected = false;
  }

  SourceStats stats() const {
    std::lock_guard lock(mu_);
    auto s = stats_;
    auto counter = [&](const char* name, const char* help, double v, bool loss = false,
                       common::Counter::Type type = common::Counter::Type::kCounter) {
      s.counters.push_back({name, help, v, type, loss});
    };
    counter("polls_total", "Polls of all devices.", static_cast<double>(polls_));
    counter("poll_failures_total", "Polls that did not read every point (timeouts, refused connections, exceptions).",
            static_cast<double>(poll_failures_));
    counter("timeouts_total", "Requests a device did not answer in time.", static_cast<double>(timeouts_));
    counter("connect_failures_total", "Connections that could not be made.", static_cast<double>(connect_failures_));
    counter("exceptions_total", "Modbus exception answers (the log names device, function, address and code).",
            static_cast<double>(exceptions_));
    counter("malformed_total", "Answers that were not valid Modbus (wrong length, transaction or unit).",
            static_cast<double>(malformed_));
    counter("bad_points", "Points left out for good: the device answers exception 2 (illegal data address) for them.",
            static_cast<double>(bad_points_), true, common::Counter::Type::kGauge);
    counter("devices_down", "Devices whose last poll failed.", static_cast<double>(devices_down_), true,
            common::Counter::Type::kGauge);
    counter("refused_total", "Poll results the buffer refused (full under reject-new, disk reserve): the next poll "
            "reads again.", static_cast<double>(refused_), true);
    counter("values_held_back_total", "Point values a poll read but did not send: within their deadband.",
            static_cast<double>(held_back_));
    counter("unchanged_polls_total", "Polls that made no record: every value within its deadband.",
            static_cast<double>(unchanged_polls_));
    counter("confirmations_total", "Records that carry every point because a point's max_silence had passed.",
            static_cast<double>(confirmations_));
    // The same per device, labelled with its name.
    for (const auto& d : devices_) {
      const auto& c = d->counters;
      auto of = [&](const char* name, const char* help, double v, bool loss = false,
                    common::Counter::Type type = common::Counter::Type::kCounter,
                    std::vector<std::pair<std::string, std::string>> more = {}) {
        common::Counter k{name, help, v, type, loss, {{"device", d->o.name}}};
        for (auto& m : more) k.labels.push_back(std::move(m));
        s.counters.push_back(std::move(k));
      };
      of("device_polls_total", "Polls of the device.", static_cast<double>(c.polls));
      of("device_poll_failures_total", "Polls of the device that did not read every point.",
         static_cast<double>(c.failures), true);
      of("device_timeouts_total", "Requests the device did not answer in time.", static_cast<double>(c.timeouts));
      for (const auto& [code, n] : c.exceptions)
        of("device_exceptions_total", "Exception answers of the device, by code.", static_cast<double>(n), false,
           common::Counter::Type::kCounter, {{"code", std::to_string(code)}});
      of("device_malformed_total", "Answers of the device that were not valid Modbus (CRC, length, unit).",
         static_cast<double>(c.malformed));
      of("device_reconnects_total", "Connections to the device (its link) made again after the first.",
         static_cast<double>(d->link->reconnects()));
      of("device_last_success_seconds", "Unix time of the device's last poll that read every point (0: never).",
         static_cast<double>(c.last_success_ns) / 1e9, false, common::Counter::Type::kGauge);
      of("device_down", "1 while the device's polls fail.", c.down ? 1 : 0, true, common::Counter::Type::kGauge);
    }
    return s;
  }

 private:
  struct Device {
    Device(asio::io_context& io, DeviceOptions options, const PointMap& m, std::shared_ptr<Link> l)
        : o(std::move(options)),
          map(m),
          link(std::move(l)),
          timer(io),
          alone(m.points.size()),
          bad(m.points.size()),
          report(m.points),
          read(m.points.size()),
          values(m.points.size()),
          raw(m.points.size()) {}
    DeviceOptions o;
    const PointMap& map;
    std::shared_ptr<Link> link;
    asio::steady_timer timer;
    std::vector<bool> alone, bad;
    ExceptionReport report;
    Clock::time_point due;
    int failures = 0;  // polls in a row that failed
    // The poll in progress.
    std::vector<Read> reads;
    std::size_t next = 0;
    std::vector<bool> read;                      // per point: read in this poll
    std::vector<nlohmann::ordered_json> values;  // per point
    std::vector<nlohmann::ordered_json> raw;     // per point: its words (raw = true)
    std::int64_t poll_ns = 0;
    std::string error;
    // Under the source's mu_ (stats() reads them from the status thread).
    struct Counters {
      std::uint64_t polls = 0, failures = 0, timeouts = 0, malformed = 0;
      std::map<int, std::uint64_t> exceptions;  // by code
      std::int64_t last_success_ns = 0;
      bool down = false;
    } counters;
  };

  void log(LogLevel level, const Device& d, const std::string& text) {
    if (log_) {
      log_(level, "modbus source '" + o_.name + "': device '" + d.o.name + "' (" + d.link->describe() + " unit " +
                      std::to_string(d.o.unit_id) + "): " + text);
    }
  }

  static std::string where(const Read& r) {
    return "function " + std::to_string(read_function(r.table)) + " " + to_string(r.table) + " address " +
           std::to_string(r.start) + " count " + std::to_string(r.count);
  }

  void poll(Device& d) {
    d.reads = plan_reads(d.map.points, o_.max_gap, d.alone, d.bad);
    d.next = 0;
    std::fill(d.read.begin(), d.read.end(), false);
    d.poll_ns = common::wall_now_ns();
    d.error.clear();
    {
      std::lock_guard lock(mu_);
      polls_ += 1;
      d.counters.polls += 1;
    }
    issue(d);
  }

  void issue(Device& d) {
    if (d.next == d.reads.size()) {
      finish(d);
      return;
    }
    const Read& r = d.reads[d.next];
    d.link->read(d.o.unit_id, r.table, r.start, r.count, d.o.timeout,
                 [this, &d](const ReadOutcome& o) { answered(d, o); });
  }

  void answered(Device& d, const ReadOutcome& o) {
    const Read r = d.reads[d.next];
    switch (o.kind) {
      case ReadOutcome::Kind::kOk:
        for (const auto i : r.points) {
          const Point& p = d.map.points[i];
          const std::size_t at = p.address - r.start;
          d.read[i] = true;
          if (is_bit_table(r.table)) {
            d.values[i] = decode_bit(p, o.response.bits.at(at));
          } else {
            d.values[i] = decode(p, o.response.registers.data() + at);
            if (o_.raw) {
              auto& words = d.raw[i] = nlohmann::ordered_json::array();
              for (std::uint16_t k = 0; k < width(p); ++k) words.push_back(o.response.registers.at(at + k));
            }
          }
        }
        d.next += 1;
        issue(d);
        return;
      case ReadOutcome::Kind::kException:
        {
          std::lock_guard lock(mu_);
          exceptions_ += 1;
          d.counters.exceptions[o.response.exception] += 1;
        }
        if (o.response.exception == kIllegalDataAddress && r.points.size() > 1) {
          // A merged read crossed an address the device does not have:
          // its points are read one by one from now on.
          for (const auto i : r.points) d.alone[i] = true;
          log(LogLevel::kWarning, d, "merged read (" + where(r) + ") got " + o.error + "; reading its " +
                                      std::to_string(r.points.size()) + " points one by one from now on");
          std::vector<Read> singles = plan_reads(d.map.points, 0, d.alone, not_in(d, r));
          d.reads.erase(d.reads.begin() + static_cast<std::ptrdiff_t>(d.next));
          d.reads.insert(d.reads.begin() + static_cast<std::ptrdiff_t>(d.next), singles.begin(), singles.end());
          issue(d);
          return;
        }
        if (o.response.exception == kIllegalDataAddress) {
          const Point& p = d.map.points[r.points.front()];
          d.bad[r.points.front()] = true;
          log(LogLevel::kError, d, "point '" + p.name + "' (" + where(r) + ") got " + o.error +
                                    ": left out from now on (check its address in the register map)");
          {
            std::lock_guard lock(mu_);
            bad_points_ += 1;
          }
          d.next += 1;
          issue(d);
          return;
        }
        d.error = where(r) + ": " + o.error;
        break;
      case ReadOutcome::Kind::kTimeout:
        count(timeouts_, d.counters.timeouts);
        d.error = where(r) + ": " + o.error;
        break;
      case ReadOutcome::Kind::kConnect:
        count(connect_failures_);
        d.error = o.error;
        break;
      case ReadOutcome::Kind::kIo:
        d.error = o.error;
        break;
      case ReadOutcome::Kind::kMalformed:
        count(malformed_, d.counters.malformed);
        d.error = where(r) + ": " + o.error;
        break;
    }
    finish(d);
  }

  // Marks every point but those of `r` to be skipped (to plan just those).
  static std::vector<bool> not_in(const Device& d, const Read& r) {
    std::vector<bool> skip(d.map.points.size(), true);
    for (const auto i : r.points) skip[i] = false;
    return skip;
  }

  void count(std::uint64_t& counter) {
    std::lock_guard lock(mu_);
    counter += 1;
  }
  void count(std::uint64_t& counter, std::uint64_t& device_counter) {
    std::lock_guard lock(mu_);
    counter += 1;
    device_counter += 1;
  }

  void finish(Device& d) {
    const bool failed = !d.error.empty();
    if (std::find(d.read.begin(), d.read.end(), true) != d.read.end()) commit(d);
    const auto now = Clock::now();
    if (failed) {
      if (d.failures == 0) {
        log(LogLevel::kWarning, d, d.error + "; polling it less often until it answers");
        std::lock_guard lock(mu_);
        devices_down_ += 1;
      }
      d.failures += 1;
      std::lock_guard lock(mu_);
      poll_failures_ += 1;
      d.counters.failures += 1;
      d.counters.down = true;
      stats_.errors_total += 1;
      stats_.last_error = d.o.name + ": " + d.error;
    } else if (d.failures > 0) {
      log(LogLevel::kInfo, d, "answers again after " + std::to_string(d.failures) + " failed poll(s)");
      d.failures = 0;
      std::lock_guard lock(mu_);
      devices_down_ -= 1;
    }
    if (!failed) {
      std::lock_guard lock(mu_);
      d.counters.last_success_ns = d.poll_ns;
      d.counters.down = false;
    }
    if (d.failures > 0) {
      // Backed off on its own: the interval doubled per failure, capped.
      const int shift = std::min(d.failures - 1, 16);
      const auto backoff = std::min(o_.max_backoff, d.o.interval * (1 << shift));
      d.due = now + std::max(backoff, d.o.interval);
    } else {
      d.due += d.o.interval;
      if (d.due < now) d.due = now;  // missed cycles are skipped, not made up
    }
    d.timer.expires_at(d.due);
    d.timer.async_wait([this, &d](const boost::system::error_code& ec) {
      if (!ec) poll(d);
    });
  }

  // One record of the points the poll read, or of those that left their
  // deadband (all of them when a max_silence has passed).
  void commit(Device& d) {
    bool full = false;
    const std::vector<bool> carry = d.report.select(d.read, d.values, d.poll_ns, full);
    std::vector<std::size_t> carried;
    std::uint64_t held = 0;
    for (std::size_t i = 0; i < carry.size(); ++i) {
      if (carry[i]) carried.push_back(i);
      else if (d.read[i]) held += 1;
    }
    {
      std::lock_guard lock(mu_);
      held_back_ += held;
      if (full) confirmations_ += 1;
      if (carried.empty()) unchanged_polls_ += 1;
    }
    if (carried.empty()) return;
    nlohmann::ordered_json doc;
    doc["time"] = common::utc_text(d.poll_ns);
    nlohmann::ordered_json units = nlohmann::ordered_json::object(), tags = nlohmann::ordered_json::object(),
                           raw = nlohmann::ordered_json::object();
    for (const auto i : carried) {
      const Point& p = d.map.points[i];
      doc[p.name] = d.values[i];
      if (!p.unit.empty()) units[p.name] = p.unit;
      if (!p.tags.empty()) tags[p.name] = p.tags;
      if (o_.raw && !d.raw[i].is_null()) raw[p.name] = d.raw[i];
    }
    if (!units.empty()) doc["units"] = std::move(units);
    if (!tags.empty()) doc["tags"] = std::move(tags);
    if (!raw.empty()) doc["raw"] = std::move(raw);
    buffer::NewRecord r;
    r.source = o_.name;
    r.partition_key = d.o.name;
    r.topic = o_.topic;
    common::replace_all(r.topic, "{device}", d.o.name);
    r.payload = doc.dump();
    r.content_type = "application/json";
    r.device_ts_ns = d.poll_ns;
    r.clock_synced = clock_sync_.synchronized();
    const auto bytes = r.payload.size();
    {
      std::lock_guard lock(mu_);
      stats_.received_total += 1;
      stats_.received_bytes_total += bytes;
      stats_.last_message_ns = d.poll_ns;
    }
    buffer_.append({std::move(r)}, [this, &d, carried = std::move(carried)](const buffer::AppendOutcome& out) {
      if (!out.ok()) {
        // Not stored: its points count as never sent, so the next poll
        // carries them again even if they stay within their deadbands.
        asio::post(io_, [&d, carried] { d.report.forget(carried); });
      }
      std::lock_guard lock(mu_);
      if (out.ok()) {
        stats_.committed_total += 1;
      } else {
        refused_ += 1;
        stats_.last_error = std::string("buffer refused a poll result: ") + buffer::to_string(out.status);
      }
    });
  }

  ModbusOptions o_;
  buffer::Buffer& buffer_;
  buffer::LogFn log_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::thread thread_;
  ClockSyncProbe clock_sync_;

  mutable std::mutex mu_;
  SourceStats stats_;
  std::uint64_t polls_ = 0, poll_failures_ = 0, timeouts_ = 0, connect_failures_ = 0, exceptions_ = 0, malformed_ = 0,
                bad_points_ = 0, devices_down_ = 0, refused_ = 0, held_back_ = 0, confirmations_ = 0,
                unchanged_polls_ = 0;
};

ModbusSource::ModbusSource(ModbusOptions options, buffer::Buffer& buffer, buffer::LogFn log)
    : impl_(std::make_unique<Impl>(std::move(options), buffer, std::move(log))) {}
ModbusSource::~ModbusSource() { impl_->stop(); }
const std::string& ModbusSource::name() const { return impl_->name(); }
void ModbusSource::start() { impl_->start(); }
void ModbusSource::stop() { impl_->stop(); }
SourceStats ModbusSource::stats() const { return impl_->stats(); }

}  // namespace tidegate::drivers::modbus
