#include "tidegate/gateway/daemon.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/common/text.h"
#include "tidegate/drivers/ingest_support.h"
#include "tidegate/drivers/source.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/gateway/config.h"
#include "tidegate/gateway/logger.h"
#include "tidegate/gateway/version.h"
#include "tidegate/status/collector.h"
#include "tidegate/status/status_service.h"
#include "tidegate/streams/derived_stream.h"

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

class Gateway {
 public:
  Gateway(std::filesystem::path config_file, EnvLookup env, LoadResult loaded, Logger& logger)
      : file_(std::move(config_file)),
        env_(std::move(env)),
        config_(std::move(*loaded.config)),
        logger_(logger),
        section_text_(std::move(loaded.section_text)) {}

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
    {
      std::lock_guard lock(parts_mu_);
      forwarders_.clear();
    }
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
    for (const auto& plan : config_.sinks) {
      auto f = make_forwarder(config_, plan);
      if (!f) return false;
      std::lock_guard lock(parts_mu_);
      forwarders_.push_back(std::move(f));
    }
    return true;
  }

  // `config` holds the plan and the processors it names.
  std::shared_ptr<forward::Forwarder> make_forwarder(const GatewayConfig& config, const plugins::SinkPlan& plan) {
    const plugins::SinkEnvironment env{config_.gateway_id};
    try {
      return std::make_shared<forward::Forwarder>(*buffer_, plan.create(env), plan.forwarder, logger_.fn(), plan.kind,
                                                  make_chain(config, plan));
    } catch (const std::exception& e) {
      log(LogLevel::kError, plan.kind + " sink '" + plan.name + "': cannot be set up: " + e.what());
      return nullptr;
    }
  }

  // Makes and starts every source; false (logged, with the source's name)
  // if one cannot be set up or started: the gateway then stops cleanly.
  bool start_sources() {
    for (const auto& plan : config_.sources) {
      try {
        auto source = plan.create(*buffer_, logger_.fn());
        source->start();
        std::lock_guard lock(parts_mu_);
        sources_.push_back({plan.kind, plan.name, std::move(source)});
      } catch (const std::exception& e) {
        log(LogLevel::kError, plan.kind + " source '" + plan.name + "': cannot be started: " + e.what());
        return false;
      }
    }
    return true;
  }

  // Any thread (the status API's): a reload may remove the sink meanwhile,
  // the shared pointer keeps this one alive until the caller is done.
  std::shared_ptr<forward::Forwarder> forwarder(const std::string& sink) {
    std::lock_guard lock(parts_mu_);
    for (auto& f : forwarders_) {
      if (f->sink_name() == sink) return f;
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
      std::lock_guard lock(parts_mu_);
      for (const auto& s : sources_) {
        auto st = s.source->stats();
        st.kind = s.kind;
        out.push_back(std::move(st));
      }
      return out;
    };
    in.sinks = [this] {
      std::vector<forward::ForwarderStats> out;
      std::lock_guard lock(parts_mu_);
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
      auto f = forwarder(sink);
      if (!f) return "no sink named '" + sink + "'";
      pause ? f->pause() : f->resume();
      return "";
    };
    controls.pause_sink = [hold](const std::string& sink) { return hold(sink, true); };
    controls.resume_sink = [hold](const std::string& sink) { return hold(sink, false); };
    controls.clear_dead_letters = [this](const buffer::DeadLetterSelection& which) -> std::string {
      const auto r = buffer_->clear_dead_letters(which);
      return r.status == buffer::Status::kOk ? "" : r.error;
    };
    controls.replay_dead_letters = [this](const buffer::DeadLetterSelection& which,
                                          const std::string& to_sink) -> std::string {
      if (!to_sink.empty() && !forwarder(to_sink)) return "no sink named '" + to_sink + "'";
      const auto r = buffer_->replay_dead_letters(which, to_sink);
      return r.status == buffer::Status::kOk ? "" : r.error;
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
      auto f = forwarder(sink);
      const auto r = f ? f->rewind(target) : rewind_stream(sink, target);
      if (r.status == buffer::Status::kNotFound && !f) return r.error;
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

  // A window or deadband processor recomputes its output from the retained
  // input (the status API's thread; the stream serves it on its own).
  buffer::RewindResult rewind_stream(const std::string& name, const forward::RewindTarget& target) {
    std::lock_guard lock(parts_mu_);
    for (auto& s : sources_) {
      auto* stream = dynamic_cast<streams::DerivedStream*>(s.source.get());
      if (s.name != name || !stream) continue;
      switch (target.kind) {
        case forward::RewindTarget::Kind::kSeq: return stream->rewind_to_seq(target.seq);
        case forward::RewindTarget::Kind::kTime: return stream->rewind_to_time(target.ingest_ns);
        case forward::RewindTarget::Kind::kEarliest: return stream->rewind_to_seq(0);
      }
    }
    return {buffer::Status::kNotFound, 0, false, "no sink, window or deadband named '" + name + "'"};
  }

  // A cursor whose sink left the configuration still holds back retention.
  void warn_about_unconfigured_cursors() {
    std::set<std::string> configured;
    for (const auto& plan : config_.sinks)
      configured.insert(plan.name);
    for (const auto& plan : config_.processors) {
      if (plan.create_stream) configured.insert(streams::DerivedStream::cursor_name(plan.name));
    }
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
                             ": " + std::to_string(s.records) + " records, " + common::mib_text(s.bytes) + " of " +
                             (s.max_bytes ? common::mib_text(s.max_bytes) : std::string("no cap")) + ", next sequence " +
                             std::to_string(s.next_seq));
  }

  // The per-minute log line, from the same snapshot the status page shows.
  void report_status() {
    const auto snap = collector_->snapshot();
    const auto& s = snap.buffer;
    std::string line = "status: buffer " + std::to_string(s.records) + " records (" + common::mib_text(s.bytes) + "), appended " +
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

  // SIGHUP: the new file is read and checked as a whole first (an invalid
  // one changes nothing). Then sinks and sources that were added start,
  // removed ones stop (a removed sink's cursor stays, so adding it back
  // resumes it), changed ones restart; the status page and heartbeat restart
  // when their sections changed. [buffer] and [gateway] id need a restart.
  void reload() {
    log(LogLevel::kInfo, "SIGHUP: re-reading " + file_.string());
    auto loaded = load_config(file_, env_);
    if (!loaded.config) {
      for (const auto& e : loaded.errors)
        log(LogLevel::kError, "reload: " + e.text());
      log(LogLevel::kError, "reload refused: the file has errors; everything runs as before");
      return;
    }
    auto& next = *loaded.config;
    std::vector<std::string> done;
    if (next.log_level != config_.log_level) {
      logger_.set_level(next.log_level);
      config_.log_level = next.log_level;
      done.push_back(std::string("log level is now ") + buffer::to_string(next.log_level));
    }
    if (!apply_sinks(next, done)) return;
    apply_sources(next.sources, done);
    if (section(loaded, "status") != section_text_["status"] || section(loaded, "heartbeat") != section_text_["heartbeat"]) {
      config_.status = next.status;
      config_.heartbeat = next.heartbeat;
      section_text_["status"] = section(loaded, "status");
      section_text_["heartbeat"] = section(loaded, "heartbeat");
      status_->stop();
      status_.reset();
      start_status();
      done.push_back("status page and heartbeat restarted");
    }
    warn_about_unconfigured_cursors();

    std::vector<std::string> restart = apply_buffer_limits(next.buffer, done);
    if (next.gateway_id != config_.gateway_id) restart.push_back("[gateway] id");
    std::string list;
    for (const auto& d : done)
      list += (list.empty() ? "" : "; ") + d;
    log(LogLevel::kInfo, "reload done: " + (list.empty() ? std::string("nothing changed") : list));
    if (!restart.empty()) {
      std::string names;
      for (const auto& r : restart)
        names += (names.empty() ? "" : ", ") + r;
      log(LogLevel::kWarning, "changed settings that need a restart to apply: " + names +
                                  " (systemctl restart tidegate); they are not in force yet");
    }
  }

  // The caps, policy, retention and reserve apply at once; the settings of
  // the file and its writer (returned, by key) only at the next start.
  std::vector<std::string> apply_buffer_limits(const buffer::BufferOptions& next, std::vector<std::string>& done) {
    auto& now = config_.buffer;
    if (!buffer::same_limits(now, next)) {
      buffer_->apply_limits(next);
      buffer::copy_limits(next, now);
      done.push_back("buffer limits applied (max_bytes " + (next.max_bytes ? common::mib_text(next.max_bytes) : "none") +
                     ", full_policy " + buffer::to_string(next.full_policy) + ", retention " +
                     std::to_string(next.retention_time.count()) + " s)");
    }
    std::vector<std::string> restart;
    auto differs = [&](bool changed, const char* key) {
      if (changed) restart.push_back(std::string("[buffer] ") + key);
    };
    differs(now.path != next.path, "path");
    differs(now.durability != next.durability, "durability");
    differs(now.commit_window != next.commit_window, "commit_window");
    differs(now.commit_max_records != next.commit_max_records, "commit_max_records");
    differs(now.commit_max_bytes != next.commit_max_bytes, "commit_max_bytes");
    differs(now.maintenance_interval != next.maintenance_interval, "maintenance_interval");
    differs(now.sync_interval != next.sync_interval, "sync_interval");
    differs(now.max_queued_records != next.max_queued_records, "max_queued_records");
    differs(now.integrity_check != next.integrity_check, "integrity_check");
    return restart;
  }

  static std::string section(const LoadResult& loaded, const char* name) {
    auto it = loaded.section_text.find(name);
    return it == loaded.section_text.end() ? std::string() : it->second;
  }

  template <typename Plan>
  static const Plan* find_plan(const std::vector<Plan>& plans, const std::string& name) {
    for (const auto& p : plans) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }

  // Sinks first made, then swapped: one that cannot be set up refuses the
  // reload before anything stopped.
  bool apply_sinks(const GatewayConfig& next_config, std::vector<std::string>& done) {
    const auto& next = next_config.sinks;
    std::vector<std::pair<const plugins::SinkPlan*, std::shared_ptr<forward::Forwarder>>> fresh;
    for (const auto& plan : next) {
      const auto* old = find_plan(config_.sinks, plan.name);
      if (old && old->kind == plan.kind && old->written == plan.written) continue;
      auto f = make_forwarder(next_config, plan);
      if (!f) {
        log(LogLevel::kError, "reload refused: sink '" + plan.name + "' cannot be set up; everything runs as before");
        return false;
      }
      fresh.emplace_back(&plan, std::move(f));
    }
    for (const auto& plan : config_.sinks) {
      const auto* now = find_plan(next, plan.name);
      if (now && now->kind == plan.kind && now->written == plan.written) continue;
      retire_forwarder(plan.name);
      if (!now) {
        done.push_back("sink '" + plan.name + "' removed (its cursor stays: adding it back resumes it)");
      }
    }
    for (auto& [plan, f] : fresh) {
      f->start();
      {
        std::lock_guard lock(parts_mu_);
        forwarders_.push_back(f);
      }
      const bool had = find_plan(config_.sinks, plan->name) != nullptr;
      done.push_back("sink '" + plan->name + "' " + (had ? "restarted with its new settings" : "added"));
    }
    config_.sinks = next;
    config_.processors = next_config.processors;
    return true;
  }

  void retire_forwarder(const std::string& name) {
    std::shared_ptr<forward::Forwarder> gone;
    {
      std::lock_guard lock(parts_mu_);
      auto it = std::find_if(forwarders_.begin(), forwarders_.end(),
                             [&](const auto& f) { return f->sink_name() == name; });
      if (it == forwarders_.end()) return;
      gone = std::move(*it);
      forwarders_.erase(it);
    }
    gone->stop();  // the send in flight finishes; its cursor stays in the buffer
  }

  // A source that fails to start with its new settings is logged and started
  // again with its old ones.
  void apply_sources(const std::vector<plugins::SourcePlan>& next, std::vector<std::string>& done) {
    std::vector<plugins::SourcePlan> running;
    for (const auto& plan : config_.sources) {
      const auto* now = find_plan(next, plan.name);
      if (now && now->kind == plan.kind && now->written == plan.written) {
        running.push_back(*now);
        continue;
      }
      stop_source(plan.name);
      if (!now) done.push_back("source '" + plan.name + "' removed");
    }
    for (const auto& plan : next) {
      const auto* old = find_plan(config_.sources, plan.name);
      if (old && old->kind == plan.kind && old->written == plan.written) continue;
      if (start_source(plan)) {
        running.push_back(plan);
        done.push_back("source '" + plan.name + "' " + (old ? "restarted with its new settings" : "added"));
      } else if (old && start_source(*old)) {
        running.push_back(*old);
        done.push_back("source '" + plan.name + "' kept its old settings (the new ones failed, see above)");
      }
    }
    config_.sources = std::move(running);
  }

  bool start_source(const plugins::SourcePlan& plan) {
    try {
      auto source = plan.create(*buffer_, logger_.fn());
      source->start();
      std::lock_guard lock(parts_mu_);
      sources_.push_back({plan.kind, plan.name, std::move(source)});
      return true;
    } catch (const std::exception& e) {
      log(LogLevel::kError, plan.kind + " source '" + plan.name + "': cannot be started: " + e.what());
      return false;
    }
  }

  void stop_source(const std::string& name) {
    std::unique_ptr<drivers::Source> gone;
    {
      std::lock_guard lock(parts_mu_);
      auto it = std::find_if(sources_.begin(), sources_.end(), [&](const auto& s) { return s.name == name; });
      if (it == sources_.end()) return;
      gone = std::move(it->source);
      sources_.erase(it);
    }
    gone->stop();  // waits for its commits and acknowledgements
  }

  std::filesystem::path file_;
  EnvLookup env_;
  GatewayConfig config_;
  Logger& logger_;
  std::map<std::string, std::string> section_text_;  // [buffer], [status], [heartbeat] as running
  std::unique_ptr<buffer::Buffer> buffer_;
  struct RunningSource {
    std::string kind;
    std::string name;
    std::unique_ptr<drivers::Source> source;
  };
  // Changed only by the main thread (start, reload, stop), under parts_mu_;
  // the status thread reads them under it.
  std::mutex parts_mu_;
  std::vector<RunningSource> sources_;
  std::vector<std::shared_ptr<forward::Forwarder>> forwarders_;
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
