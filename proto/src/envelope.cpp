#include "tidegate/proto/envelope.h"

#include <charconv>

#include "tidegate/proto/json.h"

namespace tidegate::proto {
namespace {

template <typename Int>
void append_number(std::string& out, Int value) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
  out.append(buf, end);
}

}  // namespace

void append_record_json(std::string& o, const buffer::Record& r, std::string_view gateway_id) {
  o += '{';
  if (!gateway_id.empty()) {
    o += "\"gateway\":";
    json::append_quoted(o, gateway_id);
    o += ',';
  }
  o += "\"seq\":";
  append_number(o, r.seq);
  o += ",\"ingest_ns\":";
  append_number(o, r.ingest_ns);
  o += r.clock_synced ? ",\"clock_synced\":true" : ",\"clock_synced\":false";
  o += ",\"source\":";
  json::append_quoted(o, r.source);
  o += ",\"partition_key\":";
  json::append_quoted(o, r.partition_key);
  o += ",\"topic\":";
  json::append_quoted(o, r.topic);
  o += ",\"device_ts_ns\":";
  if (r.device_ts_ns) {
    append_number(o, *r.device_ts_ns);
  } else {
    o += "null";
  }
  o += ",\"content_type\":";
  json::append_quoted(o, r.content_type);
  const auto payload_at = o.size();
  o += ",\"payload\":";
  if (!json::append_quoted_if_utf8(o, r.payload)) {
    o.resize(payload_at);
    o += ",\"payload_base64\":";
    json::append_quoted(o, json::base64(r.payload));
  }
  o += '}';
}

std::string record_json(const buffer::Record& r, std::string_view gateway_id) {
  std::string o;
  o.reserve(160 + r.payload.size() + r.topic.size());
  append_record_json(o, r, gateway_id);
  return o;
}

}  // namespace tidegate::proto
