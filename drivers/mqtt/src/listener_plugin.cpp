// [[sources.mqtt_listener]]: the listener's keys, checks and factory.
#include "mapping_keys.h"
#include "tidegate/drivers/mqtt/mqtt_listener.h"
#include "tidegate/plugins/source_plugin.h"

namespace tidegate::drivers::mqtt {
namespace {

using config::Section;

std::uint32_t seconds_of(std::chrono::milliseconds d) { return static_cast<std::uint32_t>(d.count() / 1000); }

void read_listener_options(Section& s, MqttListenerOptions& o) {
  auto& ctx = s.context();
  o.name = s.text("name", "devices", "Name of this source: stored with each record, shown on the status page.");
  const std::string listen =
      s.text("listen", "127.0.0.1:1883",
             "Address and port devices connect to (MQTT over TCP). \"0.0.0.0:1883\" takes devices from the "
             "site's network; the default keeps it to this box.");
  if (!ctx.docs && !config::parse_listen(listen, o.bind_address, o.port)) {
    ctx.error(s.key_path("listen"), "expected ADDRESS:PORT with a literal address, e.g. \"0.0.0.0:1883\", not " +
                                        config::in_quotes(listen));
  }
  o.max_connections = static_cast<std::size_t>(
      s.integer("max_connections", 1000, 1, 100000, "Connections at once; more are closed at accept."));
  o.max_packet_size = static_cast<std::uint32_t>(
      s.integer("max_packet_size", 1 << 20, 64, 256 << 20,
                "Largest MQTT packet in bytes (announced to MQTT 5 clients); a larger one closes the connection."));
  o.receive_maximum = static_cast<std::uint16_t>(
      s.integer("receive_maximum", 1024, 1, 65535,
                "QoS 1/2 PUBLISHes a client may have unacknowledged (announced to MQTT 5 clients; 3.1.1 clients are "
                "held back by TCP). Acknowledgements wait for the commit, so it must hold one commit window of a "
                "client's traffic."));
  o.topic_alias_maximum = static_cast<std::uint16_t>(
      s.integer("topic_alias_maximum", 64, 0, 65535, "MQTT 5 topic aliases a client may use per connection."));
  o.max_keepalive_s = static_cast<std::uint16_t>(std::min<std::uint32_t>(
      65535, seconds_of(s.duration("max_keepalive", std::chrono::minutes(5),
                                   "Longest keep alive a client may choose; MQTT 5 clients that ask for more (or "
                                   "none) are told this one. A client silent for 1.5 times its keep alive is "
                                   "disconnected and its will stored."))));
  o.connect_timeout = s.duration("connect_timeout", std::chrono::seconds(10),
                                 "A connection that has not sent its CONNECT by then is closed.");
  o.packet_timeout = s.duration("packet_timeout", std::chrono::seconds(30),
                                "A packet begun must be complete by then (slow or stuck clients are closed).");
  o.max_session_expiry_s = seconds_of(
      s.duration("max_session_expiry", std::chrono::hours(24),
                 "Longest time a persistent session (QoS 2 state, a delayed will) is kept for a client that is away."));
  o.max_connects_per_second_per_address = s.number(
      "max_connect_rate", 20, 0, 1e6,
      "New connections per second from one address (with a burst of as many); more are closed at accept. 0: no "
      "limit.");
  o.key_from_client_id = s.boolean("key_from_client_id", false,
                                   "When neither key_from_json nor key_from_topic gives a partition key, use the "
                                   "client id (instead of the topic).");
  read_mapping_keys(s, o.mapping);
}

}  // namespace
}  // namespace tidegate::drivers::mqtt

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SourceDescriptor mqtt_listener_source_plugin() {
  return {"mqtt_listener",
          "An MQTT listener ([[sources.mqtt_listener]]): devices publish to the gateway itself, MQTT 3.1.1 or 5, "
          "and a QoS 1/2 reading is acknowledged only once it is committed to the buffer.",
          [](config::Section& s, std::size_t) {
            drivers::mqtt::MqttListenerOptions o;
            drivers::mqtt::read_listener_options(s, o);
            Claim port{"listen " + o.bind_address + ":" + std::to_string(o.port), s.key_path("listen"),
                       "two listeners on the same address and port"};
            auto plan = source_plan<drivers::mqtt::MqttListener>(s, std::move(o));
            if (plan.options_as<drivers::mqtt::MqttListenerOptions>().port != 0) plan.claims.push_back(std::move(port));
            return plan;
          }};
}

}  // namespace tidegate::plugins
