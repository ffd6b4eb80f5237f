#include "tidegate/gateway/operations.h"

#include <charconv>
#include <chrono>
#include <ctime>
#include <functional>
#include <iomanip>
#include <istream>
#include <memory>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tidegate/buffer/buffer.h"
#include "tidegate/net/http_client.h"

namespace tidegate::gateway {
namespace {

std::string utc_text(std::int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::ostringstream o;
  o << std::put_time(&tm, "%Y-%m-%d %H:%M:%S UTC");
  return o.str();
}

std::string mib(std::uint64_t bytes) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1024.0 * 1024.0) << " MiB";
  return o.str();
}

buffer::BufferStats read_stats(const OperatorContext& ctx) {
  auto opts = ctx.buffer;
  opts.read_only = true;
  opts.integrity_check = buffer::IntegrityCheck::kNone;
  return buffer::Buffer::open(std::move(opts))->stats();
}

const buffer::SinkStats* find_cursor(const buffer::BufferStats& s, const std::string& sink) {
  for (const auto& k : s.sinks) {
    if (k.name == sink) return &k;
  }
  return nullptr;
}

bool confirmed(const OperatorContext& ctx, const std::string& question) {
  if (ctx.assume_yes) return true;
  *ctx.out << question << " [y/N] " << std::flush;
  std::string answer;
  if (!ctx.in || !std::getline(*ctx.in, answer)) answer.clear();
  if (answer == "y" || answer == "Y" || answer == "yes") return true;
  *ctx.err << "not confirmed: nothing changed (give --yes to skip the question)\n";
  return false;
}

// The change, on the file itself. Caps, retention and the disk reserve are
// off: this command changes one thing, the gateway applies its limits at its
// next start. Throws BufferInUse while a gateway holds the file.
std::string apply_directly(const OperatorContext& ctx, const std::function<buffer::Status(buffer::Buffer&)>& change) {
  auto opts = ctx.buffer;
  opts.read_only = false;
  opts.integrity_check = buffer::IntegrityCheck::kNone;
  opts.max_bytes = 0;
  opts.max_records = 0;
  opts.retention_time = std::chrono::seconds(0);
  opts.retention_bytes = 0;
  opts.disk_reserve_bytes = 0;
  opts.maintenance_interval = std::chrono::hours(24);
  std::ostream& err = *ctx.err;
  opts.log = [&err](buffer::LogLevel level, std::string_view text) {
    if (level >= buffer::LogLevel::kWarning) err << "buffer: " << text << "\n";
  };
  auto buf = buffer::Buffer::open(std::move(opts));
  const auto st = change(*buf);
  return st == buffer::Status::kOk ? "" : std::string("the buffer refused: ") + buffer::to_string(st);
}

// The change, through the running gateway's status API. Empty on success.
std::string apply_through_gateway(const OperatorContext& ctx, const std::string& path) {
  if (!ctx.have_config) return "a gateway holds the file: give --config so that its status API can be used";
  if (!ctx.status.enabled) {
    return "a gateway holds the file and its status server is off ([status] enabled = false): stop the gateway "
           "(sudo systemctl stop tidegate) and run this again";
  }
  if (ctx.status.token.empty()) {
    return "a gateway holds the file and its status API takes no operations without a token: set [status] token "
           "(or TIDEGATE_STATUS_TOKEN), or stop the gateway (sudo systemctl stop tidegate) and run this again";
  }
  const auto& http = ctx.status.http;
  const bool tls = !http.tls_cert_file.empty();
  std::string host = http.address;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  const std::string url = std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(http.port) + path;
  try {
    // Over TLS the status server's own certificate is the trust anchor (it
    // is usually self-signed for the box).
    net::HttpClient client(net::Url::parse(url), std::chrono::seconds(10), tls ? http.tls_cert_file : "");
    const auto r = client.post({{"Authorization", "Bearer " + ctx.status.token}}, "");
    if (r.status == 200) return "";
    std::string reason = r.body;
    try {
      reason = nlohmann::json::parse(r.body).value("error", r.body);
    } catch (const nlohmann::json::exception&) {
    }
    return "the gateway answered " + std::to_string(r.status) + ": " + reason;
  } catch (const std::exception& e) {
    return "no gateway answered at its status API " + url + ": " + e.what();
  }
}

