#include "tidegate/gateway/dead_letters.h"

#include <algorithm>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "operator_access.h"
#include "tidegate/proto/envelope.h"
#include "tidegate/proto/json.h"
#include "tidegate/status/routes.h"

namespace tidegate::gateway {
namespace {

using ops::utc_text;

constexpr std::size_t kPreviewBytes = 60;

buffer::Record as_record(const buffer::DeadLetter& d) {
  buffer::Record r;
  static_cast<buffer::NewRecord&>(r) = d.record;
  r.seq = d.seq.value_or(0);
  return r;
}

// Who refused it: a sink, or the source at ingest.
std::string refused_by(const buffer::DeadLetter& d) {
  return d.sink.empty() ? "source '" + d.record.source + "' (at ingest)" : "sink '" + d.sink + "'";
}

// The payload as one printable line: text as it is (control characters
// escaped), other bytes as base64; cut to `limit` bytes.
std::string preview(const std::string& payload, std::size_t limit) {
  std::string text;
  if (proto::json::is_valid_utf8(payload)) {
    text = proto::json::quote(payload.substr(0, std::min(limit, payload.size())));
    text = text.substr(1, text.size() - 2);  // the quotes
  } else {
    text = "base64:" + proto::json::base64(payload.substr(0, std::min(limit, payload.size())));
  }
  if (payload.size() > limit) text += "... (" + std::to_string(payload.size()) + " bytes)";
  return text;
}

template <typename Visit>
void each_dead_letter(const OperatorContext& ctx, Visit&& visit) {
  auto buf = ops::open_read_only(ctx);
  std::int64_t after = 0;
  for (;;) {
    auto page = buf->dead_letters(500, after);
    if (page.empty()) return;
    for (const auto& d : page) {
      if (!visit(d)) return;
    }
    after = page.back().id;
  }
}

std::vector<buffer::DeadLetter> selected(const OperatorContext& ctx, const buffer::DeadLetterSelection& which) {
  std::vector<buffer::DeadLetter> out;
  each_dead_letter(ctx, [&](const buffer::DeadLetter& d) {
    const bool chosen = which.all || std::find(which.ids.begin(), which.ids.end(), d.id) != which.ids.end() ||
                        (which.failed_before_ns && d.failed_ns < *which.failed_before_ns);
    if (chosen) out.push_back(d);
    return true;
  });
  return out;
}

// What the operator is about to act on, in a few lines.
void describe(const OperatorContext& ctx, const std::vector<buffer::DeadLetter>& letters) {
  std::map<std::string, std::uint64_t> by_origin;
  for (const auto& d : letters) by_origin[refused_by(d)] += 1;
  for (const auto& [origin, n] : by_origin) *ctx.out << "  " << n << " refused by " << origin << "\n";
}

}  // namespace

std::string dead_letter_json(const buffer::DeadLetter& d) {
  std::string out = "{\"id\":" + std::to_string(d.id) + ",\"failed_ns\":" + std::to_string(d.failed_ns) +
                    ",\"failed\":" + proto::json::quote(utc_text(d.failed_ns)) + ",\"refused_by\":";
  out += d.sink.empty() ? "\"ingest\"" : "\"sink\"";
  out += ",\"sink\":" + proto::json::quote(d.sink) + ",\"reason\":" + proto::json::quote(d.reason) + ",\"record\":";
  proto::append_record_json(out, as_record(d));
  out += "}";
  return out;
}

int list_dead_letters(const OperatorContext& ctx, std::uint64_t limit) {
  if (!ops::buffer_exists(ctx)) return 2;
  auto& out = *ctx.out;
  std::uint64_t shown = 0;
  std::uint64_t total = 0;
  each_dead_letter(ctx, [&](const buffer::DeadLetter& d) {
    total += 1;
    if (shown >= limit) return true;  // counted, not shown
    if (shown == 0) {
      out << std::left << std::setw(7) << "ID" << std::setw(24) << "FAILED" << std::setw(30) << "REFUSED BY"
          << std::setw(9) << "SEQ" << "TOPIC / REASON / PAYLOAD\n";
    }
    shown += 1;
    out << std::left << std::setw(6) << d.id << ' ' << std::setw(23) << utc_text(d.failed_ns) << ' '
        << std::setw(29) << refused_by(d) << ' ' << std::setw(8) << (d.seq ? std::to_string(*d.seq) : "-") << ' '
        << d.record.topic << "\n"
        << std::string(7, ' ') << "reason: " << d.reason << "\n"
        << std::string(7, ' ') << "payload: " << preview(d.record.payload, kPreviewBytes) << "\n";
    return true;
  });
  if (total == 0) {
    out << "no dead letters\n";
  } else {
    out << total << " dead letter(s)" << (shown < total ? ", the first " + std::to_string(shown) + " shown" : "")
        << ". Whole payloads: tidegate dead-letters show ID, or export.\n";
  }
  return 0;
}

int show_dead_letter(const OperatorContext& ctx, std::int64_t id) {
  if (!ops::buffer_exists(ctx)) return 2;
  const auto d = ops::open_read_only(ctx)->dead_letter(id);
  if (!d) {
    *ctx.err << "tidegate: no dead letter " << id << " (tidegate dead-letters list shows them)\n";
    return 1;
  }
  auto& out = *ctx.out;
  out << "id:            " << d->id << "\n"
      << "failed:        " << utc_text(d->failed_ns) << "\n"
      << "refused by:    " << refused_by(*d) << "\n"
      << "reason:        " << d->reason << "\n"
      << "sequence:      " << (d->seq ? std::to_string(*d->seq) : "- (refused before it was stored)") << "\n"
      << "source:        " << d->record.source << "\n"
      << "device:        " << d->record.partition_key << "\n"
      << "topic:         " << d->record.topic << "\n"
      << "ingested:      " << utc_text(d->record.ingest_ns) << (d->record.clock_synced ? "" : " (clock not synced)")
      << "\n"
      << "content type:  " << (d->record.content_type.empty() ? "-" : d->record.content_type) << "\n"
      << "payload:       " << d->record.payload.size() << " bytes"
      << (proto::json::is_valid_utf8(d->record.payload) ? "" : ", not text: base64 below") << "\n";
  out << (proto::json::is_valid_utf8(d->record.payload) ? d->record.payload : proto::json::base64(d->record.payload))
      << "\n";
  return 0;
}

int export_dead_letters(const OperatorContext& ctx, std::ostream& to) {
  if (!ops::buffer_exists(ctx)) return 2;
  std::uint64_t n = 0;
  each_dead_letter(ctx, [&](const buffer::DeadLetter& d) {
    to << dead_letter_json(d) << "\n";
    n += 1;
    return static_cast<bool>(to);
  });
  to.flush();
  if (!to) {
    *ctx.err << "tidegate: writing the export failed after " << n << " dead letters\n";
    return 2;
  }
  *ctx.err << "exported " << n << " dead letter(s)\n";
  return 0;
}

int replay_dead_letters(const OperatorContext& ctx, const buffer::DeadLetterSelection& which,
                        const std::string& to_sink) {
  if (!ops::buffer_exists(ctx)) return 2;
  if (!to_sink.empty() && ctx.have_config && !ctx.configured_sinks.count(to_sink)) {
    *ctx.err << "tidegate: no sink named '" << to_sink << "' in the configuration\n";
    return 1;
  }
  const auto letters = selected(ctx, which);
  if (letters.empty()) {
    *ctx.err << "tidegate: no dead letters match (tidegate dead-letters list shows them)\n";
    return 1;
  }
  *ctx.out << letters.size() << " dead letter(s) go back into the buffer as new records (their ingest time kept), "
           << (to_sink.empty() ? "each for the sink that refused it (input refused at ingest: for every sink)"
                               : "for sink '" + to_sink + "' only")
           << ", and leave the dead letters:\n";
  describe(ctx, letters);
  *ctx.out << "Fix the cause first (the reasons: tidegate dead-letters list), or they come back here.\n";
  if (!ops::confirmed(ctx, "Replay them?")) return 1;
  // The selection as given (not a list of every id: "all" may be
  // thousands); what failed between the question and the answer may join.
  std::string query = "/api/dead-letters/replay?" + status::selection_query(which);
  if (!to_sink.empty()) query += "&to-sink=" + to_sink;
  return ops::apply(
      ctx,
      [&](buffer::Buffer& b) {
        const auto r = b.replay_dead_letters(which, to_sink);
        if (r.status != buffer::Status::kOk) *ctx.err << "tidegate: " << r.error << "\n";
        return r.status;
      },
      query, "replayed " + std::to_string(letters.size()) + " dead letter(s)");
}

int clear_dead_letters(const OperatorContext& ctx, const buffer::DeadLetterSelection& which) {
  if (!ops::buffer_exists(ctx)) return 2;
  const auto letters = selected(ctx, which);
  if (letters.empty()) {
    *ctx.out << "no dead letters match: nothing to clear\n";
    return 0;
  }
  *ctx.out << letters.size() << " dead letter(s) will be removed for good:\n";
  describe(ctx, letters);
  *ctx.out << "Export them first if they may be needed: tidegate dead-letters export > FILE\n";
  if (!ops::confirmed(ctx, "Clear them?")) return 1;
  return ops::apply(
      ctx,
      [&](buffer::Buffer& b) { return b.clear_dead_letters(which).status; },
      "/api/dead-letters/clear?" + status::selection_query(which),
      "cleared " + std::to_string(letters.size()) + " dead letter(s)");
}

}  // namespace tidegate::gateway
