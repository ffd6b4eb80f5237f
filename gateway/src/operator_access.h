// What the operator commands share: reading the buffer beside a running
// gateway, asking for confirmation, and applying a change either directly to
// the file (no gateway holds it) or through the running gateway's status API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tidegate/buffer/buffer.h"
#include "tidegate/gateway/operations.h"

namespace tidegate::gateway::ops {

std::string utc_text(std::int64_t ns);

// The buffer opened read-only, without an integrity check: safe beside a
// running gateway.
std::unique_ptr<buffer::Buffer> open_read_only(const OperatorContext& ctx);
// Read-only figures (safe beside a running gateway).
buffer::BufferStats read_stats(const OperatorContext& ctx);
const buffer::SinkStats* find_cursor(const buffer::BufferStats& s, const std::string& sink);

// True if --yes was given or the operator answers yes.
bool confirmed(const OperatorContext& ctx, const std::string& question);

// The buffer file exists (else reported).
bool buffer_exists(const OperatorContext& ctx);

// The change on the file itself, with the limits off. Throws
// buffer::BufferInUse while a gateway holds the file. Empty on success.
std::string apply_directly(const OperatorContext& ctx, const std::function<buffer::Status(buffer::Buffer&)>& change);
// POST `path` to the running gateway's status API with its token. Empty on
// success.
std::string apply_through_gateway(const OperatorContext& ctx, const std::string& path);
// Directly when the file is free, else through the gateway; reports the
// outcome ("<done>, on the buffer file ..." or the error). Exit status.
int apply(const OperatorContext& ctx, const std::function<buffer::Status(buffer::Buffer&)>& change,
          const std::string& api_path, const std::string& done);

}  // namespace tidegate::gateway::ops
