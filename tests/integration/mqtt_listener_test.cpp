// The MQTT listener against real clients: Paho C++ (MQTT 3.1.1 and 5, QoS
// 0, 1, 2), mosquitto_pub from Debian, and a raw socket client that sends
// exactly the bytes a test needs (resends, aliases, hostile input).
#include "tidegate/drivers/mqtt/mqtt_listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "mosquitto.h"  // free_loopback_port
#include "test_pki.h"
#include "test_support.h"
#include "tidegate/drivers/mqtt/codec.h"

namespace tidegate::drivers::mqtt {
namespace {

using testing::wait_for;

// A client made of bytes: what a test sends is exactly what the listener gets.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // The next packet within `timeout`; nullopt on timeout or when closed.
  std::optional<Packet> next(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (auto p = reader_.next()) return p;
      if (closed_ || std::chrono::steady_clock::now() > deadline) return std::nullopt;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed_ = true;
      if (n > 0) reader_.feed(buf, static_cast<std::size_t>(n));
    }
  }
  // True once the listener closed the connection (reading what is left).
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) next(std::chrono::milliseconds(100));
    return closed_;
  }
  Connack connect(Version v, const std::string& id, bool clean = true, std::uint16_t keepalive = 30,
                  std::uint32_t session_expiry = 0, std::optional<std::string> username = std::nullopt,
                  std::optional<std::string> password = std::nullopt) {
    ConnectOptions o;
    o.version = v;
    o.client_id = id;
    o.clean_start = clean;
    o.keepalive_s = keepalive;
    o.session_expiry_s = session_expiry;
    o.username = std::move(username);
    o.password = std::move(password);
    send(encode_connect(o));
    auto p = next();
    if (!p || p->type != PacketType::kConnack) throw std::runtime_error("no CONNACK");
    return parse_connack(v, *p);
  }

 private:
  int fd_ = -1;
  PacketReader reader_;
  bool closed_ = false;
};

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

