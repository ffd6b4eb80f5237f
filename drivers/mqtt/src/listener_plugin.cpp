// [[sources.mqtt_listener]]: the listener's keys, checks and factory.
#include "mapping_keys.h"
#include "tidegate/config/tls_files.h"
#include "tidegate/drivers/mqtt/listener_auth.h"
#include "tidegate/drivers/mqtt/mqtt_listener.h"
#include "tidegate/plugins/source_plugin.h"

namespace tidegate::drivers::mqtt {
namespace {

using config::Section;

std::uint32_t seconds_of(std::chrono::milliseconds d) { return static_cast<std::uint32_t>(d.count() / 1000); }

// A password or ACL file is read as the listener will read it, so that
// check-config names the line it cannot use.
template <typename File>
void check_loads(Section& s, const std::string& key, const std::string& path) {
  if (s.context().docs || path.empty()) return;
  try {
    File::load(path);
  } catch (const AuthFileError& e) {
    s.context().error(s.key_path(key), e.what());
  }
}

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
  const auto fallback = s.choice("key_fallback", "topic", {"topic", "client_id", "username"},
                                 "The partition key when neither key_from_json nor key_from_topic gives one: the "
                                 "topic, the client id, or the user name (with tls.identity_as_username: the "
                                 "client certificate's identity).");
  o.key_fallback = fallback == "client_id"  ? KeyFallback::kClientId
                   : fallback == "username" ? KeyFallback::kUsername
                                            : KeyFallback::kTopic;
  o.password_file = s.text("password_file", "",
                           "Users and their hashed passwords, as mosquitto_passwd writes them (an existing "
                           "mosquitto password file works). Empty: no user names are checked, and a client that "
                           "sends one is refused.");
  check_loads<PasswordFile>(s, "password_file", o.password_file);
  o.allow_anonymous = s.boolean("allow_anonymous", true,
                                "Whether clients without a user name may connect. Without this key: yes, unless "
                                "password_file is set.");
  if (!s.present("allow_anonymous")) o.allow_anonymous = o.password_file.empty();
  o.acl_file = s.text("acl_file", "",
                      "Which topics each user may publish to, in mosquitto's acl_file format: 'user NAME', then 'topic "
                      "ACCESS FILTER' lines (ACCESS: write, readwrite, read or deny), and 'pattern ACCESS FILTER' "
                      "lines for everyone with %c (client id) and %u (user name). PUBLISHes it does not allow are "
                      "counted and not stored. Empty: any topic.");
  check_loads<AclFile>(s, "acl_file", o.acl_file);
  s.table("tls", "sources.mqtt_listener.tls", "TLS for the listener: set cert_file and key_file to take MQTT over TLS "
          "(conventionally on port 8883) instead of plain TCP.", [&](Section& t) {
    o.tls.cert_file = t.text("cert_file", "", "The listener's certificate chain (PEM).");
    o.tls.key_file = t.text("key_file", "", "Its private key (PEM).");
    o.tls.ca_file = t.text("ca_file", "", "CA bundle (PEM) client certificates are checked against (mutual TLS).");
    o.tls.require_client_certificate =
        t.boolean("require_client_certificate", false, "Refuse clients without a certificate from ca_file.");
    o.tls.identity_as_username = t.boolean(
        "identity_as_username", false,
        "The client certificate's identity (its first DNS name, else its common name) is the user name, for "
        "acl_file and key_fallback = \"username\"; no password is asked. Implies require_client_certificate.");
    if (t.context().docs) return;
    if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
      ctx.error(t.key_path(o.tls.cert_file.empty() ? "cert_file" : "key_file"),
                "cert_file and key_file go together");
    }
    config::check_certificate_and_key(ctx, t.key_path("cert_file"), o.tls.cert_file, t.key_path("key_file"),
                                      o.tls.key_file);
    if (!o.tls.ca_file.empty()) config::check_ca_file(ctx, t.key_path("ca_file"), o.tls.ca_file);
    if ((o.tls.require_client_certificate || o.tls.identity_as_username) && o.tls.ca_file.empty()) {
      ctx.error(t.key_path("ca_file"), "client certificates need the CA that signs them (ca_file)");
    }
    if (!o.tls.cert_file.empty() || !o.tls.ca_file.empty()) {
      if (o.tls.cert_file.empty()) ctx.error(t.key_path("cert_file"), "TLS settings without the listener's certificate");
    }
  });
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
