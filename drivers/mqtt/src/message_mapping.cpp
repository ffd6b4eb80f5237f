#include "tidegate/drivers/mqtt/message_mapping.h"

#include <optional>

namespace tidegate::drivers::mqtt {

MessageMapper::MessageMapper(const MessageMapping& mapping)
    : mapping_(mapping), key_pattern_(mapping.key_from_topic) {}

std::string MessageMapper::map(buffer::NewRecord& r, const std::string& fallback_key) const {
  if (r.content_type.empty()) r.content_type = mapping_.content_type;
  // A refused payload still names its device where the topic or the
  // connection does, so that a replayed dead letter keeps its device's order.
  auto key_without_payload = [&] {
    if (!key_pattern_.empty()) {
      if (auto k = key_pattern_.capture(r.topic)) return std::move(*k);
    }
    return fallback_key.empty() ? r.topic : fallback_key;
  };
  // Bad input is acknowledged and kept apart: redelivering it would only
  // fail again, forever.
  if (r.payload.size() > mapping_.max_payload_bytes) {
    r.partition_key = key_without_payload();
    return "payload of " + std::to_string(r.payload.size()) + " bytes exceeds max_payload_bytes (" +
           std::to_string(mapping_.max_payload_bytes) + ")";
  }
  if (mapping_.require_json && !is_json(r.payload)) {
    r.partition_key = key_without_payload();
    return "payload is not valid JSON (require_json is set)";
  }
  // The key: the JSON field, else the topic pattern's capture, else the
  // fallback, else the topic.
  std::optional<std::string> key;
  if (!mapping_.key_from_json.empty()) key = json_field(r.payload, mapping_.key_from_json);
  if (!key && !key_pattern_.empty()) key = key_pattern_.capture(r.topic);
  if (!key && !fallback_key.empty()) key = fallback_key;
  r.partition_key = key ? std::move(*key) : r.topic;
  if (!mapping_.device_time_from_json.empty()) {
    if (auto field = json_field(r.payload, mapping_.device_time_from_json)) r.device_ts_ns = parse_timestamp(*field);
  }
  return {};
}

}  // namespace tidegate::drivers::mqtt
