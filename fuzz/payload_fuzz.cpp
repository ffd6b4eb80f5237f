// What a sensor controls in a reading: the payload (JSON or not) and the
// topic, through the MQTT mapping (device key from a JSON field or a topic
// level, device time from a JSON field) and the JSON helpers under it.
// Input: topic, a NUL byte, payload.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tidegate/drivers/ingest_support.h"
#include "tidegate/drivers/mqtt/message_mapping.h"

using namespace tidegate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string_view topic = nul == std::string_view::npos ? std::string_view() : input.substr(0, nul);
  const std::string_view payload = nul == std::string_view::npos ? input : input.substr(nul + 1);

  (void)drivers::is_json(payload);
  for (const auto* path : {"device", "meta.device", "a.b.c.d", "ts", ""}) (void)drivers::json_field(payload, path);
  (void)drivers::parse_timestamp(payload);

  static const drivers::mqtt::MessageMapper by_json([] {
    drivers::mqtt::MessageMapping m;
    m.key_from_json = "meta.device";
    m.key_from_topic = "sensors/{device}/#";
    m.device_time_from_json = "ts";
    m.require_json = true;
    m.max_payload_bytes = 4096;
    return m;
  }());
  static const drivers::mqtt::MessageMapper by_topic([] {
    drivers::mqtt::MessageMapping m;
    m.key_from_topic = "+/{device}/+";
    return m;
  }());
  for (const auto* mapper : {&by_json, &by_topic}) {
    buffer::NewRecord r;
    r.topic = std::string(topic);
    r.payload = std::string(payload);
    (void)mapper->map(r, "fallback");
  }
  return 0;
}
