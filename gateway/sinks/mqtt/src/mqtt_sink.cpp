#include "tidegate/sinks/mqtt_sink.h"

#include <mqtt/async_client.h>

#include <mutex>
#include <string_view>
#include <vector>

#include "tidegate/proto/envelope.h"

namespace tidegate::sinks {

std::string expand_topic(const std::string& tmpl, const std::string& gateway, const buffer::Record& r) {
  std::string out;
  out.reserve(tmpl.size() + r.topic.size());
  for (std::size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] == '{') {
      const auto close = tmpl.find('}', i);
      if (close != std::string::npos) {
        const auto field = tmpl.substr(i + 1, close - i - 1);
        if (field == "gateway") out += gateway;
        else if (field == "source") out += r.source;
        else if (field == "key") out += r.partition_key;
        else if (field == "topic") out += r.topic;
        else out += tmpl.substr(i, close - i + 1);  // unknown: kept as written
        i = close + 1;
        continue;
      }
    }
    out += tmpl[i++];
  }
  return out;
}

struct MqttSink::Impl {
  MqttSinkOptions opts;
  std::unique_ptr<mqtt::async_client> client;
  // OpenSSL's reason for the last failed TLS connect, reported by Paho's
  // thread; Paho's own error says only that the connect failed.
  std::mutex tls_error_mu;
  std::string tls_error;

  // OpenSSL 3 formats "<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:";
  // the reason is what an operator can act on.
  void note_tls_error(const std::string& text) {
    std::vector<std::string_view> fields;
    std::string_view rest(text);
    for (std::size_t colon; fields.size() < 6 && (colon = rest.find(':')) != std::string_view::npos;) {
      fields.push_back(rest.substr(0, colon));
      rest.remove_prefix(colon + 1);
    }
    const std::string reason = fields.size() == 6 && fields[1] == "error" ? std::string(fields[5]) : text;
    std::lock_guard lock(tls_error_mu);
    if (tls_error.empty()) tls_error = reason;  // the first is the cause
  }
  std::string take_tls_error() {
    std::lock_guard lock(tls_error_mu);
    auto out = tls_error.empty() ? std::string() : " (TLS: " + tls_error + ")";
    tls_error.clear();
    return out;
  }

  std::string uri() const { return std::string(opts.tls ? "ssl://" : "tcp://") + opts.host + ":" + std::to_string(opts.port); }

  // Connects if needed; returns an error text, empty on success.
  std::string ensure_connected() {
    if (client && client->is_connected()) return {};
    try {
      if (!client) {
        const std::string id = opts.client_id.empty() ? "tidegate-" + opts.gateway_id + "-" + opts.name : opts.client_id;
        // A non-zero buffer: with 0, Paho C 1.3 takes a path where its send
        // thread waits between publishes, and QoS 1 throughput drops to a few
        // hundred messages/s (bench/forward measured 400 vs 7,900;
        // eclipse-paho/paho.mqtt.c#1252). One batch's worth; records are only
        // published while connected, so it does not become an offline queue.
        client = std::make_unique<mqtt::async_client>(uri(), id, static_cast<int>(MqttSink::kMaxBatch) * 2, nullptr);
      }
      auto builder = mqtt::connect_options_builder()
                         .clean_session(true)
                         .max_inflight(static_cast<int>(MqttSink::kMaxBatch))
                         .connect_timeout(std::chrono::duration_cast<std::chrono::seconds>(opts.timeout));
      if (opts.username) builder.user_name(*opts.username);
      if (opts.password) builder.password(*opts.password);
      if (opts.tls) {
        auto ssl = mqtt::ssl_options_builder().enable_server_cert_auth(!opts.insecure_skip_verify).verify(!opts.insecure_skip_verify);
        if (!opts.ca_file.empty()) ssl.trust_store(opts.ca_file);
        if (!opts.cert_file.empty()) ssl.key_store(opts.cert_file);
        if (!opts.key_file.empty()) ssl.private_key(opts.key_file);
        ssl.error_handler([this](const std::string& text) { note_tls_error(text); });
        builder.ssl(ssl.finalize());
      }
      take_tls_error();
      if (!client->connect(builder.finalize())->wait_for(opts.timeout)) {
        return "connect to " + uri() + " timed out" + take_tls_error();
      }
      return client->is_connected() ? std::string() : "connect to " + uri() + " failed" + take_tls_error();
    } catch (const mqtt::exception& e) {
      return "connect to " + uri() + ": " + e.what() + take_tls_error();
    }
  }
};

MqttSink::MqttSink(MqttSinkOptions options) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(options); }

MqttSink::~MqttSink() {
  if (impl_->client && impl_->client->is_connected()) {
    try {
      impl_->client->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
      // Closing anyway; unacknowledged records stay behind the cursor.
    }
  }
}

const std::string& MqttSink::name() const { return impl_->opts.name; }

forward::SinkLimits MqttSink::limits() const {
  forward::SinkLimits l;
  l.max_records = MqttSink::kMaxBatch;
  l.max_bytes = 4u << 20;
  l.max_record_bytes = 256u << 20;  // MQTT's own packet limit; brokers usually set less
  return l;
}

std::string MqttSink::describe() const { return "MQTT broker " + impl_->uri(); }

forward::SendResult MqttSink::send(const std::vector<buffer::Record>& batch) {
  forward::SendResult result;
  auto& d = *impl_;
  if (auto error = d.ensure_connected(); !error.empty()) {
    result.batch = forward::Outcome::kRetry;
    result.error = error;
    return result;
  }
  // Publish the whole batch, then wait: PUBACKs pipeline instead of costing
  // one round trip each. In-order on one connection, so each device stays
  // ordered upstream.
  std::vector<mqtt::delivery_token_ptr> tokens(batch.size());
  result.per_record.assign(batch.size(), forward::Outcome::kRetry);
  try {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& r = batch[i];
      const std::string body = d.opts.payload == MqttPayload::kEnvelope ? proto::record_json(r, d.opts.gateway_id) : r.payload;
      tokens[i] = d.client->publish(expand_topic(d.opts.topic_template, d.opts.gateway_id, r), body.data(), body.size(),
                                    d.opts.qos, false);
    }
  } catch (const mqtt::exception& e) {
    result.error = std::string("publish: ") + e.what();
  }
  const auto deadline = std::chrono::steady_clock::now() + d.opts.timeout;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!tokens[i]) break;
    try {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (tokens[i]->wait_for(std::max(left, std::chrono::milliseconds(1))) && tokens[i]->get_return_code() == 0) {
        result.per_record[i] = forward::Outcome::kOk;
      } else if (result.error.empty()) {
        result.error = "no PUBACK within " + std::to_string(d.opts.timeout.count()) + " ms";
      }
    } catch (const mqtt::exception& e) {
      if (result.error.empty()) result.error = std::string("delivery: ") + e.what();
    }
  }
  return result;
}

}  // namespace tidegate::sinks
