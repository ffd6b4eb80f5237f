// The MQTT source against a real mosquitto, with a real publisher (Paho C++)
// and a real buffer file.
#include "tidegate/drivers/mqtt/mqtt_source.h"

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <map>
#include <set>

#include "mosquitto.h"
#include "test_support.h"

namespace tidegate::drivers::mqtt {
namespace {

using testing::wait_for;

class Publisher {
 public:
  explicit Publisher(const std::string& uri, const std::string& id = "test-publisher")
      : client_(uri, id, 100000, nullptr) {
    auto opts = ::mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize();
    client_.connect(opts)->wait();
  }
  ~Publisher() {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (...) {
    }
  }
  // Publishes and waits for the broker's acknowledgement.
  void publish(const std::string& topic, const std::string& payload, int qos = 1) {
    client_.publish(::mqtt::make_message(topic, payload, qos, false))->wait();
  }
  ::mqtt::delivery_token_ptr publish_async(const std::string& topic, const std::string& payload, int qos = 1) {
    return client_.publish(::mqtt::make_message(topic, payload, qos, false));
  }

 private:
  ::mqtt::async_client client_;
};

class MqttSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<testing::Mosquitto>(dir_ / "broker");
    buffer::BufferOptions bo;
    bo.path = dir_ / "buffer.db";
    bo.commit_window = std::chrono::milliseconds(5);
    bo.log = log_.fn();
    buffer_ = buffer::Buffer::open(bo);
  }

  MqttSourceOptions options(Version version = Version::kV5) {
    MqttSourceOptions o;
    o.name = "local";
    o.port = broker_->port();
    o.version = version;
    o.client_id = "tidegate-test";
    o.subscriptions = {{"sensors/#", 1}};
    o.reconnect_min = std::chrono::milliseconds(50);
    o.reconnect_max = std::chrono::milliseconds(500);
    return o;
  }

  std::unique_ptr<MqttSource> start_source(MqttSourceOptions o) {
    auto s = std::make_unique<MqttSource>(std::move(o), *buffer_, log_.fn());
    s->start();
    EXPECT_TRUE(wait_for([&] { return s->mqtt_stats().state == "connected"; })) << dump_log();
    // The SUBACK follows the CONNACK; publish only once it is in.
    EXPECT_TRUE(wait_for([&] { return subscribed(*s); }));
    return s;
  }

  // A probe message shows the subscription is active.
  bool subscribed(MqttSource& s) {
    Publisher p(broker_->uri(), "probe");
    const auto before = s.stats().received_total;
    p.publish("sensors/probe/x", "{\"probe\":true}", 0);
    return wait_for([&] { return s.stats().received_total > before; }, std::chrono::milliseconds(500));
  }

  std::vector<buffer::Record> records(const std::string& topic_prefix = "sensors/d") {
    std::vector<buffer::Record> out;
    for (auto& r : buffer_->read_after(0, 1'000'000, SIZE_MAX).records) {
      if (r.topic.rfind(topic_prefix, 0) == 0) out.push_back(std::move(r));
    }
    return out;
  }

  std::string dump_log() {
    std::string out;
    for (const auto& l : log_.lines()) out += l + "\n";
    return out;
  }

  testing::TempDir dir_;
  testing::LogCapture log_;
  std::unique_ptr<testing::Mosquitto> broker_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

TEST_F(MqttSourceTest, Qos1MessagesArriveExactlyOnceByteIdenticalAndInOrder) {
  for (auto version : {Version::kV5, Version::kV311}) {
    SCOPED_TRACE(version == Version::kV5 ? "MQTT 5" : "MQTT 3.1.1");
    auto o = options(version);
    o.client_id = version == Version::kV5 ? "tg-v5" : "tg-v311";
    auto source = start_source(o);
    const std::size_t before = records().size();
    Publisher pub(broker_->uri());
    constexpr int kMessages = 2000;
    std::vector<::mqtt::delivery_token_ptr> tokens;
    for (int i = 0; i < kMessages; ++i) {
      std::string payload = "{\"n\":" + std::to_string(i) + "}";
      if (i % 100 == 0) payload += std::string("\0\xff\x01", 3);  // binary bytes survive untouched
      tokens.push_back(pub.publish_async("sensors/d" + std::to_string(i % 4) + "/t", payload));
    }
    for (auto& t : tokens) t->wait();
    ASSERT_TRUE(wait_for([&] { return records().size() - before >= kMessages; })) << records().size();
    source->stop();

    auto got = records();
    got.erase(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(before));
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages));  // exactly once
    std::map<std::string, int> last_per_topic;
    std::set<int> seen;
    for (const auto& r : got) {
      const int n = std::stoi(r.payload.substr(5));
      EXPECT_TRUE(seen.insert(n).second);
      std::string expected = "{\"n\":" + std::to_string(n) + "}";
      if (n % 100 == 0) expected += std::string("\0\xff\x01", 3);
      ASSERT_EQ(r.payload, expected);
      EXPECT_EQ(r.source, "local");
      EXPECT_EQ(r.topic, "sensors/d" + std::to_string(n % 4) + "/t");
      // Per topic, the publisher's order is kept.
      auto it = last_per_topic.find(r.topic);
      if (it != last_per_topic.end()) {
        EXPECT_LT(it->second, n);
      }
      last_per_topic[r.topic] = n;
    }
    auto st = source->mqtt_stats();
    EXPECT_EQ(st.common.dead_lettered_total, 0u);
    EXPECT_EQ(st.refused_total, 0u);
  }
}

