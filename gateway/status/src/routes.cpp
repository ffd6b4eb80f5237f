#include "tidegate/status/routes.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "tidegate/status/render.h"

namespace tidegate::status {
namespace {

using buffer::LogLevel;

HttpResponse json_result(unsigned status, const std::string& error) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = nlohmann::json{{"ok", error.empty()}, {"error", error}}.dump(-1, ' ', false,
                                                                        nlohmann::json::error_handler_t::replace);
  return r;
}

// Constant time in the token's length, so timing does not reveal a prefix.
bool token_matches(const std::string& configured, const std::string& authorization) {
  const std::string prefix = "Bearer ";
  if (configured.empty() || authorization.rfind(prefix, 0) != 0) return false;
  const std::string given = authorization.substr(prefix.size());
  unsigned diff = given.size() != configured.size() ? 1u : 0u;
  for (std::size_t i = 0; i < configured.size(); ++i) {
    diff |= static_cast<unsigned>(configured[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

// Who asked, for the log: the client's address and what it calls itself
// (printable characters only, cut short: the header is the client's to say).
std::string requester(const HttpRequest& req) {
  std::string agent;
  for (const char c : req.user_agent.substr(0, 80)) agent += (c >= 0x20 && c < 0x7F) ? c : '?';
  return (req.peer.empty() ? std::string("an unknown address") : req.peer) +
         (agent.empty() ? std::string() : ", " + agent);
}

// The value of `name` in the target's query ("?to-seq=12"); nullopt if
// absent, "" for a bare flag ("?to-earliest").
std::optional<std::string> query_value(const std::string& target, const std::string& name) {
  const auto q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::size_t at = q + 1;
  while (at <= target.size()) {
    const auto end = std::min(target.find('&', at), target.size());
    const auto item = target.substr(at, end - at);
    const auto eq = item.find('=');
    if (item.substr(0, eq) == name) return eq == std::string::npos ? std::string() : item.substr(eq + 1);
    at = end + 1;
  }
  return std::nullopt;
}

// ?to-seq=N (the first record to send again), ?to-time=NS (ingest time in
// Unix nanoseconds) or ?to-earliest. nullopt for anything else.
std::optional<forward::RewindTarget> rewind_target(const std::string& target) {
  forward::RewindTarget t;
  auto number = [](const std::string& text, auto& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
  };
  if (auto v = query_value(target, "to-seq")) {
    t.kind = forward::RewindTarget::Kind::kSeq;
    return number(*v, t.seq) ? std::optional(t) : std::nullopt;
  }
  if (auto v = query_value(target, "to-time")) {
    t.kind = forward::RewindTarget::Kind::kTime;
    return number(*v, t.ingest_ns) ? std::optional(t) : std::nullopt;
  }
  if (query_value(target, "to-earliest")) return t;
  return std::nullopt;
}

}  // namespace

HttpHandler make_status_routes(StatusCollector& collector, StatusControls controls, std::string token,
                               buffer::LogFn log) {
  return [&collector, controls = std::move(controls), token = std::move(token),
          log = std::move(log)](const HttpRequest& req) -> HttpResponse {
    const std::string path = path_of(req.target);
    const bool read = req.method == "GET" || req.method == "HEAD";

    if (path == "/" || path == "/index.html" || path == "/api/status" || path == "/metrics" || path == "/healthz" ||
        path == "/readyz") {
      if (!read) {
        auto r = text_response(405, "method not allowed");
        r.headers.emplace_back("Allow", "GET, HEAD");
        return r;
      }
      HttpResponse r;
      if (path == "/" || path == "/index.html") {
        r.content_type = "text/html; charset=utf-8";
        r.body = status_page_html();
        // The page is self-contained: nothing may load from elsewhere.
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "connect-src 'self'; img-src data:; frame-ancestors 'none'");
      } else if (path == "/api/status") {
        r.content_type = "application/json";
        r.body = to_json(collector.snapshot());
      } else if (path == "/metrics") {
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = to_prometheus(collector.snapshot());
      } else if (path == "/healthz") {
        r.body = "ok\n";
      } else {  // /readyz: the buffer takes records
        const auto s = collector.snapshot();
        if (!s.buffer_writable) return text_response(503, "not ready: buffer refuses records: " + s.buffer_problem);
        if (s.buffer.disk_reserve_reached) return text_response(503, "not ready: disk free-space reserve reached");
        r.body = "ready\n";
      }
      return r;
    }

    // State-changing operations: POST with the token.
    const std::string sinks_prefix = "/api/sinks/";
    const bool is_sink_op = path.rfind(sinks_prefix, 0) == 0;
    const bool is_buffer_op = path == "/api/dead-letters/clear" || path == "/api/dead-letters/replay" || path == "/api/buffer/acknowledge-losses";
    if (!is_sink_op && !is_buffer_op) return text_response(404, "not found: " + path);
    if (req.method != "POST") {
      auto r = text_response(405, "method not allowed");
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    if (token.empty()) {
      return json_result(403, "operations over HTTP are disabled: set [status] token to enable them");
    }
    if (!token_matches(token, req.authorization)) {
      auto r = json_result(401, "missing or wrong token (Authorization: Bearer <token>)");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tidegate\"");
      return r;
    }
    std::string error;
    std::string what;
    if (is_sink_op) {
      const auto rest = path.substr(sinks_prefix.size());
      const auto slash = rest.rfind('/');
      if (slash == std::string::npos) return text_response(404, "not found: " + path);
      const auto sink = rest.substr(0, slash);
      const auto op = rest.substr(slash + 1);
      if (op == "pause") {
        error = controls.pause_sink(sink);
      } else if (op == "resume") {
        error = controls.resume_sink(sink);
      } else if (op == "forget" && controls.forget_sink) {
        error = controls.forget_sink(sink);
      } else if (op == "rewind" && controls.rewind_sink) {
        const auto target = rewind_target(req.target);
        if (!target) return json_result(400, "give ?to-seq=N, ?to-time=UNIX_NS or ?to-earliest");
        error = controls.rewind_sink(sink, *target);
      } else {
        return text_response(404, "not found: " + path);
      }
      what = op + " sink '" + sink + "'";
      if (op == "rewind") what += " (" + req.target.substr(req.target.find('?') + 1) + ")";
    } else if (path == "/api/buffer/acknowledge-losses" && controls.acknowledge_losses) {
      error = controls.acknowledge_losses();
      what = "acknowledge the buffer's losses";
    } else if (path == "/api/dead-letters/clear" || path == "/api/dead-letters/replay") {
      auto which = parse_selection_query(req.target);
      if (!which) return json_result(400, "give ?ids=N,N,..., ?failed-before=UNIX_NS or ?all");
      const bool replay = path == "/api/dead-letters/replay";
      if (replay && !controls.replay_dead_letters) return text_response(404, "not found: " + path);
      const auto to_sink = query_value(req.target, "to-sink").value_or("");
      error = replay ? controls.replay_dead_letters(*which, to_sink) : controls.clear_dead_letters(*which);
      what = std::string(replay ? "replay" : "clear") + " dead letters (" + selection_query(*which) + ")" +
             (to_sink.empty() ? "" : " to sink '" + to_sink + "'");
    } else {
      return text_response(404, "not found: " + path);
    }
    if (log) {
      log(error.empty() ? LogLevel::kWarning : LogLevel::kError,
          "status page: operator request: " + what + (error.empty() ? ": done" : ": failed: " + error) + " (from " +
              requester(req) + ")");
    }
    if (!error.empty()) {
      const unsigned code = error.find("no sink") == 0 ? 404 : error.find("is configured") != std::string::npos ? 409 : 500;
      return json_result(code, error);
    }
    return json_result(200, "");
  };
}

std::string selection_query(const buffer::DeadLetterSelection& which) {
  if (which.all) return "all";
  std::string q;
  if (!which.ids.empty()) {
    q = "ids=";
    for (std::size_t i = 0; i < which.ids.size(); ++i) q += (i ? "," : "") + std::to_string(which.ids[i]);
  }
  if (which.failed_before_ns) q += (q.empty() ? "" : "&") + std::string("failed-before=") + std::to_string(*which.failed_before_ns);
  return q;
}

std::optional<buffer::DeadLetterSelection> parse_selection_query(const std::string& target) {
  buffer::DeadLetterSelection which;
  auto number = [](std::string_view text, std::int64_t& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
  };
  const auto ids = query_value(target, "ids");
  const auto before = query_value(target, "failed-before");
  if (query_value(target, "all") || (!ids && !before)) {
    which.all = true;
    return which;
  }
  if (ids) {
    std::string_view rest = *ids;
    while (!rest.empty()) {
      const auto comma = std::min(rest.find(','), rest.size());
      std::int64_t id = 0;
      if (!number(rest.substr(0, comma), id)) return std::nullopt;
      which.ids.push_back(id);
      rest.remove_prefix(std::min(comma + 1, rest.size()));
    }
    if (which.ids.empty()) return std::nullopt;
  }
  if (before) {
    std::int64_t ns = 0;
    if (!number(*before, ns)) return std::nullopt;
    which.failed_before_ns = ns;
  }
  return which;
}

}  // namespace tidegate::status
