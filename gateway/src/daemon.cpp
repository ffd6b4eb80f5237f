#include "tidegate/gateway/daemon.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/ingest_support.h"
#include "tidegate/drivers/source.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/gateway/config.h"
#include "tidegate/gateway/logger.h"
#include "tidegate/gateway/version.h"
#include "tidegate/status/collector.h"
#include "tidegate/status/status_service.h"

namespace tidegate::gateway {
namespace {

using buffer::LogLevel;

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
void sd_notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  ::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

std::string mib(std::uint64_t bytes) {
  return std::to_string((bytes + (1 << 19)) >> 20) + " MiB";
}

class Gateway {
 public:
  Gateway(std::filesystem::path config_file, EnvLookup env, LoadResult loaded, Logger& logger)
      : file_(std::move(config_file)),
        env_(std::move(env)),
        config_(std::move(*loaded.config)),
        logger_(logger),
        restart_sections_(std::move(loaded.restart_sections)) {}

  int run() {
    // Signals are taken synchronously by this thread; every thread started
    // below inherits the blocked mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    log(LogLevel::kInfo, std::string("tidegate ") + kVersion + " starting, gateway id '" + config_.gateway_id +
                             "', configuration " + file_.string());
    auto buffer_options = config_.buffer;
    buffer_options.log = logger_.fn("buffer");
    try {
      buffer_ = buffer::Buffer::open(buffer_options);
    } catch (const buffer::BufferError& e) {
      log(LogLevel::kError, std::string("cannot open the buffer: ") + e.what());
      return 1;
    }
    report_open();

    if (!add_forwarders()) return 1;
    warn_about_unconfigured_cursors();
    for (auto& f : forwarders_)
      f->start();

    // In the plugin list's order: subscribers before simulated publishers.
    if (!start_sources()) return 1;
    if (sources_.empty()) log(LogLevel::kWarning, "no sources configured: nothing will be ingested");
    start_status();
    log(LogLevel::kInfo, "running with " + std::to_string(sources_.size()) + " source(s) and " +
                             std::to_string(forwarders_.size()) + " sink(s)");
    sd_notify("READY=1");

    for (;;) {
      timespec period{60, 0};
      const int sig = sigtimedwait(&signals, nullptr, &period);
      if (sig == SIGHUP) {
        reload();
      } else if (sig == SIGTERM || sig == SIGINT) {
        log(LogLevel::kInfo, std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
        break;
      } else {
        report_status();
      }
    }
    sd_notify("STOPPING=1");
    if (status_) status_->stop();
    for (auto& s : sources_)
      s.source->stop();  // each waits for its commits and acknowledgements
    buffer_->flush();
    for (auto& f : forwarders_)
      f->stop();  // each finishes the send in progress
    forwarders_.clear();
    const auto stats = buffer_->stats();
    buffer_.reset();
    log(LogLevel::kInfo, "stopped cleanly; buffer holds " + std::to_string(stats.records) + " records, next sequence " +
                             std::to_string(stats.next_seq));
    return 0;
  }

 private:
  void log(LogLevel level, const std::string& message) { logger_.write(level, "", message); }

  // One forwarder per configured sink; false (logged) if a sink cannot be
  // set up (bad endpoint, unwritable directory).
  bool add_forwarders() {
    const plugins::SinkEnvironment env{config_.gateway_id};
    for (const auto& plan : config_.sinks) {
      try {
        forwarders_.push_back(
            std::make_unique<forward::Forwarder>(*buffer_, plan.create(env), plan.forwarder, logger_.fn(), plan.kind));
      } catch (const std::exception& e) {
        log(LogLevel::kError, plan.kind + " sink '" + plan.name + "': cannot be set up: " + e.what());
        return false;
      }
    }
    return true;
  }

  // Makes and starts every source; false (logged, with the source's name)
  // if one cannot be set up or started: the gateway then stops cleanly.
  bool start_sources() {
    for (const auto& plan : config_.sources) {
      try {
        auto source = plan.create(*buffer_, logger_.fn());
        source->start();
        sources_.push_back({plan.kind, std::move(source)});
      } catch (const std::exception& e) {
        log(LogLevel::kError, plan.kind + " source '" + plan.name + "': cannot be started: " + e.what());
        return false;
      }
    }
    return true;
  }

  forward::Forwarder* forwarder(const std::string& sink) {
    for (auto& f : forwarders_) {
      if (f->sink_name() == sink) return f.get();
    }
    return nullptr;
  }

