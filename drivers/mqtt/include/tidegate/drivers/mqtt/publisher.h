// A publishing MQTT client for a caller that sends in batches (the upstream
// MQTT sink): the batch is framed into one buffer, written in as few writes
// as the in-flight window allows, and the call returns when every PUBACK is
// in or the time is up. It runs its own io_context on the caller's thread,
// so it has no threads, no locks and no per-message objects (Paho C kept a
// token, a list node and two thread hand-offs per message: bench/compare).
//
// Not thread-safe: one caller (the sink's forwarder thread) at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tidegate/drivers/mqtt/codec.h"
#include "tidegate/drivers/mqtt/tls_options.h"

namespace tidegate::drivers::mqtt {

struct PublisherOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  Version version = Version::kV311;
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  TlsOptions tls;
  std::uint8_t qos = 1;  // 0 or 1
  std::uint16_t keepalive_s = 60;
  std::chrono::milliseconds timeout{10'000};  // connecting; the PUBACKs of one batch
  // QoS 1 publishes unacknowledged at once; an MQTT 5 broker's Receive
  // Maximum lowers it (3.2.2.3.3).
  std::uint16_t max_inflight = 2000;
};

// Per message of a batch: no PUBACK, or the PUBACK's reason code (0 = taken;
// MQTT 5 codes >= 0x80 say why the broker refused it).
inline constexpr std::uint16_t kNoPuback = 0x100;

struct PublishResult {
  std::vector<std::uint16_t> reasons;  // one per message, in order
  std::string error;                   // why not all were acknowledged
  std::size_t acknowledged() const;    // reason < 0x80
};

class Publisher {
 public:
  explicit Publisher(PublisherOptions options);
  ~Publisher();  // DISCONNECT, if connected
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Frames one message into the next batch (copies topic and payload once,
  // into the batch's write buffer). Throws ProtocolError for a topic over
  // 65,535 bytes.
  void add(std::string_view topic, std::string_view payload);
  std::size_t batch_size() const;

  // Connects if needed, sends the batch in order and waits up to `timeout`
  // for its PUBACKs. A batch that is not completely acknowledged ends the
  // connection (its packet ids then mean nothing to the broker), so the next
  // batch starts clean. The batch is empty afterwards.
  PublishResult publish();

  // Between batches: notices a broker that closed the connection and keeps
  // an idle one alive (PINGREQ at half the keep alive). Cheap; call it when
  // there is nothing to send.
  void service();

  bool connected() const;
  std::uint64_t connects() const;  // successful CONNACKs since construction
  std::string uri() const;         // mqtt://host:port or mqtts://host:port

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::drivers::mqtt
