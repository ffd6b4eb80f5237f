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

#include "tidegate/buffer/buffer.h"
#include "tidegate/common/civil_time.h"
#include "tidegate/common/text.h"

#include "operator_access.h"
#include "tidegate/streams/derived_stream.h"

namespace tidegate::gateway {

using ops::apply;
using ops::buffer_exists;
using ops::confirmed;
using ops::find_cursor;
using ops::read_stats;
using ops::utc_text;

std::optional<std::int64_t> parse_operator_time(const std::string& text) {
  // Nanoseconds from 1970 to 2262 only (64 bits); found by fuzz/operator_text_fuzz:
  // "20-11-30 08:00" (the year 20) overflowed.
  auto nanoseconds = [](std::int64_t seconds) -> std::optional<std::int64_t> {
    std::int64_t ns = 0;
    if (seconds < 0 || __builtin_mul_overflow(seconds, std::int64_t{1'000'000'000}, &ns)) return std::nullopt;
    return ns;
  };
  std::int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && ptr == text.data() + text.size()) return nanoseconds(seconds);
  std::string t = text;
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    std::tm tm{};
    std::istringstream in(t);
    in >> std::get_time(&tm, format);
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) continue;
    return nanoseconds(common::unix_seconds(tm));
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
  *ctx.out << "sink '" << sink << "': " << cursor->lag_records << " records (" << common::mib_text(cursor->lag_bytes)
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
  // A window or deadband processor (a derived stream) has a cursor of its own.
  const std::string stream_cursor = streams::DerivedStream::cursor_name(sink);
  const bool stream = !cursor && (cursor = find_cursor(s, stream_cursor)) != nullptr;
  if (!cursor) {
    *ctx.err << "tidegate: the buffer " << ctx.buffer.path.string() << " has no cursor for sink '" << sink
             << "' (nor a window or deadband of that name)\n";
    return 1;
  }
  using Kind = forward::RewindTarget::Kind;
  const bool older_than_kept =
      s.records > 0 && ((target.kind == Kind::kSeq && target.seq < s.oldest_seq) ||
                        (target.kind == Kind::kTime && s.oldest_ingest_ns && target.ingest_ns < *s.oldest_ingest_ns));
  if (stream) {
    *ctx.out << "processor '" << sink << "' has read up to sequence " << cursor->acked_seq << "; it goes back to "
             << target_text << ", drops its state (open windows, reported values) and makes its records again "
             << "from there, as new records.\n";
  } else {
    *ctx.out << "sink '" << sink << "' has acknowledged up to sequence " << cursor->acked_seq << "; it goes back to "
             << target_text << " and sends every record from there again, then carries on with live data.\n";
  }
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
        const std::string name = stream ? stream_cursor : sink;
        auto move_cursor = [&] {
          return target.kind == Kind::kTime ? b.rewind_to_time(name, target.ingest_ns)
                                            : b.rewind_to_seq(name, target.kind == Kind::kSeq ? target.seq : 0);
        };
        result = stream ? streams::DerivedStream::rewind_offline(b, sink, move_cursor) : move_cursor();
        return result.status;
      },
      "/api/sinks/" + sink + "/rewind?" + query, "rewound sink '" + sink + "' to " + target_text);
  return code;
}

int hold_sink(const OperatorContext& ctx, const std::string& sink, bool pause) {
  if (!buffer_exists(ctx)) return 2;
  const auto s = read_stats(ctx);
  if (!find_cursor(s, sink) && !ctx.configured_sinks.count(sink)) {
    *ctx.err << "tidegate: no sink named '" << sink << "' (tidegate sink list shows them)\n";
    return 1;
  }
  // The hold is kept in the buffer file: a restart does not release it.
  const std::string op = pause ? "pause" : "resume";
  return apply(
      ctx, [&](buffer::Buffer& b) { return b.set_sink_held(sink, pause); }, "/api/sinks/" + sink + "/" + op,
      pause ? "paused sink '" + sink + "' until 'tidegate sink resume " + sink + "' (records wait in the buffer)"
            : "resumed sink '" + sink + "'");
}

}  // namespace tidegate::gateway
