// The status thread of the daemon: one io_context that samples the figures
// at a steady interval, serves the status page (when enabled) and emits the
// heartbeat record on its own interval.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "tidegate/status/collector.h"
#include "tidegate/status/http_server.h"
#include "tidegate/status/routes.h"

namespace tidegate::status {

struct StatusServiceOptions {
  bool http_enabled = true;
  HttpServerOptions http;
  std::string token;  // empty: no state-changing operations over HTTP
  std::chrono::milliseconds sample_interval{5000};
  // 0: no heartbeat. Otherwise emit_heartbeat gets the JSON every interval.
  std::chrono::milliseconds heartbeat_interval{60'000};
  std::function<void(const std::string& json)> emit_heartbeat;
};

class StatusService {
 public:
  // Binds the server at once, so a taken port fails the start (throws
  // std::runtime_error) rather than going unnoticed.
  StatusService(StatusCollector& collector, StatusControls controls, StatusServiceOptions options, buffer::LogFn log);
  ~StatusService();
  StatusService(const StatusService&) = delete;
  StatusService& operator=(const StatusService&) = delete;

  void start();
  void stop();
  std::uint16_t http_port() const;  // 0 without a server
  HttpServerStats http_stats() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::status
