// The server role of the MQTT codec: what the listener reads from devices
// (CONNECT, PUBREL, SUBSCRIBE, DISCONNECT) and writes back to them.
#include "tidegate/drivers/mqtt/codec.h"
#include "wire.h"

namespace tidegate::drivers::mqtt {

using namespace wire;

namespace {

void expect(const Packet& packet, PacketType type, std::uint8_t flags, const char* name) {
  if (packet.type != type) throw ProtocolError(std::string("expected ") + name);
  // 2.1.3: reserved flag bits that are not as specified make the packet malformed.
  if (packet.flags != flags) throw ProtocolError(std::string(name) + " with reserved flags set wrongly");
}

std::string properties_block(const std::string& props) {
  std::string out;
  append_varint(out, static_cast<std::uint32_t>(props.size()));
  return out + props;
}

void put_reason_string(std::string& props, const std::string& text) {
  if (text.empty()) return;
  put_u8(props, 0x1F);
  put_string(props, text.substr(0, 512));  // a log line, not an essay
}

}  // namespace

Connect parse_connect(const Packet& packet) {
  expect(packet, PacketType::kConnect, 0, "CONNECT");
  Cursor c(packet.body);
  const std::string name = c.string();  // 3.1.2.1
  const std::uint8_t level = c.u8();    // 3.1.2.2
  if (name == "MQIsdp") throw ConnectRefused(Version::kV311, 0x01, "MQTT 3.1 (MQIsdp) is not supported");
  if (name != "MQTT") throw ProtocolError("protocol name '" + name + "' is not MQTT");
  if (level != 4 && level != 5) {
    throw ConnectRefused(Version::kV311, 0x01, "protocol level " + std::to_string(level) + " is not supported");
  }
  Connect out;
  out.version = static_cast<Version>(level);
  const std::uint8_t flags = c.u8();  // 3.1.2.3
  if (flags & 0x01) throw ProtocolError("CONNECT reserved flag set");
  out.clean_start = (flags & 0x02) != 0;
  const bool will = (flags & 0x04) != 0;
  const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
  const bool will_retain = (flags & 0x20) != 0;
  const bool has_password = (flags & 0x40) != 0;
  const bool has_username = (flags & 0x80) != 0;
  if (will_qos == 3) throw ProtocolError("CONNECT with will QoS 3");
  if (!will && (will_qos != 0 || will_retain)) throw ProtocolError("CONNECT with will QoS or retain but no will");
  if (out.version == Version::kV311 && has_password && !has_username) {
    throw ProtocolError("CONNECT with a password but no user name");  // 3.1.1 section 3.1.2.9
  }
  out.keepalive_s = c.u16();  // 3.1.2.10

  if (out.version == Version::kV5) {  // 3.1.2.11
    read_properties(c, [&](const Property& p) {
      switch (p.id) {
        case 0x11: out.session_expiry_s = p.number; break;
        case 0x21:
          if (p.number == 0) throw ProtocolError("CONNECT with Receive Maximum 0");
          out.receive_maximum = static_cast<std::uint16_t>(p.number);
          break;
        case 0x27:
          if (p.number == 0) throw ProtocolError("CONNECT with Maximum Packet Size 0");
          out.maximum_packet_size = p.number;
          break;
        case 0x22: out.topic_alias_maximum = static_cast<std::uint16_t>(p.number); break;
        case 0x15:
          throw ConnectRefused(Version::kV5, 0x8C, "enhanced authentication (" + p.text + ") is not supported");
        case 0x16: case 0x17: case 0x19: case 0x26: break;
        default: throw ProtocolError("property " + std::to_string(p.id) + " is not allowed in CONNECT");
      }
    });
  }

  out.client_id = c.string();  // 3.1.3.1
  if (will) {
    Will w;
    w.qos = will_qos;
    w.retain = will_retain;
    if (out.version == Version::kV5) {  // 3.1.3.2 Will Properties
      read_properties(c, [&](const Property& p) {
        if (p.id == 0x18) w.delay_s = p.number;
        if (p.id == 0x03) w.content_type = p.text;
      });
    }
    w.topic = c.string();  // 3.1.3.3
    if (w.topic.empty() || w.topic.find_first_of("+#") != std::string::npos) {
      throw ProtocolError("will topic '" + w.topic + "' is empty or has a wildcard");
    }
    w.payload = c.string();  // 3.1.3.4 (Binary Data)
    out.will = std::move(w);
  }
  if (has_username) out.username = c.string();  // 3.1.3.5
  if (has_password) out.password = c.string();  // 3.1.3.6
  if (!c.empty()) throw ProtocolError("CONNECT has bytes after its payload");
  if (out.version == Version::kV311 && out.client_id.empty() && !out.clean_start) {
    // 3.1.1 section 3.1.3.1: a zero-byte id needs CleanSession = 1.
    throw ConnectRefused(Version::kV311, 0x02, "empty client id with a persistent session");
  }
  return out;
}

std::string encode_connack(Version version, bool session_present, std::uint8_t reason, const ConnackProperties& p) {
  std::string body;
  put_u8(body, session_present && reason == 0 ? 0x01 : 0x00);  // 3.2.2.1.1: never with a refusal
  put_u8(body, reason);
  if (version == Version::kV5) {
    std::string props;
    if (p.receive_maximum != 65535) {
      put_u8(props, 0x21);
      put_u16(props, p.receive_maximum);
    }
    if (p.maximum_packet_size > 0) {
      put_u8(props, 0x27);
      put_u32(props, p.maximum_packet_size);
    }
    if (p.topic_alias_maximum > 0) {
      put_u8(props, 0x22);
      put_u16(props, p.topic_alias_maximum);
    }
    if (p.server_keepalive) {
      put_u8(props, 0x13);
      put_u16(props, *p.server_keepalive);
    }
    if (p.session_expiry_s) {
      put_u8(props, 0x11);
      put_u32(props, *p.session_expiry_s);
    }
    if (!p.assigned_client_id.empty()) {
      put_u8(props, 0x12);
      put_string(props, p.assigned_client_id);
    }
    if (p.announce_no_subscriptions) {
      for (int id : {0x25, 0x28, 0x29, 0x2A}) {  // retain, wildcard, subscription ids, shared
        put_u8(props, static_cast<std::uint8_t>(id));
        put_u8(props, 0);
      }
    }
    put_reason_string(props, p.reason_string);
    body += properties_block(props);
  }
  return frame(PacketType::kConnack, 0, body);
}

std::string encode_publish_ack(Version version, PacketType type, std::uint16_t packet_id, std::uint8_t reason) {
  std::string body;
  put_u16(body, packet_id);
  // 3.4.2.1: with Success the reason may be omitted; otherwise it follows,
  // and a Remaining Length under 4 means no properties (3.4.2.2.1).
  if (version == Version::kV5 && reason != 0) put_u8(body, reason);
  return frame(type, type == PacketType::kPubrel ? 0x02 : 0, body);
}

Pubrel parse_pubrel(Version version, const Packet& packet) {
  expect(packet, PacketType::kPubrel, 0x02, "PUBREL");  // 3.6.1
  Cursor c(packet.body);
  Pubrel out;
  out.packet_id = c.u16();
  if (version == Version::kV5 && !c.empty()) {
    out.reason = c.u8();
    if (!c.empty()) read_properties(c, [](const Property&) {});
  }
  return out;
}

namespace {

SubscribeRequest parse_filters(Version version, const Packet& packet, bool with_options) {
  Cursor c(packet.body);
  SubscribeRequest out;
  out.packet_id = c.u16();
  if (out.packet_id == 0) throw ProtocolError("packet identifier 0");
  if (version == Version::kV5) read_properties(c, [](const Property&) {});
  while (!c.empty()) {
    out.filters.push_back(c.string());
    if (with_options) c.u8();
  }
  if (out.filters.empty()) throw ProtocolError("no topic filter");  // 3.8.3, 3.10.3
  return out;
}

}  // namespace

SubscribeRequest parse_subscribe(Version version, const Packet& packet) {
  expect(packet, PacketType::kSubscribe, 0x02, "SUBSCRIBE");  // 3.8.1
  return parse_filters(version, packet, true);
}

SubscribeRequest parse_unsubscribe(Version version, const Packet& packet) {
  expect(packet, PacketType::kUnsubscribe, 0x02, "UNSUBSCRIBE");  // 3.10.1
  return parse_filters(version, packet, false);
}

std::string encode_suback(Version version, std::uint16_t packet_id, const std::vector<std::uint8_t>& reasons,
                          const std::string& reason_string) {
  std::string body;
  put_u16(body, packet_id);
  if (version == Version::kV5) {
    std::string props;
    put_reason_string(props, reason_string);
    body += properties_block(props);
  }
  for (auto r : reasons) put_u8(body, version == Version::kV311 && r >= 0x80 ? 0x80 : r);  // 3.1.1: 0x80 = failure
  return frame(PacketType::kSuback, 0, body);
}

std::string encode_unsuback(Version version, std::uint16_t packet_id, std::size_t filters, std::uint8_t reason) {
  std::string body;
  put_u16(body, packet_id);
  if (version == Version::kV5) {  // 3.11.2.1, 3.11.3
    body += properties_block({});
    body.append(filters, static_cast<char>(reason));
  }
  return frame(PacketType::kUnsuback, 0, body);
}

std::string encode_pingresp() { return frame(PacketType::kPingresp, 0, {}); }  // 3.13

std::string encode_server_disconnect(std::uint8_t reason, const std::string& reason_string) {
  std::string body;
  put_u8(body, reason);
  std::string props;
  put_reason_string(props, reason_string);
  body += properties_block(props);
  return frame(PacketType::kDisconnect, 0, body);
}

ClientDisconnect parse_client_disconnect(Version version, const Packet& packet) {
  expect(packet, PacketType::kDisconnect, 0, "DISCONNECT");
  Cursor c(packet.body);
  ClientDisconnect out;
  if (version == Version::kV5 && !c.empty()) {
    out.reason = c.u8();
    if (!c.empty()) {
      read_properties(c, [&](const Property& p) {
        if (p.id == 0x11) out.session_expiry_s = p.number;
      });
    }
  }
  return out;
}

}  // namespace tidegate::drivers::mqtt
