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
// wildcard in a topic name; 3.3.2.3.4 topic alias 0).
TEST(MqttCodec, MalformedPublishIsAProtocolError_3_3) {
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x36, 4, 0x00, 0x01, 't', 0x00}))), ProtocolError);
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x32, 6, 0x00, 0x01, 't', 0x00, 0x00, 0x00}))),
               ProtocolError);
  EXPECT_THROW(parse_publish(Version::kV311, read_one(bytes({0x30, 3, 0x00, 0x01, '#'}))), ProtocolError);
  // Topic alias 0 (3.3.2.3.4), and an empty topic without an alias.
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x30, 6, 0x00, 0x00, 0x03, 0x23, 0x00, 0x00}))),
               ProtocolError);
  EXPECT_THROW(parse_publish(Version::kV5, read_one(bytes({0x30, 3, 0x00, 0x00, 0x00}))), ProtocolError);
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

// 3.3.2.3.4: an empty topic with an alias looks the topic up; both set it.
TEST(MqttCodec, PublishWithTopicAliasV5_3_3_2_3_4) {
  auto use = parse_publish(Version::kV5, read_one(bytes({0x30, 7, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05, 'x'})));
  EXPECT_EQ(use.topic, "");
  EXPECT_EQ(use.topic_alias, 5);
  EXPECT_EQ(use.payload, "x");
  auto set = parse_publish(Version::kV5, read_one(bytes({0x30, 8, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x05, 'y'})));
  EXPECT_EQ(set.topic, "t");
  EXPECT_EQ(set.topic_alias, 5);
}

// ---------------------------------------------------------------- server role

// 3.1 CONNECT, MQTT 3.1.1: the example bytes of the specification's
// figures, with a will, user name and password.
TEST(MqttCodec, ParsesConnectV311WithWillAndCredentials_3_1) {
  const auto wire = bytes({0x10, 0x24,                                // fixed header, remaining length 36
                           0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,      // protocol name and level
                           0xEC,                                      // user, password, will retain, will QoS 1, will
                           0x00, 0x3C,                                // keep alive 60
                           0x00, 0x02, 'c', '1',                      // client id
                           0x00, 0x03, 'w', '/', 't',                 // will topic
                           0x00, 0x03, 'b', 'y', 'e',                 // will payload
                           0x00, 0x04, 'u', 's', 'e', 'r',            // user name
                           0x00, 0x04, 'p', 'a', 's', 's'});          // password
  const auto c = parse_connect(read_one(wire));
  EXPECT_EQ(c.version, Version::kV311);
  EXPECT_EQ(c.client_id, "c1");
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.keepalive_s, 60);
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->topic, "w/t");
  EXPECT_EQ(c.will->payload, "bye");
  EXPECT_EQ(c.will->qos, 1);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pass");
}

// 3.1.2.11 CONNECT properties and 3.1.3.2 will properties, MQTT 5.
TEST(MqttCodec, ParsesConnectV5Properties_3_1_2_11) {
  const auto wire = bytes({0x10, 0x27, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
                           0x06,                                            // will, clean start
                           0x00, 0x0A,                                      // keep alive 10
                           0x0D,                                            // properties: 13 bytes
                           0x11, 0x00, 0x00, 0x0E, 0x10,                    // session expiry 3600
                           0x21, 0x00, 0x14,                                // receive maximum 20
                           0x27, 0x00, 0x01, 0x00, 0x00,                    // maximum packet size 65536
                           0x00, 0x00,                                      // empty client id
                           0x05, 0x18, 0x00, 0x00, 0x00, 0x1E,              // will delay 30
                           0x00, 0x01, 'w', 0x00, 0x02, 'o', 'k'});         // will topic and payload
  const auto c = parse_connect(read_one(wire));
  EXPECT_EQ(c.version, Version::kV5);
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.session_expiry_s, 3600u);
  EXPECT_EQ(c.receive_maximum, 20);
  EXPECT_EQ(c.maximum_packet_size, 65536u);
  EXPECT_EQ(c.client_id, "");
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->delay_s, 30u);
  EXPECT_EQ(c.will->payload, "ok");
}

// 3.1.2.2 / 3.1.4: an unsupported level is refused with a CONNACK a 3.1.1
// client can read (return code 1); a malformed CONNECT is an error.
TEST(MqttCodec, RefusesUnsupportedOrMalformedConnect_3_1_4) {
  try {
    parse_connect(read_one(bytes({0x10, 0x0C, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x0A})));
    FAIL() << "MQTT 3.1 accepted";
  } catch (const ConnectRefused& e) {
    EXPECT_EQ(e.answer_in(), Version::kV311);
    EXPECT_EQ(e.reason(), 0x01);
  }
  // Reserved flag (3.1.2.3), will QoS 3 (3.1.2.6).
  EXPECT_THROW(parse_connect(read_one(bytes({0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x0A,
                                             0x00, 0x00}))),
               ProtocolError);
  EXPECT_THROW(parse_connect(read_one(bytes({0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x1E, 0x00, 0x0A,
                                             0x00, 0x00}))),
               ProtocolError);
  // 3.1.1: an empty client id needs a clean session (return code 2).
  try {
    parse_connect(read_one(bytes({0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x00, 0x00, 0x0A, 0x00, 0x00})));
    FAIL() << "empty id with a persistent session accepted";
  } catch (const ConnectRefused& e) {
    EXPECT_EQ(e.reason(), 0x02);
  }
  // Enhanced authentication (3.1.2.11.9) is refused with 0x8C.
  try {
    parse_connect(read_one(bytes({0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x0A, 0x04, 0x15,
                                  0x00, 0x01, 'x', 0x00, 0x00})));
    FAIL() << "AUTH method accepted";
  } catch (const ConnectRefused& e) {
    EXPECT_EQ(e.answer_in(), Version::kV5);
    EXPECT_EQ(e.reason(), 0x8C);
  }
}