class MqttListenerTest : public ::testing::Test {
 protected:
  void open_buffer(std::uint64_t max_bytes = 0) {
    buffer_.reset();  // one writer per file: the old one closes first
    buffer::BufferOptions bo;
    bo.path = dir_ / "buffer.db";
    bo.commit_window = std::chrono::milliseconds(5);
    bo.log = log_.fn();
    if (max_bytes > 0) {
      bo.max_bytes = max_bytes;
      bo.full_policy = buffer::FullPolicy::kRejectNew;
    }
    buffer_ = buffer::Buffer::open(bo);
  }
  void SetUp() override { open_buffer(); }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& line : log_.lines()) std::printf("log: %s\n", line.c_str());
    }
  }

  MqttListenerOptions options() {
    MqttListenerOptions o;
    o.name = "devices";
    o.port = 0;
    o.mapping.key_from_topic = "sensors/{device}/#";
    return o;
  }
  std::unique_ptr<MqttListener> start(MqttListenerOptions o) {
    auto l = std::make_unique<MqttListener>(std::move(o), *buffer_, log_.fn());
    l->start();
    return l;
  }
  std::string uri(const MqttListener& l) const { return "tcp://127.0.0.1:" + std::to_string(l.port()); }

  std::vector<buffer::Record> records() { return buffer_->read_after(0, 1'000'000, SIZE_MAX).records; }
  std::size_t count_payload_prefix(const std::string& prefix) {
    std::size_t n = 0;
    for (const auto& r : records()) n += r.payload.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  double counter(const MqttListener& l, const std::string& name) {
    for (const auto& c : l.stats().counters) {
      if (c.name == name) return c.value;
    }
    ADD_FAILURE() << "no counter " << name;
    return -1;
  }

  testing::TempDir dir_;
  testing::LogCapture log_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

// Paho C++ with MQTT 3.1.1 and 5, each QoS: every message a token reports as
// delivered is in the buffer, in the order published, keyed by device.
TEST_F(MqttListenerTest, PahoPublishesWithEveryVersionAndQosAndEachAcknowledgedMessageIsStored) {
  auto listener = start(options());
  for (int version : {MQTTVERSION_3_1_1, MQTTVERSION_5}) {
    for (int qos : {0, 1, 2}) {
      const std::string tag = "v" + std::to_string(version) + "q" + std::to_string(qos) + "-";
      ::mqtt::async_client client(uri(*listener), "paho-" + tag, ::mqtt::create_options(version, 100000), nullptr);
      auto builder = ::mqtt::connect_options_builder().mqtt_version(version);
      if (version == MQTTVERSION_5) {
        builder.clean_start(true);
      } else {
        builder.clean_session(true);
      }
      client.connect(builder.finalize())->wait();
      std::vector<::mqtt::delivery_token_ptr> tokens;
      for (int i = 0; i < 300; ++i) {
        tokens.push_back(client.publish(::mqtt::make_message("sensors/d" + std::to_string(version) + "/t",
                                                             tag + std::to_string(i), qos, false)));
      }
      for (auto& t : tokens) ASSERT_TRUE(t->wait_for(std::chrono::seconds(10))) << tag;
      client.disconnect()->wait();
      // QoS 0 is stored best effort: the disconnect follows the last
      // PUBLISH on the same connection, so all of it was read.
      ASSERT_TRUE(wait_for([&] { return count_payload_prefix(tag) == 300; })) << tag << ": " << count_payload_prefix(tag);
      int expected = 0;
      for (const auto& r : records()) {
        if (r.payload.rfind(tag, 0) != 0) continue;
        EXPECT_EQ(r.payload, tag + std::to_string(expected++)) << "out of order";
        EXPECT_EQ(r.partition_key, "d" + std::to_string(version));
        EXPECT_EQ(r.source, "devices");
      }
    }
  }
  EXPECT_EQ(counter(*listener, "qos0_total"), 600);
  EXPECT_EQ(counter(*listener, "protocol_errors_total"), 0);
  EXPECT_EQ(listener->stats().committed_total, 1800u);
}

// mosquitto_pub from Debian, a second client implementation, QoS 2 and 5.
TEST_F(MqttListenerTest, MosquittoPubDeliversLinesWithQos2) {
  auto listener = start(options());
  const auto lines = dir_ / "lines.txt";
  {
    std::ofstream f(lines);
    for (int i = 0; i < 200; ++i) f << "{\"n\":" << i << "}\n";
  }
  for (const char* version : {"mqttv311", "mqttv5"}) {
    const std::string cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(listener->port()) + " -V " + version +
                            " -q 2 -t sensors/mp-" + version + "/x -l < " + lines.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  ASSERT_TRUE(wait_for([&] { return records().size() == 400; })) << records().size();
  std::map<std::string, int> per_device;
  for (const auto& r : records()) per_device[r.partition_key] += 1;
  EXPECT_EQ(per_device["mp-mqttv311"], 200);
  EXPECT_EQ(per_device["mp-mqttv5"], 200);
}

// QoS 2 (4.3.3): a resend of a PUBLISH whose PUBREL has not come is
// acknowledged again but stored once; after PUBREL the id is new again.
TEST_F(MqttListenerTest, Qos2ResendIsStoredOnceAndTheIdIsFreeAfterPubrel) {
  auto listener = start(options());
  RawClient c(listener->port());
  ASSERT_EQ(c.connect(Version::kV5, "q2").reason, 0);
  c.send(encode_publish(Version::kV5, "sensors/q2/x", "first", 2, 9));
  auto rec = c.next();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->type, PacketType::kPubrec);
  c.send(encode_publish(Version::kV5, "sensors/q2/x", "first", 2, 9, false, true));  // DUP
  rec = c.next();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->type, PacketType::kPubrec);
  c.send(bytes({0x62, 0x02, 0x00, 0x09}));  // PUBREL 9
  auto comp = c.next();
  ASSERT_TRUE(comp);
  EXPECT_EQ(comp->type, PacketType::kPubcomp);
  EXPECT_EQ(comp->body, bytes({0x00, 0x09}));
  c.send(encode_publish(Version::kV5, "sensors/q2/x", "second", 2, 9));
  ASSERT_TRUE(c.next());
  ASSERT_TRUE(wait_for([&] { return records().size() == 2; }));
  EXPECT_EQ(records()[0].payload, "first");
  EXPECT_EQ(records()[1].payload, "second");
  EXPECT_EQ(counter(*listener, "qos2_duplicates_total"), 1);
}