TEST_F(MqttSourceTest, PartitionKeyAndDeviceTimeFromTopicAndJson) {
  auto o = options();
  o.mapping.key_from_topic = "sensors/{device}/#";
  o.mapping.device_time_from_json = "ts";
  o.mapping.content_type = "application/json";
  auto source = start_source(o);
  Publisher pub(broker_->uri());
  pub.publish("sensors/d-42/temperature", "{\"v\":21.5,\"ts\":\"2025-11-25T10:00:00.250Z\"}");
  pub.publish("sensors/d-43/co2", "{\"v\":600,\"ts\":1764064800}");
  ASSERT_TRUE(wait_for([&] { return records().size() == 2; }));
  auto got = records();
  EXPECT_EQ(got[0].partition_key, "d-42");
  EXPECT_EQ(got[0].device_ts_ns, 1764064800'250000000);
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[1].partition_key, "d-43");
  EXPECT_EQ(got[1].device_ts_ns, 1764064800'000000000);
  EXPECT_GT(got[0].ingest_ns, 0);

  source->stop();
  o.mapping.key_from_json = "meta.id";
  o.client_id = "tg-json";
  auto json_source = start_source(o);
  pub.publish("sensors/d-9/x", "{\"meta\":{\"id\":\"boiler-1\"}}");
  pub.publish("sensors/d-9/x", "{\"other\":1}");  // no such field: falls back to key_from_topic
  ASSERT_TRUE(wait_for([&] { return records().size() == 4; }));
  got = records();
  EXPECT_EQ(got[2].partition_key, "boiler-1");
  EXPECT_EQ(got[3].partition_key, "d-9");
}

TEST_F(MqttSourceTest, BadMessagesBecomeDeadLettersAndAreAcknowledged) {
  auto o = options();
  o.mapping.max_payload_bytes = 100;
  o.mapping.require_json = true;
  auto source = start_source(o);
  Publisher pub(broker_->uri());
  pub.publish("sensors/d1/t", std::string(101, 'x'));  // wait() returns only on PUBACK
  pub.publish("sensors/d1/t", "{not json");
  pub.publish("sensors/d1/t", "{\"ok\":true}");
  ASSERT_TRUE(wait_for([&] { return records().size() == 1; }));
  ASSERT_TRUE(wait_for([&] { return source->stats().dead_lettered_total == 2; }));
  auto letters = buffer_->dead_letters(10);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_NE(letters[0].reason.find("exceeds max_payload_bytes"), std::string::npos);
  EXPECT_EQ(letters[0].record.payload, std::string(101, 'x'));
  EXPECT_EQ(letters[0].record.topic, "sensors/d1/t");
  EXPECT_NE(letters[1].reason.find("not valid JSON"), std::string::npos);
  EXPECT_TRUE(log_.contains("dead letter"));
  // They were acknowledged: reconnecting brings no redelivery.
  source->stop();
  auto again = start_source(o);
  EXPECT_EQ(again->mqtt_stats().redelivered_total, 0u);
  EXPECT_EQ(buffer_->dead_letters(10).size(), 2u);
}

TEST_F(MqttSourceTest, PersistentSessionKeepsMessagesWhileTheGatewayIsDown) {
  auto o = options();
  start_source(o)->stop();  // the broker now knows our session and subscription
  {
    Publisher pub(broker_->uri());
    for (int i = 0; i < 300; ++i) pub.publish("sensors/d1/t", "offline-" + std::to_string(i));
  }
  auto source = std::make_unique<MqttSource>(o, *buffer_, log_.fn());
  source->start();
  ASSERT_TRUE(wait_for([&] { return records().size() == 300; })) << records().size();
  EXPECT_TRUE(source->mqtt_stats().session_present);
  auto got = records();
  for (int i = 0; i < 300; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)].payload, "offline-" + std::to_string(i));
}

