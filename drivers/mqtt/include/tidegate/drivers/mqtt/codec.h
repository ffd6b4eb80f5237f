// MQTT 3.1.1 and 5.0 packet encoding and decoding: pure functions, no I/O,
// so every packet can be tested byte by byte against the specifications
// (OASIS MQTT Version 5.0, 2019; MQTT Version 3.1.1, 2014). Two roles: what
// a subscribing client needs (the MQTT source; PUBLISH encoding for the
// simulator), and what the listener needs as the server of publishing
// devices (the second half of this file).
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

// A packet over the receiver's maximum size (MQTT 5 reason 0x95).
class PacketTooLarge : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
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
// The same PUBLISH appended to `out`: a publisher frames a whole batch into
// one buffer (one write, no per-message allocation).
void append_publish(std::string& out, Version version, std::string_view topic, std::string_view payload,
                    std::uint8_t qos, std::uint16_t packet_id, bool retain = false, bool dup = false);
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
  // ProtocolError on a malformed length, PacketTooLarge on a packet over the
  // maximum size (known from its header, before its bytes arrive).
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
  // v5 Topic Alias (0x23). With an empty topic the receiver looks the alias
  // up; with both, it records the topic under the alias (3.3.2.3.4).
  std::optional<std::uint16_t> topic_alias;
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
// "broker refused the connection: <reason> (<reason string>)", for a client's error.
std::string connack_refusal_text(Version version, const Connack& ack);

// ---------------------------------------------------------------- server role
// The packets the listener reads from devices and writes back to them.

// A CONNECT the server must refuse with a CONNACK reason (then close), as
// opposed to a malformed packet (just close). 3.1.4: e.g. an unsupported
// protocol level, answered in the version the client can read.
class ConnectRefused : public ProtocolError {
 public:
  ConnectRefused(Version answer_in, std::uint8_t reason, const std::string& what)
      : ProtocolError(what), answer_in_(answer_in), reason_(reason) {}
  Version answer_in() const { return answer_in_; }
  std::uint8_t reason() const { return reason_; }

 private:
  Version answer_in_;
  std::uint8_t reason_;
};

struct Will {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  std::uint32_t delay_s = 0;  // v5 Will Delay Interval (3.1.3.2.2)
  std::string content_type;
};

struct Connect {
  Version version = Version::kV311;
  std::string client_id;  // may be empty: the server assigns one (3.1.3.1)
  bool clean_start = true;
  std::uint16_t keepalive_s = 0;
  std::uint32_t session_expiry_s = 0;   // v5; 3.1.1 persistent sessions are the caller's choice
  std::uint16_t receive_maximum = 65535;  // what the client accepts from us (unused: we send no PUBLISH)
  std::uint32_t maximum_packet_size = 0;  // 0: no limit announced
  std::uint16_t topic_alias_maximum = 0;  // aliases we may send (we send none)
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary data
};

// Throws ConnectRefused for a well-formed CONNECT the server cannot accept,
// ProtocolError for a malformed one.
Connect parse_connect(const Packet& packet);

struct ConnackProperties {  // v5 (3.2.2.3); ignored for 3.1.1
  std::uint16_t receive_maximum = 65535;       // 0x21: our window of unacknowledged QoS 1/2
  std::uint32_t maximum_packet_size = 0;       // 0x27, 0 = not sent
  std::uint16_t topic_alias_maximum = 0;       // 0x22: aliases the client may use
  std::optional<std::uint16_t> server_keepalive;  // 0x13: overrides the client's
  std::optional<std::uint32_t> session_expiry_s;  // 0x11: when we grant less than asked
  std::string assigned_client_id;              // 0x12
  std::string reason_string;                   // 0x1F
  // Capabilities of an ingest endpoint: no retained messages, no
  // subscriptions of any kind (0x25, 0x28, 0x29, 0x2A set to 0).
  bool announce_no_subscriptions = true;
};

std::string encode_connack(Version version, bool session_present, std::uint8_t reason,
                           const ConnackProperties& properties = {});

// PUBACK, PUBREC, PUBCOMP (3.4, 3.5, 3.7): packet id and, with MQTT 5 and a
// reason other than 0, the reason code.
std::string encode_publish_ack(Version version, PacketType type, std::uint16_t packet_id, std::uint8_t reason = 0);

struct Pubrel {
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;  // 0x92: packet identifier not found (the client's view)
};
Pubrel parse_pubrel(Version version, const Packet& packet);

// SUBSCRIBE / UNSUBSCRIBE (3.8, 3.10): the packet id and the filters, so the
// server can answer each one.
struct SubscribeRequest {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;
};
SubscribeRequest parse_subscribe(Version version, const Packet& packet);
SubscribeRequest parse_unsubscribe(Version version, const Packet& packet);
std::string encode_suback(Version version, std::uint16_t packet_id, const std::vector<std::uint8_t>& reasons,
                          const std::string& reason_string = {});
std::string encode_unsuback(Version version, std::uint16_t packet_id, std::size_t filters, std::uint8_t reason);

std::string encode_pingresp();

// A server's DISCONNECT (MQTT 5 only, 3.14): reason code and a reason string
// the device's log can show. 3.1.1 has no server DISCONNECT: just close.
std::string encode_server_disconnect(std::uint8_t reason, const std::string& reason_string);

// DISCONNECT from a client, v5 with its Session Expiry Interval (3.14.2.2.2).
struct ClientDisconnect {
  std::uint8_t reason = 0;  // 0x04: disconnect with will message
  std::optional<std::uint32_t> session_expiry_s;
};
ClientDisconnect parse_client_disconnect(Version version, const Packet& packet);

}  // namespace tidegate::drivers::mqtt
