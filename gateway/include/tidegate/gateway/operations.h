// Operations an operator runs on the buffer from the command line: list the
// sinks' cursors, forget a retired sink, acknowledge losses. A change goes
// straight to the buffer file when no gateway holds it, and through the
// running gateway's status API (with the configured token) when one does:
// the buffer has one writer at a time, and the running gateway must learn of
// the change anyway.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <set>
#include <string>

#include "tidegate/buffer/options.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/gateway/config.h"

namespace tidegate::gateway {

struct OperatorContext {
  buffer::BufferOptions buffer;          // which file (the limits are not applied by these commands)
  bool have_config = false;              // false with --db: configured sinks and the API are unknown
  std::set<std::string> configured_sinks;
  std::string gateway_id;                // [gateway] id: the envelope's "gateway" (empty with --db)
  GatewayConfig::StatusConfig status;    // how to reach the running gateway
  bool assume_yes = false;               // --yes: no question asked
  std::istream* in = nullptr;            // the answer to the question
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

// Exit statuses as the CLI's: 0 done, 1 refused or not confirmed (nothing
// changed), 2 a file or the gateway could not be reached.
int list_sinks(const OperatorContext& ctx);
int forget_sink(const OperatorContext& ctx, const std::string& sink);
int acknowledge_losses(const OperatorContext& ctx);
// Sends the sink back (replay) to `target`; `target_text` names it for the
// operator ("seq 1200", "2026-11-30 08:00:00 UTC", "the oldest record").
int rewind_sink(const OperatorContext& ctx, const std::string& sink, const forward::RewindTarget& target,
                const std::string& target_text);
// Holds or releases a sink; the hold is kept in the buffer file, so it
// outlasts a restart (the gateway's or the box's).
int hold_sink(const OperatorContext& ctx, const std::string& sink, bool pause);
// "2026-11-30T08:00:00Z", "2026-11-30 08:00", "2026-11-30" (UTC) or Unix
// seconds, as nanoseconds since the epoch; nullopt otherwise.
std::optional<std::int64_t> parse_operator_time(const std::string& text);

}  // namespace tidegate::gateway