TEST_F(MqttSourceTest, BrokerRestartDuringIngestLosesNothingItPersisted) {
  auto source = start_source(options());
  Publisher pub(broker_->uri(), "pub-1");
  for (int i = 0; i < 200; ++i) pub.publish("sensors/d1/t", "before-" + std::to_string(i));
  broker_->restart();  // SIGTERM: mosquitto saves its state, then comes back
  ASSERT_TRUE(wait_for([&] { return source->mqtt_stats().reconnects_total >= 1 &&
                                    source->mqtt_stats().state == "connected"; }))
      << dump_log();
  Publisher pub2(broker_->uri(), "pub-2");
  for (int i = 0; i < 200; ++i) pub2.publish("sensors/d1/t", "after-" + std::to_string(i));
  // Messages committed but not yet acknowledged at the restart come again
  // (at-least-once), so wait for every payload rather than for a count.
  std::set<std::string> payloads;
  const bool all = wait_for([&] {
    payloads.clear();
    for (const auto& r : records()) payloads.insert(r.payload);
    for (int i = 0; i < 200; ++i) {
      if (!payloads.count("before-" + std::to_string(i)) || !payloads.count("after-" + std::to_string(i))) return false;
    }
    return true;
  });
  EXPECT_TRUE(all) << payloads.size() << " distinct payloads\n" << dump_log();
  EXPECT_TRUE(log_.contains("reconnecting in"));
}

TEST_F(MqttSourceTest, UserNameAndPasswordAreChecked) {
  const auto passwords = dir_ / "passwords";
  const std::string cmd = "mosquitto_passwd -b -c " + passwords.string() + " gateway s3cret >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  testing::Mosquitto secured(dir_ / "secured", "allow_anonymous false\npassword_file " + passwords.string() + "\n");
  auto o = options();
  o.port = secured.port();
  o.username = "gateway";
  o.password = "wrong";
  {
    MqttSource source(o, *buffer_, log_.fn());
    source.start();
    ASSERT_TRUE(wait_for([&] { return source.mqtt_stats().common.errors_total >= 2; }));
    EXPECT_EQ(source.mqtt_stats().connects_total, 0u);
    EXPECT_NE(source.stats().last_error.find("broker refused the connection"), std::string::npos)
        << source.stats().last_error;
  }
  EXPECT_FALSE(log_.contains("s3cret"));
  EXPECT_FALSE(log_.contains("wrong"));  // passwords never reach the log
  o.password = "s3cret";
  MqttSource source(o, *buffer_, log_.fn());
  source.start();
  EXPECT_TRUE(wait_for([&] { return source.mqtt_stats().state == "connected"; })) << source.stats().last_error;
}

TEST_F(MqttSourceTest, MessagesQueuedForTheGatewaySurviveABrokerRestart) {
  auto o = options();
  start_source(o)->stop();  // session and subscription now live in the broker
  {
    Publisher pub(broker_->uri());
    for (int i = 0; i < 150; ++i) pub.publish("sensors/d1/t", "queued-" + std::to_string(i));
  }
  broker_->restart();  // SIGTERM: the queue is written to mosquitto.db and read back
  auto source = std::make_unique<MqttSource>(o, *buffer_, log_.fn());
  source->start();
  ASSERT_TRUE(wait_for([&] { return records().size() >= 150; })) << records().size() << "\n" << dump_log();
  auto got = records();
  for (int i = 0; i < 150; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)].payload, "queued-" + std::to_string(i));
}

TEST_F(MqttSourceTest, BufferRefusalLeavesMessagesWithTheBrokerUntilThereIsRoom) {
  // A buffer that takes 20 records and refuses the rest (reject-new).
  buffer_.reset();
  buffer::BufferOptions bo;
  bo.path = dir_ / "small.db";
  bo.commit_window = std::chrono::milliseconds(2);
  bo.max_records = 20;
  bo.full_policy = buffer::FullPolicy::kRejectNew;
  bo.log = log_.fn();
  buffer_ = buffer::Buffer::open(bo);
  ASSERT_EQ(buffer_->ensure_sink("cloud", buffer::StartPosition::kEarliest), buffer::Status::kOk);
  auto o = options();
  o.subscriptions = {{"sensors/d/#", 1}};
  auto source = std::make_unique<MqttSource>(o, *buffer_, log_.fn());
  source->start();
  ASSERT_TRUE(wait_for([&] { return source->mqtt_stats().subscribed; }));
  Publisher pub(broker_->uri());
  for (int i = 0; i < 60; ++i) pub.publish("sensors/d/t", std::to_string(i));
  ASSERT_TRUE(wait_for([&] { return source->mqtt_stats().refused_total > 0; }));
  // Whole reads are refused together, so the buffer may stop short of 20.
  EXPECT_LE(buffer_->stats().records, 20u);
  EXPECT_GT(buffer_->stats().records, 0u);
  // A sink drains the buffer; the broker redelivers what was refused.
  std::set<int> delivered;
  ASSERT_TRUE(wait_for(
      [&] {
        auto batch = buffer_->read("cloud", 100, SIZE_MAX);
        for (const auto& r : batch.records) delivered.insert(std::stoi(r.payload));
        if (!batch.records.empty()) buffer_->ack("cloud", batch.records.back().seq);
        buffer_->run_maintenance();
        return delivered.size() == 60;
      },
      std::chrono::seconds(30)))
      << delivered.size() << "\n" << dump_log();
  EXPECT_GT(source->mqtt_stats().redelivered_total, 0u);
}

}  // namespace
}  // namespace tidegate::drivers::mqtt
