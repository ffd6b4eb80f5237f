// MQTT 3.1.1 and 5.0 packet encoding and decoding: pure functions, no I/O,
// so every packet can be tested byte by byte against the specifications
// (OASIS MQTT Version 5.0, 2019; MQTT Version 3.1.1, 2014). Only what a
// subscribing client needs, plus PUBLISH encoding for the simulator.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tidegate::drivers::mqtt {

// Protocol Level byte of CONNECT (MQTT 5 section 3.1.2.2).
enum class Version : std::uint8_t { kV311 = 4, kV5 = 5 };

enum class PacketType : std::uint8_t {
  kConnect = 1, kConnack = 2, kPublish = 3, kPuback = 4, kPubrec = 5, kPubrel = 6, kPubcomp = 7,
  kSubscribe = 8, kSuback = 9, kUnsubscribe = 10, kUnsuback = 11, kPingreq = 12, kPingresp = 13,
  kDisconnect = 14, kAuth = 15,
};

// A malformed or unexpected packet. The session closes the connection
// (MQTT 5 section 4.13: a protocol error ends the network connection).
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ConnectOptions {
  Version version = Version::kV5;
  std::string client_id;
  bool clean_start = false;  // false: resume the broker's session (persistent)
  std::uint16_t keepalive_s = 30;
  // MQTT 5 only. The session outlives the connection by this long; 0 would
  // end it at disconnect, so a persistent session needs > 0 (section 3.1.2.11.2).
  std::uint32_t session_expiry_s = 0;
  // MQTT 5 only: how many QoS 1/2 publishes the broker may have unacknowledged
  // with us (section 3.1.2.11.3). Large, because our PUBACKs wait for commits.
  std::uint16_t receive_maximum = 65535;
  std::uint32_t maximum_packet_size = 0;  // 0 = not announced
  std::optional<std::string> username;
  std::optional<std::string> password;
};

struct Subscription {
  std::string filter;
  std::uint8_t qos = 1;
};

std::string encode_connect(const ConnectOptions& options);
std::string encode_subscribe(Version version, std::uint16_t packet_id, const std::vector<Subscription>& subs);
std::string encode_publish(Version version, std::string_view topic, std::string_view payload, std::uint8_t qos,
                           std::uint16_t packet_id, bool retain = false, bool dup = false);
std::string encode_puback(Version version, std::uint16_t packet_id);
std::string encode_pingreq();
std::string encode_disconnect(Version version);

// Variable Byte Integer (section 1.5.5).
void append_varint(std::string& out, std::uint32_t value);

struct Packet {
  PacketType type{};
  std::uint8_t flags = 0;  // low nibble of the fixed header
  std::string body;        // variable header and payload
};

// Splits a byte stream into packets (fixed header, section 2.1).
class PacketReader {
 public:
  explicit PacketReader(std::uint32_t max_packet_size = 16u << 20) : max_packet_size_(max_packet_size) {}
  void feed(const char* data, std::size_t size) { pending_.append(data, size); }
  // The next complete packet, or nullopt if more bytes are needed. Throws
  // ProtocolError on a malformed length or a packet over the maximum size.
  std::optional<Packet> next();
  std::size_t buffered() const { return pending_.size() - consumed_; }

 private:
  std::uint32_t max_packet_size_;
  std::string pending_;
  std::size_t consumed_ = 0;
};

struct Connack {
  bool session_present = false;
  std::uint8_t reason = 0;  // v5 reason code / v3.1.1 return code; 0 = success
  std::optional<std::uint16_t> receive_maximum;  // the broker's, v5
  std::optional<std::uint16_t> server_keepalive;
  std::optional<std::uint8_t> maximum_qos;
  std::string reason_string;
};

struct Publish {
  std::string topic;
  std::uint16_t packet_id = 0;  // 0 for QoS 0
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::string payload;
  std::string content_type;  // v5 property 0x03, if sent
  std::optional<bool> payload_is_utf8;  // v5 Payload Format Indicator (0x01)
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> reasons;  // per filter: granted QoS, or >= 0x80 failure
};

struct Puback {
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;
};

struct Disconnect {
  std::uint8_t reason = 0;
  std::string reason_string;
};

Connack parse_connack(Version version, const Packet& packet);
Publish parse_publish(Version version, const Packet& packet);
Suback parse_suback(Version version, const Packet& packet);
Puback parse_puback(Version version, const Packet& packet);
Disconnect parse_disconnect(Version version, const Packet& packet);

// Text for CONNACK codes of either version, for logs.
std::string connack_reason_text(Version version, std::uint8_t code);

}  // namespace tidegate::drivers::mqtt
