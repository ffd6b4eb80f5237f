// The MQTT codec against hand-built packets. Each test names the section of
// the OASIS MQTT 5.0 (or 3.1.1) specification whose bytes it spells out.
#include "tidegate/drivers/mqtt/codec.h"

#include <gtest/gtest.h>

namespace tidegate::drivers::mqtt {
namespace {

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

Packet read_one(const std::string& wire) {
  PacketReader reader;
  reader.feed(wire.data(), wire.size());
  auto p = reader.next();
  if (!p) throw std::runtime_error("incomplete");
  EXPECT_EQ(reader.buffered(), 0u);
  return *p;
}

// 1.5.5 Variable Byte Integer: the table of boundary values.
TEST(MqttCodec, VariableByteIntegerBoundaries_1_5_5) {
  auto enc = [](std::uint32_t v) {
    std::string s;
    append_varint(s, v);
    return s;
  };
  EXPECT_EQ(enc(0), bytes({0x00}));
  EXPECT_EQ(enc(127), bytes({0x7F}));
  EXPECT_EQ(enc(128), bytes({0x80, 0x01}));
  EXPECT_EQ(enc(16383), bytes({0xFF, 0x7F}));
  EXPECT_EQ(enc(16384), bytes({0x80, 0x80, 0x01}));
  EXPECT_EQ(enc(2097151), bytes({0xFF, 0xFF, 0x7F}));
  EXPECT_EQ(enc(2097152), bytes({0x80, 0x80, 0x80, 0x01}));
  EXPECT_EQ(enc(268435455), bytes({0xFF, 0xFF, 0xFF, 0x7F}));
  EXPECT_THROW(enc(268435456), ProtocolError);
}

// 3.1 CONNECT, MQTT 5: persistent session with a session expiry and a
// receive maximum, user name and password.
TEST(MqttCodec, ConnectV5WithSessionExpiryAndReceiveMaximum_3_1) {
  ConnectOptions o;
  o.version = Version::kV5;
  o.client_id = "gw";
  o.clean_start = false;
  o.keepalive_s = 30;
  o.session_expiry_s = 3600;
  o.receive_maximum = 1000;
  o.username = "u";
  o.password = "p";
  const std::string expected = bytes({
      0x10, 29,                          // 2.1.1 CONNECT, remaining length
      0x00, 0x04, 'M', 'Q', 'T', 'T',    // 3.1.2.1 protocol name
      0x05,                              // 3.1.2.2 protocol version 5
      0xC0,                              // 3.1.2.3 flags: user name, password, clean start 0
      0x00, 0x1E,                        // 3.1.2.10 keep alive 30 s
      0x08,                              // 3.1.2.11.1 property length
      0x11, 0x00, 0x00, 0x0E, 0x10,      // 3.1.2.11.2 session expiry 3600
      0x21, 0x03, 0xE8,                  // 3.1.2.11.3 receive maximum 1000
      0x00, 0x02, 'g', 'w',              // 3.1.3.1 client identifier
      0x00, 0x01, 'u',                   // 3.1.3.5 user name
      0x00, 0x01, 'p'});                 // 3.1.3.6 password
  EXPECT_EQ(encode_connect(o), expected);
}

// 3.1.1 section 3.1: CONNECT for MQTT 3.1.1 has no properties; clean session 0.
TEST(MqttCodec, ConnectV311_3_1) {
  ConnectOptions o;
  o.version = Version::kV311;
  o.client_id = "c";
  o.keepalive_s = 60;
  o.session_expiry_s = 3600;  // ignored: no properties in 3.1.1
  EXPECT_EQ(encode_connect(o), bytes({0x10, 13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x00, 0x00, 0x3C,
                                      0x00, 0x01, 'c'}));
}

// 3.8 SUBSCRIBE: fixed header flags 0010 (3.8.1), empty properties,
// subscription options carrying the QoS (3.8.3.1).
TEST(MqttCodec, SubscribeV5_3_8) {
  EXPECT_EQ(encode_subscribe(Version::kV5, 7, {{"a/#", 1}, {"b", 0}}),
            bytes({0x82, 13, 0x00, 0x07, 0x00, 0x00, 0x03, 'a', '/', '#', 0x01, 0x00, 0x01, 'b', 0x00}));
  EXPECT_EQ(encode_subscribe(Version::kV311, 7, {{"b", 1}}), bytes({0x82, 6, 0x00, 0x07, 0x00, 0x01, 'b', 0x01}));
}

// 3.4 PUBACK: packet identifier only (reason code 0 may be omitted, 3.4.2.1).
TEST(MqttCodec, Puback_3_4) {
  EXPECT_EQ(encode_puback(Version::kV5, 0x1234), bytes({0x40, 0x02, 0x12, 0x34}));
}

// 3.12 PINGREQ and 3.14 DISCONNECT.
TEST(MqttCodec, PingreqAndDisconnect_3_12_3_14) {
  EXPECT_EQ(encode_pingreq(), bytes({0xC0, 0x00}));
  EXPECT_EQ(encode_disconnect(Version::kV5), bytes({0xE0, 0x00}));
}

// 3.2 CONNACK, MQTT 5: session present, success, properties from the broker.
TEST(MqttCodec, ConnackV5WithProperties_3_2) {
  auto p = read_one(bytes({0x20, 11, 0x01, 0x00, 8, 0x21, 0x00, 0x14, 0x13, 0x00, 0x3C, 0x24, 0x01}));
  auto c = parse_connack(Version::kV5, p);
  EXPECT_TRUE(c.session_present);
  EXPECT_EQ(c.reason, 0);
  EXPECT_EQ(c.receive_maximum, 20);
  EXPECT_EQ(c.server_keepalive, 60);
  EXPECT_EQ(c.maximum_qos, 1);
}

// 3.2.2.2: a refused connection carries the reason code and a reason string.
TEST(MqttCodec, ConnackV5Refused_3_2_2_2) {
  auto p = read_one(bytes({0x20, 9, 0x00, 0x87, 6, 0x1F, 0x00, 0x03, 'n', 'o', '!'}));
  auto c = parse_connack(Version::kV5, p);
  EXPECT_EQ(c.reason, 0x87);
  EXPECT_EQ(c.reason_string, "no!");
  EXPECT_EQ(connack_reason_text(Version::kV5, c.reason), "not authorized");
  EXPECT_EQ(connack_reason_text(Version::kV311, 5), "not authorized");
}

// 3.3 PUBLISH QoS 1 with DUP, properties (content type, payload format,
// user property) and a binary payload kept byte for byte.
TEST(MqttCodec, PublishV5Qos1WithProperties_3_3) {
  std::string wire = bytes({0x3A, 32,                           // 2.1.1 PUBLISH, DUP, QoS 1; length
                            0x00, 0x03, 's', '/', '1',            // 3.3.2.1 topic name
                            0x00, 0x05,                           // 3.3.2.2 packet identifier
                            15,                                   // 3.3.2.3.1 property length
                            0x03, 0x00, 0x04, 'j', 's', 'o', 'n', // 3.3.2.3.9 content type
                            0x01, 0x01,                           // 3.3.2.3.2 payload format: UTF-8
                            0x26, 0x00, 0x01, 'k', 0x00, 0x00});  // 3.3.2.3.7 user property k=""
  wire += std::string("\x00\xff{\"t\":1}", 9);                   // 3.3.3 payload
  auto p = read_one(wire);
  auto pub = parse_publish(Version::kV5, p);
  EXPECT_EQ(pub.topic, "s/1");
  EXPECT_EQ(pub.qos, 1);
  EXPECT_TRUE(pub.dup);
  EXPECT_FALSE(pub.retain);
  EXPECT_EQ(pub.packet_id, 5);
  EXPECT_EQ(pub.content_type, "json");
  EXPECT_EQ(pub.payload_is_utf8, true);
  EXPECT_EQ(pub.payload, std::string("\x00\xff{\"t\":1}", 9));
}

// 3.3 PUBLISH QoS 0 in 3.1.1: no packet identifier, no properties.
TEST(MqttCodec, PublishV311Qos0_3_3) {
  auto p = read_one(bytes({0x31, 7, 0x00, 0x01, 't', 'h', 'e', 'y', '!'}));
  auto pub = parse_publish(Version::kV311, p);
  EXPECT_EQ(pub.topic, "t");
  EXPECT_EQ(pub.qos, 0);
  EXPECT_TRUE(pub.retain);
  EXPECT_EQ(pub.packet_id, 0);
  EXPECT_EQ(pub.payload, "hey!");
}

TEST(MqttCodec, EncodedPublishParsesBack) {
  for (auto v : {Version::kV311, Version::kV5}) {
    auto wire = encode_publish(v, "sensors/d1/t", std::string(300, '\x01'), 1, 99);
    auto pub = parse_publish(v, read_one(wire));
    EXPECT_EQ(pub.topic, "sensors/d1/t");
    EXPECT_EQ(pub.packet_id, 99);
    EXPECT_EQ(pub.payload, std::string(300, '\x01'));
  }
}

// Malformed PUBLISH packets (3.3.1.2 QoS 3; 3.3.2.2 packet id 0; 3.3.2.1
// wildcard in a topic name; 3.3.2.3.4 topic alias we never allowed).
TEST(MqttCodec, MalformedPublishIsAProtocolError_3_3) {
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x36, 4, 0x00, 0x01, 't', 0x00}))), ProtocolError);
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x32, 6, 0x00, 0x01, 't', 0x00, 0x00, 0x00}))),
               ProtocolError);
  EXPECT_THROW(parse_publish(Version::kV311, read_one(bytes({0x30, 3, 0x00, 0x01, '#'}))), ProtocolError);
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x30, 6, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01}))),
               ProtocolError);
  // Truncated: topic length says 5, only 1 byte follows.
  EXPECT_THROW(parse_publish(Version::kV311, read_one(bytes({0x30, 3, 0x00, 0x05, 't'}))), ProtocolError);
  // Unknown property identifier (2.2.2.2).
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x30, 6, 0x00, 0x01, 't', 0x02, 0x7E, 0x00}))),
               ProtocolError);
}