  // The status thread: figures, page, heartbeat. A status page that cannot
  // listen (port taken) is logged and left out; ingest and forwarding go on.
  void start_status() {
    status::CollectorInputs in;
    in.gateway_id = config_.gateway_id;
    in.version = kVersion;
    in.buffer_stats = [this] { return buffer_->stats(); };
    in.open_report = buffer_->open_report();
    in.sources = [this] {
      std::vector<drivers::SourceStats> out;
      for (const auto& s : sources_) {
        auto st = s.source->stats();
        st.kind = s.kind;
        out.push_back(std::move(st));
      }
      return out;
    };
    in.sinks = [this] {
      std::vector<forward::ForwarderStats> out;
      for (const auto& f : forwarders_)
        out.push_back(f->stats());
      return out;
    };
    in.warnings = [this] {
      std::vector<status::LogEntry> out;
      for (auto& l : logger_.recent_warnings())
        out.push_back({l.t_ns, buffer::to_string(l.level), std::move(l.text)});
      return out;
    };
    in.thresholds = config_.status.thresholds;
    collector_ = std::make_unique<status::StatusCollector>(std::move(in));

    status::StatusControls controls;
    auto hold = [this](const std::string& sink, bool pause) -> std::string {
      auto* f = forwarder(sink);
      if (!f) return "no sink named '" + sink + "'";
      pause ? f->pause() : f->resume();
      return "";
    };
    controls.pause_sink = [hold](const std::string& sink) { return hold(sink, true); };
    controls.resume_sink = [hold](const std::string& sink) { return hold(sink, false); };
    controls.clear_dead_letters = [this]() -> std::string {
      const auto st = buffer_->clear_dead_letters();
      return st == buffer::Status::kOk ? "" : std::string("the buffer refused: ") + buffer::to_string(st);
    };
    // Only a sink the configuration no longer names: a configured sink's
    // cursor would come back at the next start, at the newest record.
    controls.forget_sink = [this](const std::string& sink) -> std::string {
      if (forwarder(sink)) {
        return "sink '" + sink + "' is configured: remove it from the configuration and restart first";
      }
      const auto st = buffer_->remove_sink(sink);
      if (st == buffer::Status::kNotFound) return "no sink named '" + sink + "' in the buffer";
      return st == buffer::Status::kOk ? "" : std::string("the buffer refused: ") + buffer::to_string(st);
    };
    controls.rewind_sink = [this](const std::string& sink, const forward::RewindTarget& target) -> std::string {
      auto* f = forwarder(sink);
      if (!f) return "no sink named '" + sink + "'";
      const auto r = f->rewind(target);
      if (r.status != buffer::Status::kOk) {
        return "the buffer refused: " + (r.error.empty() ? std::string(buffer::to_string(r.status)) : r.error);
      }
      return "";
    };
    controls.acknowledge_losses = [this]() -> std::string {
      const auto st = buffer_->acknowledge_evictions();
      return st == buffer::Status::kOk ? "" : std::string("the buffer refused: ") + buffer::to_string(st);
    };

    status::StatusServiceOptions options;
    options.http_enabled = config_.status.enabled;
    options.http = config_.status.http;
    options.token = config_.status.token;
    options.heartbeat_interval = config_.heartbeat.interval;
    options.emit_heartbeat = [this](const std::string& json) { append_heartbeat(json); };
    try {
      status_ = std::make_unique<status::StatusService>(*collector_, controls, options, logger_.fn("status"));
      if (options.http_enabled) {
        log(LogLevel::kInfo, std::string("status page on ") + (options.http.tls_cert_file.empty() ? "http" : "https") +
                                 "://" + options.http.address + ":" + std::to_string(status_->http_port()) + "/");
      }
    } catch (const std::exception& e) {
      log(LogLevel::kError, std::string(e.what()) + "; running without the status page");
      options.http_enabled = false;
      status_ = std::make_unique<status::StatusService>(*collector_, controls, options, logger_.fn("status"));
    }
    status_->start();
  }

  // The heartbeat goes through the buffer like any reading, so it reaches
  // every sink in order and survives an outage like the data it describes.
  void append_heartbeat(const std::string& json) {
    buffer::NewRecord r;
    r.source = "tidegate";
    r.partition_key = config_.gateway_id;
    r.topic = config_.heartbeat.topic;
    r.content_type = "application/json";
    r.clock_synced = drivers::kernel_clock_synchronized();
    r.payload = json;
    buffer_->append({std::move(r)}, [this](const buffer::AppendOutcome& outcome) {
      if (!outcome.ok()) log(LogLevel::kWarning, "heartbeat not stored: " + outcome.error);
    });
  }

  // A cursor whose sink left the configuration still holds back retention.
  void warn_about_unconfigured_cursors() {
    std::set<std::string> configured;
    for (const auto& plan : config_.sinks)
      configured.insert(plan.name);
    for (const auto& cursor : buffer_->sinks()) {
      if (!configured.count(cursor)) {
        log(LogLevel::kWarning, "the buffer keeps a cursor for sink '" + cursor +
                                    "', which is not configured: records it has not acknowledged are kept for it "
                                    "until the cap evicts them");
      }
    }
  }

