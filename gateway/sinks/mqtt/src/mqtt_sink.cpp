#include "tidegate/sinks/mqtt_sink.h"

#include <utility>
#include <vector>

#include "tidegate/drivers/mqtt/publisher.h"
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

namespace {

// MQTT 5 PUBACK reasons (3.4.2.1) the same message will never get past:
// dead-letter it. The others (quota exceeded, unspecified, implementation
// specific) may pass later: retry.
bool refused_for_good(std::uint16_t reason) {
  switch (reason) {
    case 0x87:  // Not authorized
    case 0x90:  // Topic Name invalid
    case 0x95:  // Packet too large
    case 0x99:  // Payload format invalid
      return true;
    default:
      return false;
  }
}

drivers::mqtt::PublisherOptions publisher_options(const MqttSinkOptions& o) {
  drivers::mqtt::PublisherOptions p;
  p.host = o.host;
  p.port = o.port;
  p.version = o.mqtt5 ? drivers::mqtt::Version::kV5 : drivers::mqtt::Version::kV311;
  p.client_id = o.client_id.empty() ? "tidegate-" + o.gateway_id + "-" + o.name : o.client_id;
  p.username = o.username;
  p.password = o.password;
  p.tls.enabled = o.tls;
  p.tls.ca_file = o.ca_file;
  p.tls.cert_file = o.cert_file;
  p.tls.key_file = o.key_file;
  p.tls.insecure_skip_verify = o.insecure_skip_verify;
  p.qos = static_cast<std::uint8_t>(o.qos);
  p.keepalive_s = o.keepalive_s;
  p.timeout = o.timeout;
  p.max_inflight = static_cast<std::uint16_t>(MqttSink::kMaxBatch);
  return p;
}

}  // namespace

struct MqttSink::Impl {
  explicit Impl(MqttSinkOptions o) : opts(std::move(o)), publisher(publisher_options(opts)) {}
  MqttSinkOptions opts;
  drivers::mqtt::Publisher publisher;
  std::string topic;  // scratch, reused per record
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> refused{0};
};

MqttSink::MqttSink(MqttSinkOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

MqttSink::~MqttSink() = default;  // the publisher sends DISCONNECT

const std::string& MqttSink::name() const { return impl_->opts.name; }

forward::SinkLimits MqttSink::limits() const {
  forward::SinkLimits l;
  l.max_records = MqttSink::kMaxBatch;
  l.max_bytes = 4u << 20;
  l.max_record_bytes = 256u << 20;  // MQTT's own packet limit; brokers usually set less
  return l;
}

std::string MqttSink::describe() const { return "MQTT broker " + impl_->publisher.uri(); }

std::vector<common::Counter> MqttSink::counters() const {
  return {
      {"connects_total", "Connections made to the upstream broker (more than one: the link or the broker dropped it).",
       static_cast<double>(impl_->connects.load())},
      {"refused_total", "Messages the broker refused with an MQTT 5 PUBACK reason code.",
       static_cast<double>(impl_->refused.load()), common::Counter::Type::kCounter, true},
  };
}

void MqttSink::idle() {
  impl_->publisher.service();
  impl_->connects = impl_->publisher.connects();
}

forward::SendResult MqttSink::send(const std::vector<buffer::Record>& batch) {
  auto& d = *impl_;
  forward::SendResult result;
  result.per_record.assign(batch.size(), forward::Outcome::kRetry);
  // In order on one connection, so each device stays ordered upstream.
  std::vector<std::size_t> sent;  // batch index of each message handed to the publisher
  sent.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& r = batch[i];
    d.topic = expand_topic(d.opts.topic_template, d.opts.gateway_id, r);
    try {
      if (d.opts.payload == MqttPayload::kEnvelope) {
        d.publisher.add(d.topic, proto::record_json(r, d.opts.gateway_id));
      } else {
        d.publisher.add(d.topic, r.payload);
      }
      sent.push_back(i);
    } catch (const drivers::mqtt::ProtocolError& e) {  // a topic MQTT cannot carry
      result.per_record[i] = forward::Outcome::kReject;
      result.error = "topic " + d.topic.substr(0, 64) + "...: " + e.what();
    }
  }
  auto published = d.publisher.publish();
  d.connects = d.publisher.connects();
  for (std::size_t k = 0; k < sent.size(); ++k) {
    const auto reason = published.reasons[k];
    auto& outcome = result.per_record[sent[k]];
    if (reason < 0x80) {
      outcome = forward::Outcome::kOk;
    } else if (reason != drivers::mqtt::kNoPuback) {
      d.refused += 1;
      outcome = refused_for_good(reason) ? forward::Outcome::kReject : forward::Outcome::kRetry;
    }
  }
  if (!published.error.empty()) result.error = published.error;
  return result;
}

}  // namespace tidegate::sinks