// 3.2 CONNACK: 3.1.1 is four bytes; MQTT 5 carries the server's limits.
TEST(MqttCodec, EncodesConnack_3_2) {
  EXPECT_EQ(encode_connack(Version::kV311, true, 0), bytes({0x20, 0x02, 0x01, 0x00}));
  EXPECT_EQ(encode_connack(Version::kV311, true, 0x05), bytes({0x20, 0x02, 0x00, 0x05}));  // 3.2.2-4: no session on refusal
  ConnackProperties p;
  p.receive_maximum = 100;
  p.topic_alias_maximum = 8;
  p.server_keepalive = 60;
  p.announce_no_subscriptions = false;
  EXPECT_EQ(encode_connack(Version::kV5, false, 0, p),
            bytes({0x20, 0x0C, 0x00, 0x00, 0x09, 0x21, 0x00, 0x64, 0x22, 0x00, 0x08, 0x13, 0x00, 0x3C}));
  // The client's view of it, through the client's parser.
  ConnackProperties q;
  q.reason_string = "busy";
  const auto back = parse_connack(Version::kV5, read_one(encode_connack(Version::kV5, false, 0x97, q)));
  EXPECT_EQ(back.reason, 0x97);
  EXPECT_EQ(back.reason_string, "busy");
}

// 3.4 / 3.5 / 3.7 acknowledgements, 3.6 PUBREL (flags 0010, 3.6.1).
TEST(MqttCodec, PublishAcknowledgementsAndPubrel_3_4_to_3_7) {
  EXPECT_EQ(encode_publish_ack(Version::kV5, PacketType::kPuback, 0x1234), bytes({0x40, 0x02, 0x12, 0x34}));
  EXPECT_EQ(encode_publish_ack(Version::kV311, PacketType::kPubrec, 7), bytes({0x50, 0x02, 0x00, 0x07}));
  EXPECT_EQ(encode_publish_ack(Version::kV5, PacketType::kPubcomp, 7, 0x92), bytes({0x70, 0x03, 0x00, 0x07, 0x92}));
  EXPECT_EQ(parse_pubrel(Version::kV311, read_one(bytes({0x62, 0x02, 0x00, 0x07}))).packet_id, 7);
  EXPECT_THROW(parse_pubrel(Version::kV311, read_one(bytes({0x60, 0x02, 0x00, 0x07}))), ProtocolError);
}

// 3.8 SUBSCRIBE is read so it can be refused per filter (3.9.3: 0x80 in
// 3.1.1, a v5 reason code with a reason string in MQTT 5).
TEST(MqttCodec, SubscribeIsReadAndRefused_3_8_3_9) {
  const auto req = parse_subscribe(Version::kV311, read_one(bytes({0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 'a', '/',
                                                                   '#', 0x01})));
  EXPECT_EQ(req.packet_id, 10);
  EXPECT_EQ(req.filters, std::vector<std::string>{"a/#"});
  EXPECT_EQ(encode_suback(Version::kV311, 10, {0x87}), bytes({0x90, 0x03, 0x00, 0x0A, 0x80}));
  const auto v5 = parse_suback(Version::kV5, read_one(encode_suback(Version::kV5, 10, {0x87, 0x87}, "no")));
  EXPECT_EQ(v5.reasons, (std::vector<std::uint8_t>{0x87, 0x87}));
  EXPECT_THROW(parse_subscribe(Version::kV311, read_one(bytes({0x80, 0x02, 0x00, 0x0A}))), ProtocolError);
}

// 3.14: a server DISCONNECT carries a reason the client's parser reads back;
// a client's carries its new session expiry.
TEST(MqttCodec, DisconnectBothWays_3_14) {
  const auto d = parse_disconnect(Version::kV5, read_one(encode_server_disconnect(0x97, "buffer full")));
  EXPECT_EQ(d.reason, 0x97);
  EXPECT_EQ(d.reason_string, "buffer full");
  const auto c = parse_client_disconnect(Version::kV5, read_one(bytes({0xE0, 0x07, 0x04, 0x05, 0x11, 0, 0, 0, 9})));
  EXPECT_EQ(c.reason, 0x04);
  EXPECT_EQ(c.session_expiry_s, 9u);
}

// 2.1.4 with a maximum: the size is known from the header, before the body.
TEST(MqttCodec, ReaderRefusesAnOversizedPacketFromItsHeader_2_1_4) {
  PacketReader reader(1000);
  const auto header = bytes({0x30, 0xE8, 0x07});  // PUBLISH of 1000 bytes announced, none sent yet
  reader.feed(header.data(), header.size());
  EXPECT_THROW(reader.next(), PacketTooLarge);
}

}  // namespace
}  // namespace tidegate::drivers::mqtt
