#include "tidegate/drivers/mqtt/codec.h"

#include "wire.h"

namespace tidegate::drivers::mqtt {

using namespace wire;

namespace {

void expect_type(const Packet& packet, PacketType type, const char* name) {
  if (packet.type != type) throw ProtocolError(std::string("expected ") + name);
}

}  // namespace

void append_varint(std::string& out, std::uint32_t value) {
  if (value > 268'435'455) throw ProtocolError("remaining length over 268,435,455 bytes");
  do {
    std::uint8_t b = value % 128;
    value /= 128;
    if (value > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (value > 0);
}

std::string encode_connect(const ConnectOptions& o) {
  std::string body;
  put_string(body, "MQTT");  // 3.1.2.1 Protocol Name
  put_u8(body, static_cast<std::uint8_t>(o.version));  // 3.1.2.2 Protocol Version
  std::uint8_t flags = 0;  // 3.1.2.3 Connect Flags
  if (o.username) flags |= 0x80;
  if (o.password) flags |= 0x40;
  if (o.clean_start) flags |= 0x02;
  put_u8(body, flags);
  put_u16(body, o.keepalive_s);  // 3.1.2.10 Keep Alive
  if (o.version == Version::kV5) {  // 3.1.2.11 CONNECT Properties
    std::string props;
    if (o.session_expiry_s > 0) {
      put_u8(props, 0x11);
      put_u32(props, o.session_expiry_s);
    }
    if (o.receive_maximum != 65535) {  // 65535 is the default when absent
      put_u8(props, 0x21);
      put_u16(props, o.receive_maximum);
    }
    if (o.maximum_packet_size > 0) {
      put_u8(props, 0x27);
      put_u32(props, o.maximum_packet_size);
    }
    append_varint(body, static_cast<std::uint32_t>(props.size()));
    body += props;
  }
  put_string(body, o.client_id);  // 3.1.3.1 Client Identifier
  if (o.username) put_string(body, *o.username);  // 3.1.3.5
  if (o.password) put_string(body, *o.password);  // 3.1.3.6 (Binary Data)
  return frame(PacketType::kConnect, 0, body);
}

std::string encode_subscribe(Version version, std::uint16_t packet_id, const std::vector<Subscription>& subs) {
  if (subs.empty()) throw ProtocolError("SUBSCRIBE needs at least one filter");  // 3.8.3
  std::string body;
  put_u16(body, packet_id);
  if (version == Version::kV5) append_varint(body, 0);  // 3.8.2.1: no properties
  for (const auto& s : subs) {
    put_string(body, s.filter);
    // 3.8.3.1 Subscription Options: QoS in bits 0-1; the rest zero (no
    // No Local, no Retain As Published, retained messages sent on subscribe).
    put_u8(body, static_cast<std::uint8_t>(s.qos & 0x03));
  }
  return frame(PacketType::kSubscribe, 0x02, body);  // 3.8.1: flags MUST be 0010
}

void append_publish(std::string& out, Version version, std::string_view topic, std::string_view payload,
                    std::uint8_t qos, std::uint16_t packet_id, bool retain, bool dup) {
  if (topic.size() > 0xffff) throw ProtocolError("topic longer than 65535 bytes");
  const std::size_t body = 2 + topic.size() + (qos > 0 ? 2 : 0) + (version == Version::kV5 ? 1 : 0) + payload.size();
  if (body > 268'435'455) throw ProtocolError("PUBLISH over 268,435,455 bytes");
  const std::uint8_t flags = static_cast<std::uint8_t>((dup ? 0x08 : 0) | ((qos & 0x03) << 1) | (retain ? 1 : 0));
  put_u8(out, static_cast<std::uint8_t>((static_cast<std::uint8_t>(PacketType::kPublish) << 4) | flags));
  append_varint(out, static_cast<std::uint32_t>(body));
  put_string(out, topic);  // 3.3.2.1
  if (qos > 0) put_u16(out, packet_id);  // 3.3.2.2
  if (version == Version::kV5) append_varint(out, 0);  // 3.3.2.3: no properties
  out.append(payload);  // 3.3.3
}

std::string encode_publish(Version version, std::string_view topic, std::string_view payload, std::uint8_t qos,
                           std::uint16_t packet_id, bool retain, bool dup) {
  std::string out;
  out.reserve(payload.size() + topic.size() + 9);
  append_publish(out, version, topic, payload, qos, packet_id, retain, dup);
  return out;
}

std::string encode_puback(Version, std::uint16_t packet_id) {
  // 3.4.2.1: with Reason Code 0x00 (Success) and no properties, MQTT 5 allows
  // the same two-byte form as 3.1.1.
  std::string body;
  put_u16(body, packet_id);
  return frame(PacketType::kPuback, 0, body);
}

std::string encode_pingreq() { return frame(PacketType::kPingreq, 0, {}); }  // 3.12

std::string encode_disconnect(Version) {
  // 3.14.2.1: Reason Code 0x00 (Normal disconnection) may be omitted; the
  // session is kept for its expiry interval.
  return frame(PacketType::kDisconnect, 0, {});
}

std::optional<Packet> PacketReader::next() {
  const std::size_t available = pending_.size() - consumed_;
  if (available < 2) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(pending_.data() + consumed_);
  std::uint32_t length = 0;
  std::size_t i = 1;
  for (;; ++i) {
    if (i > 4) throw ProtocolError("malformed remaining length");  // 2.1.4: at most four bytes
    if (i >= available) return std::nullopt;
    length |= static_cast<std::uint32_t>(p[i] & 0x7f) << (7 * (i - 1));
    if ((p[i] & 0x80) == 0) break;
  }
  const std::size_t header = i + 1;
  if (length + header > max_packet_size_) {
    throw PacketTooLarge("packet of " + std::to_string(length + header) + " bytes exceeds the maximum of " +
                        std::to_string(max_packet_size_));
  }
  if (available < header + length) return std::nullopt;
  Packet packet;
  const std::uint8_t type = p[0] >> 4;
  if (type == 0) throw ProtocolError("reserved packet type 0");
  packet.type = static_cast<PacketType>(type);
  packet.flags = p[0] & 0x0f;
  packet.body.assign(pending_, consumed_ + header, length);
  consumed_ += header + length;
  // Compact now and then instead of on every packet.
  if (consumed_ > 65536 && consumed_ * 2 > pending_.size()) {
    pending_.erase(0, consumed_);
    consumed_ = 0;
  }
  return packet;
}

Connack parse_connack(Version version, const Packet& packet) {
  expect_type(packet, PacketType::kConnack, "CONNACK");
  Cursor c(packet.body);
  Connack out;
  const std::uint8_t flags = c.u8();  // 3.2.2.1 Connect Acknowledge Flags
  if (flags & 0xfe) throw ProtocolError("CONNACK reserved flags set");
  out.session_present = (flags & 0x01) != 0;
  out.reason = c.u8();  // 3.2.2.2
  if (version == Version::kV5 && !c.empty()) {
    read_properties(c, [&](const Property& p) {  // 3.2.2.3
      switch (p.id) {
        case 0x21: out.receive_maximum = static_cast<std::uint16_t>(p.number); break;
        case 0x13: out.server_keepalive = static_cast<std::uint16_t>(p.number); break;
        case 0x24: out.maximum_qos = static_cast<std::uint8_t>(p.number); break;
        case 0x1F: out.reason_string = p.text; break;
        default: break;
      }
    });
  }
  return out;
}

Publish parse_publish(Version version, const Packet& packet) {
  expect_type(packet, PacketType::kPublish, "PUBLISH");
  Publish out;
  out.dup = (packet.flags & 0x08) != 0;  // 3.3.1.1
  out.qos = static_cast<std::uint8_t>((packet.flags >> 1) & 0x03);  // 3.3.1.2
  out.retain = (packet.flags & 0x01) != 0;  // 3.3.1.3
  if (out.qos == 3) throw ProtocolError("PUBLISH with QoS 3");  // 3.3.1.2: malformed
  Cursor c(packet.body);
  out.topic = c.string();  // 3.3.2.1
  if (out.topic.empty() && version == Version::kV311) throw ProtocolError("PUBLISH with an empty topic");
  if (out.topic.find_first_of("+#") != std::string::npos) throw ProtocolError("PUBLISH topic with a wildcard");
  if (out.qos > 0) {
    out.packet_id = c.u16();  // 3.3.2.2
    if (out.packet_id == 0) throw ProtocolError("PUBLISH with packet identifier 0");
  }
  if (version == Version::kV5) {
    read_properties(c, [&](const Property& p) {  // 3.3.2.3
      if (p.id == 0x03) out.content_type = p.text;
      if (p.id == 0x01) out.payload_is_utf8 = p.number == 1;
      if (p.id == 0x23) {
        // 3.3.2.3.4: an alias of 0 is a protocol error; whether it is within
        // the announced Topic Alias Maximum is the receiver's to check.
        if (p.number == 0) throw ProtocolError("PUBLISH with topic alias 0");
        out.topic_alias = static_cast<std::uint16_t>(p.number);
      }
    });
    if (out.topic.empty() && !out.topic_alias) throw ProtocolError("PUBLISH with an empty topic and no alias");
  }
  out.payload = std::string(c.rest());  // 3.3.3: the rest, byte for byte
  return out;
}

Suback parse_suback(Version version, const Packet& packet) {
  expect_type(packet, PacketType::kSuback, "SUBACK");
  Cursor c(packet.body);
  Suback out;
  out.packet_id = c.u16();  // 3.9.2
  if (version == Version::kV5) read_properties(c, [](const Property&) {});
  while (!c.empty()) out.reasons.push_back(c.u8());  // 3.9.3
  if (out.reasons.empty()) throw ProtocolError("SUBACK without reason codes");
  return out;
}

Puback parse_puback(Version version, const Packet& packet) {
  expect_type(packet, PacketType::kPuback, "PUBACK");
  Cursor c(packet.body);
  Puback out;
  out.packet_id = c.u16();
  if (version == Version::kV5 && !c.empty()) out.reason = c.u8();  // 3.4.2.1
  return out;
}

Disconnect parse_disconnect(Version version, const Packet& packet) {
  expect_type(packet, PacketType::kDisconnect, "DISCONNECT");
  Cursor c(packet.body);
  Disconnect out;
  if (version == Version::kV5 && !c.empty()) {
    out.reason = c.u8();  // 3.14.2.1
    if (!c.empty()) {
      read_properties(c, [&](const Property& p) {
        if (p.id == 0x1F) out.reason_string = p.text;
      });
    }
  }
  return out;
}

std::string connack_refusal_text(Version version, const Connack& ack) {
  return "broker refused the connection: " + connack_reason_text(version, ack.reason) +
         (ack.reason_string.empty() ? "" : " (" + ack.reason_string + ")");
}

std::string connack_reason_text(Version version, std::uint8_t code) {
  if (version == Version::kV311) {  // 3.1.1 section 3.2.2.3
    switch (code) {
      case 0: return "accepted";
      case 1: return "unacceptable protocol version";
      case 2: return "client identifier rejected";
      case 3: return "server unavailable";
      case 4: return "bad user name or password";
      case 5: return "not authorized";
      default: return "return code " + std::to_string(code);
    }
  }
  switch (code) {  // 5.0 section 3.2.2.2
    case 0x00: return "success";
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8C: return "bad authentication method";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x9F: return "connection rate exceeded";
    default: return "reason code " + std::to_string(code);
  }
}

}  // namespace tidegate::drivers::mqtt
