// The upstream MQTT sink (AWS IoT Core or any broker), on the project's own
// MQTT client (drivers/mqtt Publisher): a batch goes out in one write and a
// record is acknowledged to the buffer only on the broker's PUBACK for it.
// docs/performance.md says why it left Eclipse Paho.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "tidegate/forward/sink.h"

namespace tidegate::sinks {

enum class MqttPayload {
  kEnvelope,  // the JSON envelope (gateway, seq, metadata, payload): self-describing
  kRaw,       // the payload bytes as the sensor sent them
};

struct MqttSinkOptions {
  std::string name = "mqtt-upstream";
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;
  std::string client_id;  // empty: "tidegate-<gateway>-<name>"
  std::optional<std::string> username;
  std::optional<std::string> password;
  // {gateway}, {source}, {key}, {topic} are replaced per record.
  std::string topic_template = "tidegate/{gateway}/{topic}";
  int qos = 1;
  bool mqtt5 = false;  // MQTT 3.1.1 by default: every broker speaks it
  std::uint16_t keepalive_s = 60;
  MqttPayload payload = MqttPayload::kEnvelope;
  std::chrono::milliseconds timeout{10'000};  // connect, and waiting for PUBACKs
  std::string gateway_id;
};

// "{gateway}/x/{key}" with the record's values (exposed for tests).
std::string expand_topic(const std::string& tmpl, const std::string& gateway, const buffer::Record& record);

class MqttSink final : public forward::Sink {
 public:
  // Records per send: a window of PUBACKs in flight at once.
  static constexpr std::size_t kMaxBatch = 2000;

  explicit MqttSink(MqttSinkOptions options);
  ~MqttSink() override;
  const std::string& name() const override;
  forward::SinkLimits limits() const override;
  forward::SendResult send(const std::vector<buffer::Record>& batch) override;
  void idle() override;
  std::string describe() const override;
  std::vector<common::Counter> counters() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::sinks