// The QoS 2 state is the session's: a client that reconnects with its
// persistent session and resends before PUBREL is not stored twice.
TEST_F(MqttListenerTest, Qos2StateSurvivesAReconnectOfAPersistentSession) {
  auto listener = start(options());
  {
    RawClient c(listener->port());
    ASSERT_EQ(c.connect(Version::kV311, "persist", false).reason, 0);
    c.send(encode_publish(Version::kV311, "sensors/p/x", "once", 2, 3));
    ASSERT_TRUE(c.next());  // PUBREC
  }
  RawClient again(listener->port());
  const auto ack = again.connect(Version::kV311, "persist", false);
  EXPECT_TRUE(ack.session_present);
  again.send(encode_publish(Version::kV311, "sensors/p/x", "once", 2, 3, false, true));
  auto rec = again.next();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->type, PacketType::kPubrec);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(records().size(), 1u);
}

// A persistent session outlives the gateway: after a restart the client is
// told its session is present (so it resends what it had in flight), and a
// QoS 2 resend whose first copy was committed is recognised and not stored
// again. The id is forgotten, on disk too, once released.
TEST_F(MqttListenerTest, PersistentSessionsAndQos2StateSurviveARestartOfTheGateway) {
  auto o = options();
  o.port = testing::free_loopback_port();
  {
    auto listener = start(o);
    RawClient c(listener->port());
    EXPECT_FALSE(c.connect(Version::kV5, "durable", false, 30, 3600).session_present);
    c.send(encode_publish(Version::kV5, "sensors/d/x", "exactly-once", 2, 11));
    auto rec = c.next();
    ASSERT_TRUE(rec);
    ASSERT_EQ(rec->type, PacketType::kPubrec);
  }
  buffer_.reset();  // the whole gateway goes away; the file stays
  open_buffer();
  auto listener = start(o);
  RawClient c(listener->port());
  EXPECT_TRUE(c.connect(Version::kV5, "durable", false, 30, 3600).session_present);
  c.send(encode_publish(Version::kV5, "sensors/d/x", "exactly-once", 2, 11, false, true));  // the resend
  auto rec = c.next();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->type, PacketType::kPubrec);
  c.send(bytes({0x62, 0x02, 0x00, 11}));  // PUBREL
  auto comp = c.next();
  ASSERT_TRUE(comp);
  EXPECT_EQ(comp->type, PacketType::kPubcomp);
  EXPECT_EQ(comp->body, bytes({0x00, 11}));  // success: the id was known
  EXPECT_EQ(count_payload_prefix("exactly-once"), 1u);
  const auto state = buffer_->source_state("mqtt_listener/devices/");
  ASSERT_EQ(state.size(), 1u);  // the session; its QoS 2 id is released
  EXPECT_EQ(state[0].first, "mqtt_listener/devices/s/durable");
  // A clean start forgets the session, on disk too.
  c.close();
  RawClient fresh(listener->port());
  EXPECT_FALSE(fresh.connect(Version::kV5, "durable", true).session_present);
  ASSERT_TRUE(wait_for([&] { return buffer_->source_state("mqtt_listener/devices/").empty(); }));
}