// Directly when the file is free, else through the gateway. Returns the exit
// status and reports the outcome.
int apply(const OperatorContext& ctx, const std::function<buffer::Status(buffer::Buffer&)>& change,
          const std::string& api_path, const std::string& done) {
  std::string error;
  std::string how;
  try {
    error = apply_directly(ctx, change);
    how = "on the buffer file (no gateway was running)";
  } catch (const buffer::BufferInUse&) {
    error = apply_through_gateway(ctx, api_path);
    how = "through the running gateway";
  } catch (const buffer::BufferError& e) {
    error = e.what();
  }
  if (!error.empty()) {
    *ctx.err << "tidegate: " << error << "\n";
    return error.rfind("the gateway answered 409", 0) == 0 ? 1 : 2;
  }
  *ctx.out << done << ", " << how << "\n";
  return 0;
}

bool buffer_exists(const OperatorContext& ctx) {
  if (std::filesystem::exists(ctx.buffer.path)) return true;
  *ctx.err << "tidegate: no buffer at " << ctx.buffer.path.string() << "\n";
  return false;
}

// POST to the running gateway only (for what a stopped gateway has no use for).
int through_gateway_only(const OperatorContext& ctx, const std::string& api_path, const std::string& done) {
  const auto error = apply_through_gateway(ctx, api_path);
  if (!error.empty()) {
    *ctx.err << "tidegate: " << error << "\n";
    return error.find("answered 404") != std::string::npos ? 1 : 2;
  }
  *ctx.out << done << "\n";
  return 0;
}

}  // namespace

std::optional<std::int64_t> parse_operator_time(const std::string& text) {
  std::int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && ptr == text.data() + text.size()) return seconds * 1'000'000'000;
  std::string t = text;
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    std::tm tm{};
    std::istringstream in(t);
    in >> std::get_time(&tm, format);
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) continue;
    return static_cast<std::int64_t>(::timegm(&tm)) * 1'000'000'000;
  }
  return std::nullopt;
}

int list_sinks(const OperatorContext& ctx) {
  if (!buffer_exists(ctx)) return 2;
  const auto s = read_stats(ctx);
  auto& out = *ctx.out;
  out << std::left << std::setw(20) << "SINK" << std::setw(16) << "CONFIGURED" << std::setw(10) << "CURSOR"
      << std::setw(10) << "WAITING" << std::setw(13) << "WAITING MiB" << std::setw(26) << "OLDEST WAITING"
      << "LOST TO THE CAP\n";
  for (const auto& k : s.sinks) {
    const std::string configured =
        !ctx.have_config ? "?" : ctx.configured_sinks.count(k.name) ? "yes" : "NO (retired?)";
    std::ostringstream size;
    size << std::fixed << std::setprecision(1) << static_cast<double>(k.lag_bytes) / (1024.0 * 1024.0);
    out << std::left << std::setw(20) << k.name << ' ' << std::setw(15) << configured << ' ' << std::setw(9)
        << k.acked_seq << ' ' << std::setw(9) << k.lag_records << ' ' << std::setw(12) << size.str() << ' '
        << std::setw(25)
        << (k.oldest_undelivered_ingest_ns ? utc_text(*k.oldest_undelivered_ingest_ns) : std::string("-"))
        << k.lost_by_eviction << "\n";
  }
  if (s.sinks.empty()) out << "(no cursors: no sink has run on this buffer yet)\n";
  for (const auto& name : ctx.configured_sinks) {
    if (!find_cursor(s, name)) out << "(sink '" << name << "' is configured but has not run on this buffer yet)\n";
  }
  return 0;
}

int forget_sink(const OperatorContext& ctx, const std::string& sink) {
  if (!buffer_exists(ctx)) return 2;
  if (ctx.configured_sinks.count(sink)) {
    *ctx.err << "tidegate: sink '" << sink << "' is configured: the gateway would make its cursor again at the "
             << "newest record. Remove it from the configuration and restart the gateway first.\n";
    return 1;
  }
  const auto s = read_stats(ctx);
  const auto* cursor = find_cursor(s, sink);
  if (!cursor) {
    *ctx.err << "tidegate: the buffer " << ctx.buffer.path.string() << " has no cursor for sink '" << sink << "'\n";
    return 1;
  }
  *ctx.out << "sink '" << sink << "': " << cursor->lag_records << " records (" << mib(cursor->lag_bytes)
           << ") it never acknowledged"
           << (cursor->oldest_undelivered_ingest_ns
                   ? ", the oldest from " + utc_text(*cursor->oldest_undelivered_ingest_ns)
                   : std::string())
           << ". Forgetting it lets retention remove what only it was waiting for; it cannot be undone.\n";
  if (!confirmed(ctx, "Forget sink '" + sink + "'?")) return 1;
  return apply(
      ctx, [&](buffer::Buffer& b) { return b.remove_sink(sink); }, "/api/sinks/" + sink + "/forget",
      "forgot sink '" + sink + "'");
}

