#include "mapping_keys.h"

#include <stdexcept>

namespace tidegate::drivers::mqtt {

void read_mapping_keys(config::Section& s, MessageMapping& m) {
  config::Context& ctx = s.context();
  m.key_from_topic = s.text("key_from_topic", "",
                            "Partition key (device id) from the topic, e.g. \"sensors/{device}/#\": {name} captures "
                            "a level, + matches one, # the rest. Empty: the whole topic.");
  if (!ctx.docs && !m.key_from_topic.empty()) {
    try {
      TopicPattern p(m.key_from_topic);
      if (!p.has_capture()) ctx.error(s.key_path("key_from_topic"), "the pattern captures no level ({name})");
    } catch (const std::invalid_argument& e) {
      ctx.error(s.key_path("key_from_topic"), e.what());
    }
  }
  m.key_from_json = s.text("key_from_json", "",
                           "Partition key from a JSON field of the payload (dotted path, e.g. "
                           "\"meta.device\"); falls back to key_from_topic, then the topic.");
  m.device_time_from_json = s.text("device_time_from_json", "",
                                   "Device timestamp from a JSON field: epoch seconds, milliseconds or an RFC 3339 "
                                   "UTC string.");
  m.require_json = s.boolean("require_json", false, "Payloads that are not JSON go to the dead-letter table.");
  m.max_payload_bytes = s.memory_size("max_payload", 256 << 10, "Larger payloads go to the dead-letter table.");
  m.content_type = s.text("content_type", "", "Content type stored with records whose message names none.");
}

}  // namespace tidegate::drivers::mqtt
