// Buffer figures and records as JSON, for `tidegate buffer ...` and the
// status API.
#pragma once

#include <string>

#include "tidegate/buffer/buffer.h"

namespace tidegate::gateway {

std::string stats_json(const buffer::BufferStats& stats);
// One JSON object (no trailing newline). The payload is a string when it is
// valid UTF-8 ("payload"), otherwise base64 ("payload_base64").
std::string record_json(const buffer::Record& record);

}  // namespace tidegate::gateway