// Sessions of clients that are away are capped at 4 x max_connections: a
// client inventing ids cannot fill memory and the buffer; the session that
// expires first ends early, on disk too.
TEST_F(MqttListenerTest, AwaySessionsAreCappedAtFourPerAllowedConnection) {
  auto o = options();
  o.max_connections = 2;
  auto listener = start(o);
  for (int i = 0; i < 10; ++i) {
    RawClient c(listener->port());
    ASSERT_EQ(c.connect(Version::kV5, "inventive-" + std::to_string(i), false, 30, 3600).reason, 0);
    c.send(encode_disconnect(Version::kV5));
    ASSERT_TRUE(c.closed_by_peer());
  }
  EXPECT_EQ(counter(*listener, "sessions_ended_early_total"), 2);
  // The writes reach the file in order (save 0..7, forget 0, save 8, forget 1,
  // save 9), so a count of 8 alone is also seen before the first forget: wait
  // for the end state.
  const auto end_state = [&] {
    const auto state = buffer_->source_state("mqtt_listener/devices/s/");
    return state.size() == 8 && state.front().first == "mqtt_listener/devices/s/inventive-2" &&
           state.back().first == "mqtt_listener/devices/s/inventive-9";
  };
  ASSERT_TRUE(wait_for(end_state)) << buffer_->source_state("mqtt_listener/devices/s/").size();  // 0 and 1 expired first
}

// MQTT 5 topic aliases (3.3.2.3.4): set with the first PUBLISH, used by the
// next; an alias over the announced maximum ends the connection (0x94).
TEST_F(MqttListenerTest, TopicAliasesAreResolvedAndAnAliasOverTheMaximumIsRefused) {
  auto o = options();
  o.topic_alias_maximum = 4;
  auto listener = start(o);
  RawClient c(listener->port());
  ASSERT_EQ(c.connect(Version::kV5, "alias").reason, 0);
  // topic "sensors/a1/t" with alias 2, then an empty topic with alias 2
  const std::string topic = "sensors/a1/t";
  std::string set = bytes({0x00, static_cast<int>(topic.size())}) + topic + bytes({0x03, 0x23, 0x00, 0x02}) + "one";
  std::string use = bytes({0x00, 0x00, 0x03, 0x23, 0x00, 0x02}) + "two";
  c.send(bytes({0x30, static_cast<int>(set.size())}) + set);
  c.send(bytes({0x30, static_cast<int>(use.size())}) + use);
  ASSERT_TRUE(wait_for([&] { return records().size() == 2; }));
  EXPECT_EQ(records()[1].topic, "sensors/a1/t");
  EXPECT_EQ(records()[1].partition_key, "a1");
  std::string over = bytes({0x00, 0x01, 'x', 0x03, 0x23, 0x00, 0x05}) + "three";
  c.send(bytes({0x30, static_cast<int>(over.size())}) + over);
  auto d = c.next();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->type, PacketType::kDisconnect);
  EXPECT_EQ(parse_disconnect(Version::kV5, *d).reason, 0x94);
  EXPECT_TRUE(c.closed_by_peer());
}

// An ingest endpoint, not a broker: SUBSCRIBE is refused per filter with a
// reason (0x87 in MQTT 5, 0x80 in 3.1.1), and the connection stays up.
TEST_F(MqttListenerTest, SubscribeIsRefusedWithAReasonAndTheClientMayGoOn) {
  auto listener = start(options());
  for (auto v : {Version::kV311, Version::kV5}) {
    RawClient c(listener->port());
    ASSERT_EQ(c.connect(v, "sub").reason, 0);
    c.send(encode_subscribe(v, 4, {{"cmd/#", 1}}));
    auto ack = c.next();
    ASSERT_TRUE(ack);
    const auto suback = parse_suback(v, *ack);
    EXPECT_EQ(suback.reasons.at(0), v == Version::kV5 ? 0x87 : 0x80);
    c.send(encode_publish(v, "sensors/s/x", "after", 1, 5));
    auto puback = c.next();
    ASSERT_TRUE(puback);
    EXPECT_EQ(puback->type, PacketType::kPuback);
  }
  EXPECT_EQ(counter(*listener, "subscribes_refused_total"), 2);
}

