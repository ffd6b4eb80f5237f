// How an MQTT message becomes a record, the same for the MQTT source (from a
// broker) and the listener (from devices): the partition key, the device
// timestamp, the content type, and what makes a message a dead letter.
#pragma once

#include <cstddef>
#include <string>

#include "tidegate/buffer/record.h"
#include "tidegate/drivers/ingest_support.h"

namespace tidegate::drivers::mqtt {

struct MessageMapping {
  std::string key_from_topic;         // e.g. "sensors/{device}/#"; empty: the whole topic
  std::string key_from_json;          // dotted field, tried before key_from_topic
  std::string device_time_from_json;  // dotted field holding the device timestamp
  bool require_json = false;          // non-JSON payloads become dead letters
  std::size_t max_payload_bytes = 256 * 1024;
  std::string content_type;           // stored when the message carries none
};

class MessageMapper {
 public:
  // Throws std::invalid_argument for a malformed key_from_topic pattern.
  explicit MessageMapper(const MessageMapping& mapping);

  // Fills the record's partition key, device time and content type from its
  // topic and payload. Returns why the message is bad input (it then goes
  // to the dead-letter table with its topic as key), or "" when it is fine.
  // `fallback_key` replaces the topic as the last resort for the key (the
  // listener's device identity), when not empty.
  std::string map(buffer::NewRecord& record, const std::string& fallback_key = {}) const;

 private:
  MessageMapping mapping_;
  TopicPattern key_pattern_;
};

}  // namespace tidegate::drivers::mqtt
