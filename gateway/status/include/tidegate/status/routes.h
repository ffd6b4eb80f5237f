// What the status server answers: the page, /api/status, /metrics, /healthz,
// /readyz, and the few operations that change state, which need the
// configured token (Authorization: Bearer <token>) and are refused when no
// token is configured.
#pragma once

#include <functional>
#include <string>

#include "tidegate/status/collector.h"
#include "tidegate/status/http_server.h"

namespace tidegate::status {

// Operations an operator may trigger over HTTP. Each returns an error text,
// empty on success.
struct StatusControls {
  std::function<std::string(const std::string& sink)> pause_sink;
  std::function<std::string(const std::string& sink)> resume_sink;
  std::function<std::string()> clear_dead_letters;
  std::function<std::string(const std::string& sink)> forget_sink;  // a cursor without a configured sink
  std::function<std::string()> acknowledge_losses;                  // evictions seen by an operator
  std::function<std::string(const std::string& sink, const forward::RewindTarget& target)> rewind_sink;
};

HttpHandler make_status_routes(StatusCollector& collector, StatusControls controls, std::string token,
                               buffer::LogFn log);

}  // namespace tidegate::status