// 3.1.2.5: a client that vanishes leaves its will as a record; one that says
// DISCONNECT does not.
TEST_F(MqttListenerTest, AWillIsStoredWhenAClientVanishesAndNotAfterDisconnect) {
  auto listener = start(options());
  auto connect_with_will = [&](RawClient& c, const std::string& id) {
    // CONNECT 3.1.1, clean, will QoS 1 on "sensors/<id>/status" = "offline".
    const std::string topic = "sensors/" + id + "/status";
    std::string body = bytes({0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x0E, 0x00, 0x3C});
    body += bytes({0x00, static_cast<int>(id.size())}) + id;
    body += bytes({0x00, static_cast<int>(topic.size())}) + topic;
    body += bytes({0x00, 0x07}) + "offline";
    c.send(bytes({0x10, static_cast<int>(body.size())}) + body);
    auto ack = c.next();
    ASSERT_TRUE(ack);
    ASSERT_EQ(parse_connack(Version::kV311, *ack).reason, 0);
  };
  {
    RawClient polite(listener->port());
    connect_with_will(polite, "polite");
    polite.send(encode_disconnect(Version::kV311));
    EXPECT_TRUE(polite.closed_by_peer());
  }
  {
    RawClient vanishing(listener->port());
    connect_with_will(vanishing, "gone");
  }  // closed without DISCONNECT
  ASSERT_TRUE(wait_for([&] { return records().size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].topic, "sensors/gone/status");
  EXPECT_EQ(records()[0].payload, "offline");
  EXPECT_EQ(records()[0].partition_key, "gone");
  EXPECT_EQ(counter(*listener, "wills_stored_total"), 1);
}

// 3.1.2.10: silence beyond 1.5 x keep alive closes the connection.
TEST_F(MqttListenerTest, AClientSilentForOneAndAHalfKeepAlivesIsDisconnected) {
  auto listener = start(options());
  RawClient c(listener->port());
  ASSERT_EQ(c.connect(Version::kV5, "sleepy", true, 1).reason, 0);
  const auto start = std::chrono::steady_clock::now();
  auto d = c.next(std::chrono::seconds(5));
  ASSERT_TRUE(d);
  EXPECT_EQ(parse_disconnect(Version::kV5, *d).reason, 0x8D);  // keep alive timeout
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
  EXPECT_EQ(counter(*listener, "timeouts_total"), 1);
}

// Hostile and broken clients, all at once, while a good client publishes at
// full rate: each bad one is closed with a reason and counted; the good one
// loses nothing and is not slowed to a stop.
TEST_F(MqttListenerTest, HostileClientsAreClosedWhileAGoodClientPublishesUndisturbed) {
  auto o = options();
  o.max_packet_size = 64 * 1024;
  o.packet_timeout = std::chrono::seconds(1);
  o.connect_timeout = std::chrono::seconds(1);
  o.max_connects_per_second_per_address = 50;
  auto listener = start(o);

  std::atomic<int> good_acked{0};
  // The good client connects before the flood: all come from 127.0.0.1,
  // and the flood is over the connect rate of that address.
  ::mqtt::async_client client(uri(*listener), "good", ::mqtt::create_options(MQTTVERSION_5, 100000), nullptr);
  client.connect(::mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(true).finalize())->wait();
  std::thread good([&] {
    try {
      std::vector<::mqtt::delivery_token_ptr> tokens;
      for (int i = 0; i < 5000; ++i) {
        tokens.push_back(client.publish(::mqtt::make_message("sensors/good/x", "good-" + std::to_string(i), 1, false)));
        if (tokens.size() == 200) {
          for (auto& t : tokens) good_acked += t->wait_for(std::chrono::seconds(10)) ? 1 : 0;
          tokens.clear();
        }
      }
      for (auto& t : tokens) good_acked += t->wait_for(std::chrono::seconds(10)) ? 1 : 0;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the good client failed: " << e.what();
    }
  });

  // Truncated packet, then silence: the packet timeout closes it.
  RawClient truncated(listener->port());
  truncated.send(bytes({0x10, 0x20, 0x00, 0x04, 'M'}));
  // A remaining length over max_packet_size: closed at its header.
  RawClient oversized(listener->port());
  ASSERT_EQ(oversized.connect(Version::kV5, "big").reason, 0);
  oversized.send(bytes({0x30, 0xFF, 0xFF, 0x7F}));
  // Garbage: packet type 0 is reserved.
  RawClient garbage(listener->port());
  garbage.send(bytes({0x00, 0x00}));
  // A client that never sends CONNECT.
  RawClient mute(listener->port());
  // One byte a second: never finishes its CONNECT within the packet timeout.
  RawClient slow(listener->port());
  std::thread trickle([&] {
    ConnectOptions co;
    co.client_id = "slow";
    const auto connect = encode_connect(co);
    for (std::size_t i = 0; i < 3 && i < connect.size(); ++i) {
      slow.send(connect.substr(i, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(900));
    }
  });
  // A CONNECT flood from this address: over the rate, closed at accept.
  std::vector<std::unique_ptr<RawClient>> flood;
  for (int i = 0; i < 150; ++i) flood.push_back(std::make_unique<RawClient>(listener->port()));

  EXPECT_TRUE(truncated.closed_by_peer(std::chrono::seconds(5)));
  auto d = oversized.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(parse_disconnect(Version::kV5, *d).reason, 0x95);  // packet too large
  EXPECT_TRUE(garbage.closed_by_peer());
  EXPECT_TRUE(mute.closed_by_peer(std::chrono::seconds(5)));
  EXPECT_TRUE(slow.closed_by_peer(std::chrono::seconds(5)));
  trickle.join();
  EXPECT_GT(counter(*listener, "refused_connections_total"), 0);

  good.join();
  client.disconnect()->wait();
  EXPECT_EQ(good_acked.load(), 5000);
  ASSERT_TRUE(wait_for([&] { return count_payload_prefix("good-") == 5000; }));
  EXPECT_GE(counter(*listener, "protocol_errors_total"), 2);
  EXPECT_GE(counter(*listener, "timeouts_total"), 2);
}

// Backpressure: when the buffer refuses, nothing is acknowledged; an MQTT 5
// client is told "quota exceeded" (0x97) and resends later. What was
// acknowledged is all in the buffer.
TEST_F(MqttListenerTest, WhenTheBufferRefusesNothingIsAcknowledgedAndTheClientIsToldWhy) {
  open_buffer(64 * 1024);
  auto listener = start(options());
  RawClient c(listener->port());
  ASSERT_EQ(c.connect(Version::kV5, "filler").reason, 0);
  const std::string payload(1000, 'x');
  std::uint16_t id = 1;
  int acked = 0;
  std::optional<Disconnect> told;
  for (; id < 500 && !told; ++id) {
    c.send(encode_publish(Version::kV5, "sensors/f/x", payload, 1, id));
    auto p = c.next();
    ASSERT_TRUE(p);
    if (p->type == PacketType::kPuback) ++acked;
    if (p->type == PacketType::kDisconnect) told = parse_disconnect(Version::kV5, *p);
  }
  ASSERT_TRUE(told);
  EXPECT_EQ(told->reason, 0x97);
  EXPECT_NE(told->reason_string.find("refused"), std::string::npos) << told->reason_string;
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(records().size(), static_cast<std::size_t>(acked));
  EXPECT_EQ(counter(*listener, "refused_total"), 1);
  // New connections are turned away while the buffer refuses.
  RawClient next(listener->port());
  EXPECT_EQ(next.connect(Version::kV5, "next").reason, 0x97);
}

// Connection limit: the one over max_connections is closed at once; the
// others keep working.
TEST_F(MqttListenerTest, ConnectionsOverTheLimitAreClosed) {
  auto o = options();
  o.max_connections = 3;
  auto listener = start(o);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawClient>(listener->port()));
    ASSERT_EQ(clients.back()->connect(Version::kV311, "c" + std::to_string(i)).reason, 0);
  }
  RawClient extra(listener->port());
  EXPECT_TRUE(extra.closed_by_peer());
  clients[0]->send(encode_publish(Version::kV311, "sensors/c0/x", "still", 1, 1));
  auto ack = clients[0]->next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, PacketType::kPuback);
}