// 3.9 SUBACK: granted QoS per filter, 0x87 = not authorized (3.9.3).
TEST(MqttCodec, SubackV5_3_9) {
  auto s = parse_suback(Version::kV5, read_one(bytes({0x90, 5, 0x00, 0x07, 0x00, 0x01, 0x87})));
  EXPECT_EQ(s.packet_id, 7);
  EXPECT_EQ(s.reasons, (std::vector<std::uint8_t>{0x01, 0x87}));
}

// 3.14 DISCONNECT from the broker with a reason (e.g. 0x8E session taken over).
TEST(MqttCodec, DisconnectV5WithReason_3_14) {
  auto d = parse_disconnect(Version::kV5, read_one(bytes({0xE0, 0x06, 0x8E, 0x04, 0x1F, 0x00, 0x01, 'x'})));
  EXPECT_EQ(d.reason, 0x8E);
  EXPECT_EQ(d.reason_string, "x");
}

// 2.1.4: the reader splits a stream at any byte boundary and rejects a
// remaining length of more than four bytes or over the maximum size.
TEST(MqttCodec, ReaderHandlesSplitStreamsAndRejectsBadLengths_2_1_4) {
  std::string stream = encode_publish(Version::kV5, "a", std::string(200, 'x'), 1, 1) + encode_pingreq() +
                       encode_publish(Version::kV5, "b", "y", 0, 0);
  PacketReader reader;
  std::vector<Packet> got;
  for (char ch : stream) {
    reader.feed(&ch, 1);
    while (auto p = reader.next()) got.push_back(*p);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].type, PacketType::kPingreq);
  EXPECT_EQ(parse_publish(Version::kV5, got[2]).topic, "b");

  PacketReader bad;
  auto five = bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01});
  bad.feed(five.data(), five.size());
  EXPECT_THROW(bad.next(), ProtocolError);

  PacketReader small(100);
  auto big = encode_publish(Version::kV5, "a", std::string(200, 'x'), 0, 0);
  small.feed(big.data(), big.size());
  EXPECT_THROW(small.next(), ProtocolError);
}

}  // namespace
}  // namespace tidegate::drivers::mqtt
