// The MQTT listener: devices publish straight to the gateway, which is their
// broker for ingest. A QoS 1 PUBLISH gets its PUBACK, and a QoS 2 PUBLISH its
// PUBREC, only after its record is committed to the buffer, so a reading a
// device saw acknowledged survives a crash of the gateway: there is no broker
// in between whose crash window could lose it.
//
// It speaks MQTT 3.1.1 and 5 on Boost.Asio with the project's codec, on one
// thread. It is an ingest endpoint, not a broker: SUBSCRIBE is refused with
// a reason, retained messages are stored like any other (not retained), and
// nothing is ever delivered to a client. A session holds only what QoS 2
// needs (the packet ids received and not yet released); persistent ones are
// saved in the buffer with the records (see buffer::StateChange).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/mqtt/message_mapping.h"
#include "tidegate/drivers/source.h"

namespace tidegate::drivers::mqtt {

struct ListenerTlsOptions {
  std::string cert_file;  // server certificate chain (PEM); empty: plain TCP
  std::string key_file;
  std::string ca_file;    // CA of client certificates (mutual TLS)
  bool require_client_certificate = false;
  // The client certificate's identity (first DNS name, else common name)
  // is the user name: for the ACL and the partition key; no password asked.
  bool identity_as_username = false;
  bool enabled() const { return !cert_file.empty(); }
};

enum class KeyFallback { kTopic, kClientId, kUsername };

struct MqttListenerOptions {
  std::string name = "devices";
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 1883;  // 0: any free port (tests); port() tells which

  // Limits that keep one device from harming the others.
  std::size_t max_connections = 1000;
  std::uint32_t max_packet_size = 1u << 20;  // announced to MQTT 5 clients
  // Unacknowledged QoS 1/2 PUBLISHes per client (MQTT 5 Receive Maximum,
  // announced). Acknowledgements wait for the commit, so the window must
  // hold a commit interval of one client's traffic.
  std::uint16_t receive_maximum = 1024;
  std::uint16_t topic_alias_maximum = 64;  // per connection, MQTT 5
  // Longest keep alive a client may choose; 0 (none) becomes this too.
  // MQTT 5 clients are told (Server Keep Alive); 3.1.1 clients get TCP
  // keep-alive probes instead.
  std::uint16_t max_keepalive_s = 300;
  std::chrono::milliseconds connect_timeout{10'000};  // TCP accepted, CONNECT not yet complete
  std::chrono::milliseconds packet_timeout{30'000};   // a packet begun must end within this
  std::uint32_t max_session_expiry_s = 24 * 3600;     // persistent sessions kept at most this long
  double max_connects_per_second_per_address = 20;    // burst of the same size

  ListenerTlsOptions tls;
  std::string password_file;  // mosquitto_passwd format; empty: no user names checked
  std::string acl_file;       // mosquitto acl_file format; empty: any topic
  // Clients without a user name: allowed unless a password file is set
  // (then only if this is set explicitly).
  bool allow_anonymous = true;

  MessageMapping mapping;
  // The key when neither key_from_json nor key_from_topic gives one.
  KeyFallback key_fallback = KeyFallback::kTopic;
};

class MqttListener final : public Source {
 public:
  MqttListener(MqttListenerOptions options, buffer::Buffer& buffer, buffer::LogFn log);
  ~MqttListener() override;

  const std::string& name() const override;
  // Binds and listens; throws std::runtime_error if the address cannot be
  // bound (the daemon reports it and does not start).
  void start() override;
  // Stops accepting and reading, waits until what was taken in is
  // committed and acknowledged, then closes every connection (MQTT 5:
  // DISCONNECT "server shutting down"). Wills are not stored for that.
  void stop() override;
  void pause() override;
  void resume() override;
  SourceStats stats() const override;
  std::uint16_t port() const;  // the bound port, once started

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tidegate::drivers::mqtt