// Credentials from a password file made by mosquitto_passwd, and an ACL in
// mosquitto's format: a good password connects, a bad one or none is refused
// and counted; a PUBLISH the ACL does not allow is refused (MQTT 5: PUBACK
// 0x87), counted, and not stored.
TEST_F(MqttListenerTest, PasswordFileAndAclInMosquittosFormatsAreEnforced) {
  const auto passwd = (dir_ / "passwd").string();
  testing::sh("mosquitto_passwd -c -b " + passwd + " alice secret");
  const auto acl = (dir_ / "acl").string();
  std::ofstream(acl) << "user alice\ntopic write sensors/alice/#\n";
  auto o = options();
  o.password_file = passwd;
  o.acl_file = acl;
  o.allow_anonymous = false;
  auto listener = start(o);
  const std::string pub = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(listener->port()) + " -q 1 ";
  EXPECT_EQ(std::system((pub + "-u alice -P secret -t sensors/alice/t -m ok").c_str()), 0);
  EXPECT_NE(std::system((pub + "-u alice -P wrong -t sensors/alice/t -m bad 2>/dev/null").c_str()), 0);
  EXPECT_NE(std::system((pub + "-t sensors/alice/t -m anonymous 2>/dev/null").c_str()), 0);
  EXPECT_EQ(counter(*listener, "auth_failures_total"), 2);

  RawClient c(listener->port());
  ASSERT_EQ(c.connect(Version::kV5, "alice-1", true, 30, 0, "alice", "secret").reason, 0);
  c.send(encode_publish(Version::kV5, "sensors/bob/t", "not hers", 1, 1));
  auto ack = c.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(parse_puback(Version::kV5, *ack).reason, 0x87);
  c.send(encode_publish(Version::kV5, "sensors/alice/t", "hers", 1, 2));
  ack = c.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(parse_puback(Version::kV5, *ack).reason, 0);
  ASSERT_TRUE(wait_for([&] { return records().size() == 2; }));
  EXPECT_EQ(records()[0].payload, "ok");
  EXPECT_EQ(records()[1].payload, "hers");
  EXPECT_EQ(counter(*listener, "acl_denied_total"), 1);
}

