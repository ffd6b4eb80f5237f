// [[sources.mqtt]]: the MQTT source's keys, checks and factory.
#include "tidegate/config/tls_files.h"
#include "tidegate/drivers/ingest_support.h"
#include "tidegate/drivers/mqtt/mqtt_source.h"
#include "tidegate/plugins/source_plugin.h"
#include "mapping_keys.h"

namespace tidegate::drivers::mqtt {
namespace {

using config::Context;
using config::in_quotes;
using config::Section;

// MQTT subscriptions: a list whose entries are filter strings (with the
// default QoS) or {filter = "...", qos = N} tables.
std::vector<Subscription> read_subscriptions(Section& s, const std::string& key, std::uint8_t default_qos,
                                             const std::string& help) {
  Context& ctx_ = s.context();
  s.declare(key, "list of filters", "[\"sensors/#\"]", help);
  const toml::node* n = s.node(key);
  if (!n) return {{"sensors/#", default_qos}};
  const auto* arr = n->as_array();
  if (!arr) {
    ctx_.error(s.key_path(key), "expected a list of topic filters");
    return {};
  }
  std::vector<Subscription> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string at = s.key_path(key) + "[" + std::to_string(i) + "]";
    const auto& entry = (*arr)[i];
    Subscription sub{"", default_qos};
    if (auto text = entry.value_exact<std::string>()) {
      sub.filter = *text;
    } else if (const auto* t = entry.as_table()) {
      Section item(ctx_, t, at, s.doc_section());
      sub.filter = item.text_quiet("filter", "");
      const auto q =
          t->get("qos") ? t->get("qos")->value_exact<std::int64_t>() : std::optional<std::int64_t>(default_qos);
      if (!q || *q < 0 || *q > 1) ctx_.error(at + ".qos", "expected 0 or 1");
      sub.qos = static_cast<std::uint8_t>(q.value_or(default_qos) == 0 ? 0 : 1);
      item.accept("filter");
      item.accept("qos");
      item.finish();
    } else {
      ctx_.error(at, "expected a topic filter string or {filter = \"...\", qos = N}");
      continue;
    }
    if (sub.filter.empty()) {
      ctx_.error(at, "empty topic filter");
      continue;
    }
    const auto hash = sub.filter.find('#');
    if (hash != std::string::npos && hash != sub.filter.size() - 1) {
      ctx_.error(at, "'#' must be the last character of a filter: \"" + sub.filter + "\"");
      continue;
    }
    out.push_back(std::move(sub));
  }
  return out;
}

void read_options(Section& s, MqttSourceOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "mqtt", "Name of this source: stored with each record, shown on the status page.");
  const std::string url = s.text("url", "mqtt://127.0.0.1:1883",
                                 "Broker address: mqtt://host:port, or mqtts://host:port for TLS (port 8883 if "
                                 "omitted).");
  bool url_tls = false;
  if (!ctx.docs && !config::parse_broker_url(url, o.host, o.port, url_tls)) {
    ctx.error(s.key_path("url"), "not a broker address: " + in_quotes(url) +
                                     " (expected mqtt://host:port or "
                                     "mqtts://host:port)");
  }
  o.tls.enabled = url_tls;
  o.version = s.choice("protocol", "5", {"5", "3.1.1"},
                       "MQTT version. 5 lets the gateway announce a large receive window, so waiting for commits "
                       "before PUBACK does not throttle the broker; with 3.1.1 raise mosquitto's "
                       "max_inflight_messages.") == "3.1.1"
                  ? Version::kV311
                  : Version::kV5;
  o.client_id = s.text("client_id", "",
                       "Fixed client id, so the broker keeps the session while the gateway is "
                       "down. Empty: \"tidegate-<name>\".");
  o.session_expiry_s = static_cast<std::uint32_t>(
      s.duration("session_expiry", std::chrono::hours(24 * 7),
                 "MQTT 5: how long the broker keeps the session (and queues messages) while the gateway is away.")
          .count() /
      1000);
  o.keepalive_s = static_cast<std::uint16_t>(
      s.duration("keepalive", std::chrono::seconds(30), "MQTT keep alive interval.").count() / 1000);
  o.receive_maximum = static_cast<std::uint16_t>(
      s.integer("receive_maximum", 4096, 1, 65535,
                "MQTT 5: QoS 1 messages the broker may send before our acknowledgements, which wait for the "
                "commit. Must cover a commit window of traffic; bounds the memory a burst takes."));
  const std::string username = s.text("username", "",
                                      "User name. Environment TIDEGATE_MQTT_<NAME>_USERNAME "
                                      "overrides it.");
  const std::string password = s.text("password", "",
                                      "Password. Prefer the environment variable "
                                      "TIDEGATE_MQTT_<NAME>_PASSWORD, which overrides it; it is never "
                                      "logged.");
  if (!ctx.docs) {
    const auto env_user = ctx.env(config::env_name("MQTT", o.name, "USERNAME"));
    const auto env_pass = ctx.env(config::env_name("MQTT", o.name, "PASSWORD"));
    if (env_user || !username.empty()) o.username = env_user.value_or(username);
    if (env_pass || !password.empty()) o.password = env_pass.value_or(password);
  }
  s.table("tls", "sources.mqtt.tls", "TLS settings of an MQTT source (used with mqtts:// URLs).", [&](Section& t) {
    const auto k = config::read_tls_keys(t, o.tls.enabled);
    o.tls.ca_file = k.ca_file;
    o.tls.cert_file = k.cert_file;
    o.tls.key_file = k.key_file;
    o.tls.insecure_skip_verify = k.insecure_skip_verify;
  });
  const auto qos = s.integer("qos", 1, 0, 1,
                             "QoS of the subscriptions. 1: a message is acknowledged to the broker only after it is "
                             "committed to the buffer. 0: no acknowledgement; a gateway crash can lose messages.");
  o.subscriptions = read_subscriptions(s, "topics", static_cast<std::uint8_t>(qos),
                                       "Topic filters to subscribe to: strings, which use `qos`, or tables with a QoS "
                                       "of their own, e.g. [\"sensors/#\", {filter = \"debug/#\", qos = 0}].");
  if (!ctx.docs && o.subscriptions.empty()) ctx.error(s.key_path("topics"), "at least one topic filter is needed");
  read_mapping_keys(s, o.mapping);
}

}  // namespace

}  // namespace tidegate::drivers::mqtt

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SourceDescriptor mqtt_source_plugin() {
  return {"mqtt", "An MQTT source ([[sources.mqtt]]): subscribes to a broker.", [](config::Section& s, std::size_t) {
            drivers::mqtt::MqttSourceOptions o;
            drivers::mqtt::read_options(s, o);
            const std::string id = o.client_id.empty() ? "tidegate-" + o.name : o.client_id;
            Claim session{"mqtt-session " + o.host + ":" + std::to_string(o.port) + "/" + id, s.key_path("client_id"),
                          "two sources use client id " + config::in_quotes(id) +
                              " on the same broker: they would take each other's session"};
            auto plan = source_plan<drivers::mqtt::MqttSource>(s, std::move(o));
            plan.claims.push_back(std::move(session));
            return plan;
          }};
}

}  // namespace tidegate::plugins
