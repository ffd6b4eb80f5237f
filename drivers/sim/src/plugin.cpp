// [[sources.sim]]: the simulated sensors' keys, checks and factory.
#include "tidegate/drivers/sim/sim_source.h"
#include "tidegate/plugins/source_plugin.h"

namespace tidegate::drivers::sim {
namespace {

using config::Context;
using config::in_quotes;
using config::Section;

void read_options(Section& s, SimOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "sim", "Name of this source.");
  o.mode = s.choice("mode", "buffer", {"buffer", "mqtt"},
                    "buffer: write readings straight into the buffer. mqtt: publish them to a broker (like real "
                    "sensors), for an MQTT source to take in.") == "mqtt"
               ? SimMode::kMqtt
               : SimMode::kBuffer;
  o.devices = static_cast<std::uint32_t>(s.integer("devices", 8, 1, 100'000, "Number of simulated devices."));
  o.readings_per_device_per_s = s.number("rate", 1.0, 0.001, 100'000.0, "Readings per device per second.");
  o.kinds =
      s.text_list("kinds", {"temperature", "humidity", "co2", "power"}, "Sensor kinds, assigned to devices in turn.");
  for (const auto& k : o.kinds) {
    if (k != "temperature" && k != "humidity" && k != "co2" && k != "power") {
      ctx.error(s.key_path("kinds"), "unknown kind " + in_quotes(k) + " (temperature, humidity, co2, power)");
    }
  }
  if (!ctx.docs && o.kinds.empty()) ctx.error(s.key_path("kinds"), "at least one kind is needed");
  o.topic_prefix = s.text("topic_prefix", "sensors", "Topics are <topic_prefix>/<device>/<kind>.");
  const std::string url = s.text("url", "mqtt://127.0.0.1:1883", "mqtt mode: the broker to publish to.");
  bool tls = false;
  if (!ctx.docs && o.mode == SimMode::kMqtt && (!config::parse_broker_url(url, o.mqtt_host, o.mqtt_port, tls) || tls)) {
    ctx.error(s.key_path("url"), "expected mqtt://host:port (the simulator publishes without TLS)");
  }
  o.mqtt_qos = static_cast<int>(s.integer("qos", 1, 0, 1, "mqtt mode: QoS of the publishes."));
}

}  // namespace

}  // namespace tidegate::drivers::sim

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SourceDescriptor sim_source_plugin() {
  return {"sim", "Simulated sensors ([[sources.sim]]).", [](config::Section& s, std::size_t index) {
            drivers::sim::SimOptions o;
            drivers::sim::read_options(s, o);
            o.seed = static_cast<std::uint32_t>(index + 1);  // each simulator its own, repeatable readings
            return source_plan<drivers::sim::SimSource>(s, std::move(o));
          }};
}

}  // namespace tidegate::plugins