// TLS with a client certificate from the site's CA: the certificate's
// identity is the user name, and here the partition key. A client without a
// certificate, or speaking plain MQTT to the TLS port, fails its handshake
// and is counted; the listener goes on.
TEST_F(MqttListenerTest, MutualTlsTakesTheDeviceIdentityFromItsCertificate) {
  testing::TestPki pki(dir_.path());
  pki.client("sensor-7");
  auto o = options();
  o.tls.cert_file = pki.file("server.pem");
  o.tls.key_file = pki.file("server.key");
  o.tls.ca_file = pki.file("ca.pem");
  o.tls.identity_as_username = true;
  o.key_fallback = KeyFallback::kUsername;
  auto listener = start(o);
  const std::string pub = "mosquitto_pub -h localhost -p " + std::to_string(listener->port()) + " -q 1 --cafile " +
                          pki.file("ca.pem") + " ";
  EXPECT_EQ(std::system((pub + "--cert " + pki.file("sensor-7.pem") + " --key " + pki.file("sensor-7.key") +
                         " -t plant/t -m over-tls")
                            .c_str()),
            0);
  EXPECT_NE(std::system((pub + "-t plant/t -m no-certificate 2>/dev/null").c_str()), 0);
  RawClient plain(listener->port());  // MQTT without TLS
  plain.send(encode_connect(ConnectOptions{}));
  EXPECT_TRUE(plain.closed_by_peer());
  ASSERT_TRUE(wait_for([&] { return records().size() == 1; }));
  EXPECT_EQ(records()[0].payload, "over-tls");
  EXPECT_EQ(records()[0].partition_key, "sensor-7");
  EXPECT_GE(counter(*listener, "tls_failures_total"), 2);
}

}  // namespace
}  // namespace tidegate::drivers::mqtt
