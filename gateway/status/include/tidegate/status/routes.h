// What the status server answers: the page, /api/status, /metrics, /healthz,
// /readyz, and the few operations that change state, which need the
// configured token (Authorization: Bearer <token>) and are refused when no
// token is configured.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "tidegate/buffer/buffer.h"
#include "tidegate/status/collector.h"
#include "tidegate/status/http_server.h"

namespace tidegate::status {

// Operations an operator may trigger over HTTP. Each returns an error text,
// empty on success.
struct StatusControls {
  std::function<std::string(const std::string& sink)> pause_sink;
  std::function<std::string(const std::string& sink)> resume_sink;
  std::function<std::string(const buffer::DeadLetterSelection& which)> clear_dead_letters;
  // Back into the buffer, for `to_sink` (empty: the sink that refused each).
  std::function<std::string(const buffer::DeadLetterSelection& which, const std::string& to_sink)>
      replay_dead_letters;
  std::function<std::string(const std::string& sink)> forget_sink;  // a cursor without a configured sink
  std::function<std::string()> acknowledge_losses;                  // evictions seen by an operator
  std::function<std::string(const std::string& sink, const forward::RewindTarget& target)> rewind_sink;
};

// Which dead letters a request means, as a query: "ids=3,4,9",
// "failed-before=UNIX_NS", "all"; a request without any of them means all
// (the page's "clear" button). And back, for the CLI.
std::string selection_query(const buffer::DeadLetterSelection& which);
std::optional<buffer::DeadLetterSelection> parse_selection_query(const std::string& target);

HttpHandler make_status_routes(StatusCollector& collector, StatusControls controls, std::string token,
                               buffer::LogFn log);

}  // namespace tidegate::status
