// The MQTT source: subscribes to a broker and writes every message into the
// buffer, acknowledging a QoS 1 message (PUBACK) only after its record is
// committed.
//
// Why not Paho or libmosquitto here: both send the PUBACK before handing the
// message to the application (Paho C: MQTTProtocol_handlePublishes, "send
// puback before processing the publications"), so a gateway killed between
// that PUBACK and its commit loses the message for good. This client is small
// and owns its acknowledgements: PUBACKs are written from the buffer's commit
// callback, in the order the PUBLISHes arrived (MQTT 5 section 4.6). With
// MQTT 5 it announces a large Receive Maximum so that waiting for group
// commits does not throttle the broker's in-flight window.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/mqtt/codec.h"
#include "tidegate/drivers/mqtt/message_mapping.h"
#include "tidegate/drivers/mqtt/tls_options.h"
#include "tidegate/drivers/source.h"

namespace tidegate::drivers::mqtt {

struct MqttSourceOptions {
  std::string name = "mqtt";
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  Version version = Version::kV5;
  std::string client_id;  // fixed, so the broker keeps our session
  std::uint32_t session_expiry_s = 7 * 24 * 3600;
  std::uint16_t keepalive_s = 30;
  // MQTT 5 Receive Maximum: unacknowledged QoS 1 messages the broker may
  // send us. It must cover a commit window of traffic (4096 allows ~400k
  // msg/s at 10 ms) and bounds the memory a backlog burst can take.
  std::uint16_t receive_maximum = 4096;
  std::optional<std::string> username;
  std::optional<std::string> password;
  TlsOptions tls;
  std::vector<Subscription> subscriptions;

  MessageMapping mapping;  // message to record: key, device time, dead letters

  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30'000};
  std::chrono::milliseconds connect_timeout{10'000};
};

struct MqttSourceStats {
  SourceStats common;
  std::string state;  // "connecting", "connected", "disconnected", "stopped"
  std::uint64_t connects_total = 0;
  std::uint64_t reconnects_total = 0;
  std::uint64_t redelivered_total = 0;  // PUBLISH with DUP set: possible duplicates
  std::uint64_t refused_total = 0;      // the buffer refused: not acknowledged, redelivered later
  std::uint64_t qos0_lost_total = 0;    // refused QoS 0 messages cannot be redelivered
  std::uint64_t protocol_errors_total = 0;
  bool session_present = false;
  bool subscribed = false;  // the broker answered our SUBSCRIBE on this connection
  std::uint64_t exceptions_total = 0;  // caught on the source's thread (see drivers/error_boundary.h)
};

class MqttSource final : public Source {
 public:
  MqttSource(MqttSourceOptions options, buffer::Buffer& buffer, buffer::LogFn log);
  ~MqttSource() override;

  const std::string& name() const override;
  void start() override;
  // Stops reading, waits until every message taken in is committed and
  // acknowledged, disconnects (the broker keeps the session).
  void stop() override;
  void pause() override;
  void resume() override;
  SourceStats stats() const override;
  MqttSourceStats mqtt_stats() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tidegate::drivers::mqtt
