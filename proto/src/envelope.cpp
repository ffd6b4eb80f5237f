#include "tidegate/proto/envelope.h"

#include "tidegate/proto/json.h"

namespace tidegate::proto {

std::string record_json(const buffer::Record& r, std::string_view gateway_id) {
  std::string o = "{";
  if (!gateway_id.empty()) o += "\"gateway\":" + json::quote(gateway_id) + ",";
  o += "\"seq\":" + std::to_string(r.seq);
  o += ",\"ingest_ns\":" + std::to_string(r.ingest_ns);
  o += ",\"clock_synced\":" + std::string(r.clock_synced ? "true" : "false");
  o += ",\"source\":" + json::quote(r.source);
  o += ",\"partition_key\":" + json::quote(r.partition_key);
  o += ",\"topic\":" + json::quote(r.topic);
  o += ",\"device_ts_ns\":" + (r.device_ts_ns ? std::to_string(*r.device_ts_ns) : std::string("null"));
  o += ",\"content_type\":" + json::quote(r.content_type);
  if (json::is_valid_utf8(r.payload)) {
    o += ",\"payload\":" + json::quote(r.payload);
  } else {
    o += ",\"payload_base64\":" + json::quote(json::base64(r.payload));
  }
  o += "}";
  return o;
}

}  // namespace tidegate::proto
