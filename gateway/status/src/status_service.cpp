#include "tidegate/status/status_service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <thread>

#include "tidegate/status/render.h"

namespace tidegate::status {

namespace asio = boost::asio;
using buffer::LogLevel;

class StatusService::Impl {
 public:
  Impl(StatusCollector& collector, StatusControls controls, StatusServiceOptions options, buffer::LogFn log)
      : collector_(collector), opts_(std::move(options)), log_(std::move(log)), sampler_(io_), heartbeat_(io_) {
    if (opts_.http_enabled) {
      server_.emplace(io_, opts_.http, make_status_routes(collector_, std::move(controls), opts_.token, log_), log_);
    }
  }

  ~Impl() { stop(); }

  void start() {
    if (thread_.joinable()) return;
    work_.emplace(io_.get_executor());
    collector_.sample();  // the first rates need a starting point
    schedule_sample();
    if (opts_.heartbeat_interval.count() > 0 && opts_.emit_heartbeat) schedule_heartbeat();
    thread_ = std::thread([this] { io_.run(); });
  }

  void stop() {
    if (!thread_.joinable()) return;
    // Closing the server and cancelling the timers leaves the io_context
    // without work, so run() returns once every connection has wound down.
    asio::post(io_, [this] {
      if (server_) server_->close();
      sampler_.cancel();
      heartbeat_.cancel();
    });
    work_.reset();
    thread_.join();
  }

  std::uint16_t port() const { return server_ ? server_->port() : 0; }
  HttpServerStats stats() const { return server_ ? server_->stats() : HttpServerStats{}; }

 private:
  void schedule_sample() {
    sampler_.expires_after(opts_.sample_interval);
    sampler_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      collector_.sample();
      schedule_sample();
    });
  }

  void schedule_heartbeat() {
    heartbeat_.expires_after(opts_.heartbeat_interval);
    heartbeat_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      try {
        opts_.emit_heartbeat(heartbeat_json(collector_.snapshot()));
      } catch (const std::exception& e) {
        if (log_) log_(LogLevel::kError, std::string("heartbeat: ") + e.what());
      }
      schedule_heartbeat();
    });
  }

  StatusCollector& collector_;
  StatusServiceOptions opts_;
  buffer::LogFn log_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer sampler_;
  asio::steady_timer heartbeat_;
  std::optional<HttpServer> server_;
  std::thread thread_;
};

StatusService::StatusService(StatusCollector& collector, StatusControls controls, StatusServiceOptions options,
                             buffer::LogFn log)
    : impl_(std::make_unique<Impl>(collector, std::move(controls), std::move(options), std::move(log))) {}
StatusService::~StatusService() = default;
void StatusService::start() {
  impl_->start();
}
void StatusService::stop() {
  impl_->stop();
}
std::uint16_t StatusService::http_port() const {
  return impl_->port();
}
HttpServerStats StatusService::http_stats() const {
  return impl_->stats();
}

}  // namespace tidegate::status