int acknowledge_losses(const OperatorContext& ctx) {
  if (!buffer_exists(ctx)) return 2;
  const auto s = read_stats(ctx);
  const auto news = s.evicted_total - std::min(s.evicted_acknowledged, s.evicted_total);
  if (news == 0) {
    *ctx.out << "nothing to acknowledge: " << s.evicted_total << " records lost to the cap in all, "
             << (s.evicted_acknowledged_ns ? "acknowledged " + utc_text(s.evicted_acknowledged_ns) : "none new")
             << "\n";
    return 0;
  }
  *ctx.out << news << " undelivered records were lost to the buffer's cap since "
           << (s.evicted_acknowledged_ns ? "the acknowledgement of " + utc_text(s.evicted_acknowledged_ns)
                                         : std::string("the buffer was made"))
           << " (" << s.evicted_total << " in all). They are gone; acknowledging clears the amber verdict "
           << "they cause, the counters stay.\n";
  if (!confirmed(ctx, "Acknowledge these losses?")) return 1;
  return apply(
      ctx, [](buffer::Buffer& b) { return b.acknowledge_evictions(); }, "/api/buffer/acknowledge-losses",
      "acknowledged " + std::to_string(news) + " lost records");
}

int rewind_sink(const OperatorContext& ctx, const std::string& sink, const forward::RewindTarget& target,
                const std::string& target_text) {
  if (!buffer_exists(ctx)) return 2;
  const auto s = read_stats(ctx);
  const auto* cursor = find_cursor(s, sink);
  if (!cursor) {
    *ctx.err << "tidegate: the buffer " << ctx.buffer.path.string() << " has no cursor for sink '" << sink << "'\n";
    return 1;
  }
  using Kind = forward::RewindTarget::Kind;
  const bool older_than_kept =
      s.records > 0 && ((target.kind == Kind::kSeq && target.seq < s.oldest_seq) ||
                        (target.kind == Kind::kTime && s.oldest_ingest_ns && target.ingest_ns < *s.oldest_ingest_ns));
  *ctx.out << "sink '" << sink << "' has acknowledged up to sequence " << cursor->acked_seq << "; it goes back to "
           << target_text << " and sends every record from there again, then carries on with live data.\n";
  if (s.records == 0) {
    *ctx.out << "The buffer holds no records: there is nothing to send again.\n";
  } else if (older_than_kept || target.kind == Kind::kEarliest) {
    *ctx.out << "The oldest record still kept is sequence " << s.oldest_seq
             << (s.oldest_ingest_ns ? " from " + utc_text(*s.oldest_ingest_ns) : std::string())
             << (older_than_kept ? ": older ones are gone, the sink starts there." : ".") << "\n";
  }
  if (!confirmed(ctx, "Rewind sink '" + sink + "'?")) return 1;
  std::string query;
  switch (target.kind) {
    case Kind::kSeq:
      query = "to-seq=" + std::to_string(target.seq);
      break;
    case Kind::kTime:
      query = "to-time=" + std::to_string(target.ingest_ns);
      break;
    case Kind::kEarliest:
      query = "to-earliest";
      break;
  }
  buffer::RewindResult result;
  const int code = apply(
      ctx,
      [&](buffer::Buffer& b) {
        result = target.kind == Kind::kTime ? b.rewind_to_time(sink, target.ingest_ns)
                                            : b.rewind_to_seq(sink, target.kind == Kind::kSeq ? target.seq : 0);
        return result.status;
      },
      "/api/sinks/" + sink + "/rewind?" + query, "rewound sink '" + sink + "' to " + target_text);
  return code;
}

int hold_sink(const OperatorContext& ctx, const std::string& sink, bool pause) {
  const std::string op = pause ? "pause" : "resume";
  return through_gateway_only(ctx, "/api/sinks/" + sink + "/" + op,
                              pause ? "paused sink '" + sink + "': records wait in the buffer"
                                    : "resumed sink '" + sink + "'");
}

}  // namespace tidegate::gateway
