// A Snapshot as /api/status JSON, as Prometheus text exposition, and as the
// heartbeat record the gateway sends upstream. The JSON schema is documented
// in docs/status.md; its "schema" field changes when a field changes meaning.
#pragma once

#include <string>

#include "tidegate/status/snapshot.h"

namespace tidegate::status {

inline constexpr int kStatusSchemaVersion = 1;

std::string to_json(const Snapshot& s);
std::string to_prometheus(const Snapshot& s);
// Compact: what cloud-side monitoring needs to alert on one gateway.
std::string heartbeat_json(const Snapshot& s);

// The status page: one self-contained HTML document (no external assets).
const std::string& status_page_html();

}  // namespace tidegate::status