  void report_open() {
    const auto& r = buffer_->open_report();
    const auto s = buffer_->stats();
    if (r.recovered) {
      log(LogLevel::kError, "the buffer file was damaged (" + r.problem + "); it was moved to " +
                                r.moved_aside_to.string() + " and " + std::to_string(r.salvaged_records) +
                                " records were salvaged");
    }
    log(LogLevel::kInfo, std::string("buffer ") + config_.buffer.path.string() + (r.created ? " created" : " opened") +
                             ": " + std::to_string(s.records) + " records, " + mib(s.bytes) + " of " +
                             (s.max_bytes ? mib(s.max_bytes) : std::string("no cap")) + ", next sequence " +
                             std::to_string(s.next_seq));
  }

  // The per-minute log line, from the same snapshot the status page shows.
  void report_status() {
    const auto snap = collector_->snapshot();
    const auto& s = snap.buffer;
    std::string line = "status: buffer " + std::to_string(s.records) + " records (" + mib(s.bytes) + "), appended " +
                       std::to_string(s.appended_total);
    if (s.evicted_total) line += ", evicted " + std::to_string(s.evicted_total);
    if (s.dead_letters) line += ", dead letters " + std::to_string(s.dead_letters);
    if (s.disk_reserve_reached) line += ", DISK RESERVE REACHED";
    for (const auto& src : snap.sources) {
      const auto& st = src.stats;
      line += "; " + st.name + (st.connected ? " up" : " DOWN") + " rx " + std::to_string(st.received_total);
    }
    // Every cursor, configured or left behind; the time to drain for those
    // with a forwarder.
    for (const auto& k : s.sinks) {
      line += "; sink " + k.name + " lag " + std::to_string(k.lag_records);
      for (const auto& v : snap.sinks) {
        if (v.stats.sink != k.name || k.lag_records == 0 || !v.drain_eta_s) continue;
        line += " (drained in ~" + std::to_string(static_cast<long long>(*v.drain_eta_s)) + " s)";
      }
    }
    for (const auto& v : snap.sinks) {
      if (v.stats.consecutive_failures > 0) line += "; sink " + v.stats.sink + " FAILING: " + v.stats.last_error;
    }
    log(LogLevel::kInfo, line);
  }

  void reload() {
    log(LogLevel::kInfo, "SIGHUP: re-reading " + file_.string());
    auto loaded = load_config(file_, env_);
    if (!loaded.config) {
      for (const auto& e : loaded.errors)
        log(LogLevel::kError, "reload: " + e.text());
      log(LogLevel::kError, "reload refused; the running configuration stays in force");
      return;
    }
    if (loaded.config->log_level != config_.log_level) {
      logger_.set_level(loaded.config->log_level);
      log(LogLevel::kInfo, std::string("log level is now ") + buffer::to_string(loaded.config->log_level));
    }
    std::vector<std::string> restart;
    for (const char* section : {"buffer", "sources", "sinks"}) {
      const auto before = restart_sections_.find(section);
      const auto after = loaded.restart_sections.find(section);
      const bool in_before = before != restart_sections_.end(), in_after = after != loaded.restart_sections.end();
      if (in_before != in_after || (in_before && before->second != after->second)) {
        restart.push_back("[" + std::string(section) + "]");
      }
    }
    if (loaded.config->gateway_id != config_.gateway_id) restart.push_back("gateway.id");
    if (restart.empty()) {
      log(LogLevel::kInfo, "reload done");
    } else {
      std::string list;
      for (const auto& r : restart)
        list += (list.empty() ? "" : ", ") + r;
      log(LogLevel::kWarning, "changed settings that need a restart to apply: " + list +
                                  " (systemctl restart tidegate); they are not in force yet");
    }
    config_.log_level = loaded.config->log_level;
  }

  std::filesystem::path file_;
  EnvLookup env_;
  GatewayConfig config_;
  Logger& logger_;
  std::map<std::string, std::string> restart_sections_;  // as the running configuration had them
  std::unique_ptr<buffer::Buffer> buffer_;
  struct RunningSource {
    std::string kind;
    std::unique_ptr<drivers::Source> source;
  };
  std::vector<RunningSource> sources_;
  std::vector<std::unique_ptr<forward::Forwarder>> forwarders_;
  std::unique_ptr<status::StatusCollector> collector_;
  std::unique_ptr<status::StatusService> status_;
};

}  // namespace

int run_daemon(const std::filesystem::path& config_file, std::ostream& log_stream, EnvLookup env) {
  auto loaded = load_config(config_file, env);
  Logger logger(log_stream, loaded.config ? loaded.config->log_level : LogLevel::kInfo);
  if (!loaded.config) {
    for (const auto& e : loaded.errors)
      logger.write(LogLevel::kError, "config", e.text());
    logger.write(LogLevel::kError, "config", "not starting: fix the configuration (tidegate check-config)");
    return 2;
  }
  Gateway gateway(config_file, std::move(env), std::move(loaded), logger);
  return gateway.run();
}

}  // namespace tidegate::gateway
