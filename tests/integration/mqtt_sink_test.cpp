// The upstream MQTT sink behind a forwarder, against a real mosquitto as the
// upstream, read back by a real subscriber.
#include "tidegate/sinks/mqtt_sink.h"

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <functional>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "mosquitto.h"
#include "test_pki.h"
#include "forward_support.h"
#include "test_support.h"
#include "tidegate/forward/forwarder.h"

namespace tidegate::sinks {
namespace {

using testing::wait_for;

// A persistent QoS 1 subscriber on the upstream, collecting what arrives.
class Collector : public ::mqtt::callback {
 public:
  Collector(const std::string& uri, const std::string& filter) : client_(uri, "collector", 0, nullptr) {
    client_.set_callback(*this);
    auto opts = ::mqtt::connect_options_builder().clean_session(false).automatic_reconnect(true).finalize();
    client_.connect(opts)->wait();
    client_.subscribe(filter, 1)->wait();
  }
  ~Collector() override {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
  }
  void message_arrived(::mqtt::const_message_ptr msg) override {
    std::lock_guard lock(mu_);
    messages_.emplace_back(msg->get_topic(), msg->to_string());
  }
  std::vector<std::pair<std::string, std::string>> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  ::mqtt::async_client client_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> messages_;
};

class MqttSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<testing::Mosquitto>(dir_ / "upstream");
    open_buffer();
  }
  void open_buffer() {
    buffer::BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.log = log_.fn();
    buffer_ = buffer::Buffer::open(o);
  }
  MqttSinkOptions sink_options() {
    MqttSinkOptions o;
    o.name = "cloud";
    o.port = upstream_->port();
    o.gateway_id = "gw-1";
    o.topic_template = "up/{gateway}/{key}";
    o.timeout = std::chrono::milliseconds(2000);
    return o;
  }
  forward::ForwarderOptions fast() {
    return testing::quick_forwarder(std::chrono::milliseconds(50), std::chrono::milliseconds(300));
  }
  testing::TempDir dir_;
  testing::LogCapture log_;
  std::unique_ptr<testing::Mosquitto> upstream_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

TEST(MqttSinkTopic, TemplatesExpandFromTheRecord) {
  buffer::Record r;
  r.source = "local";
  r.partition_key = "d-7";
  r.topic = "sensors/d-7/t";
  EXPECT_EQ(expand_topic("tidegate/{gateway}/{topic}", "gw", r), "tidegate/gw/sensors/d-7/t");
  EXPECT_EQ(expand_topic("{source}/{key}/{unknown}", "gw", r), "local/d-7/{unknown}");
}

TEST_F(MqttSinkTest, EveryRecordArrivesUpstreamInOrderWithItsIdentity) {
  Collector collector(upstream_->uri(), "up/#");
  forward::Forwarder f(*buffer_, std::make_unique<MqttSink>(sink_options()), fast(), log_.fn());
  f.start();
  for (int i = 0; i < 10; ++i) {
    std::vector<buffer::NewRecord> batch;
    for (int k = 0; k < 100; ++k) batch.push_back(testing::make_record("{\"n\":" + std::to_string(i * 100 + k) + "}",
                                                                       "d-" + std::to_string(k % 3)));
    ASSERT_TRUE(buffer_->append_wait(std::move(batch)).ok());
  }
  ASSERT_TRUE(wait_for([&] { return collector.messages().size() >= 1000; })) << f.stats().last_error;
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 1000u; }));
  auto got = collector.messages();
  ASSERT_EQ(got.size(), 1000u);
  std::uint64_t last = 0;
  for (const auto& [topic, body] : got) {
    auto j = nlohmann::json::parse(body);
    EXPECT_EQ(j["gateway"], "gw-1");
    const auto seq = j["seq"].get<std::uint64_t>();
    EXPECT_GT(seq, last);  // one connection, one order
    last = seq;
    EXPECT_EQ(topic, "up/gw-1/" + j["partition_key"].get<std::string>());
  }
}

TEST_F(MqttSinkTest, AnUpstreamOutageIsRiddenOutWithNothingLost) {
  Collector collector(upstream_->uri(), "up/#");
  forward::Forwarder f(*buffer_, std::make_unique<MqttSink>(sink_options()), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(50, "before-")).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 50u; }));

  upstream_->stop();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(300, "during-")).ok());
  ASSERT_TRUE(wait_for([&] { return f.stats().state == "backing-off"; })) << f.stats().state;
  EXPECT_FALSE(f.stats().last_error.empty());
  EXPECT_EQ(buffer_->acked_seq("cloud"), 50u);  // the backlog waits in the buffer
  upstream_->start();

  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 350u; }, std::chrono::seconds(30)))
      << f.stats().last_error;
  ASSERT_TRUE(wait_for([&] {
    std::set<std::string> payloads;
    for (const auto& [t, body] : collector.messages()) payloads.insert(nlohmann::json::parse(body)["payload"]);
    for (int i = 0; i < 300; ++i) {
      if (!payloads.count("during-" + std::to_string(i))) return false;
    }
    return true;
  }));
  EXPECT_GT(f.stats().retries_total, 0u);
  EXPECT_TRUE(log_.contains("retrying in"));
}

double counter(const forward::Sink& sink, const std::string& name) {
  for (const auto& c : sink.counters()) {
    if (c.name == name) return c.value;
  }
  return -1;
}

// mosquitto drops a client silent for 1.5 x its keep alive; the forwarder's
// idle calls ping, so records after a quiet spell go over the same connection.
TEST_F(MqttSinkTest, AnIdleConnectionIsKeptAliveByPings) {
  Collector collector(upstream_->uri(), "up/#");
  auto o = sink_options();
  o.keepalive_s = 1;
  auto sink = std::make_unique<MqttSink>(o);
  const MqttSink& view = *sink;
  forward::Forwarder f(*buffer_, std::move(sink), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(10, "first-")).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 10u; })) << f.stats().last_error;
  std::this_thread::sleep_for(std::chrono::seconds(4));  // > 1.5 x keep alive, twice
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(10, "second-")).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 20u; })) << f.stats().last_error;
  EXPECT_EQ(counter(view, "connects_total"), 1);
  EXPECT_EQ(f.stats().retries_total, 0u);
  ASSERT_TRUE(wait_for([&] { return collector.messages().size() == 20u; }));
}

TEST_F(MqttSinkTest, Mqtt5DeliversInOrder) {
  Collector collector(upstream_->uri(), "up/#");
  auto o = sink_options();
  o.mqtt5 = true;
  forward::Forwarder f(*buffer_, std::make_unique<MqttSink>(o), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(3000, "v5-")).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 3000u; })) << f.stats().last_error;
  ASSERT_TRUE(wait_for([&] { return collector.messages().size() == 3000u; }));
  std::uint64_t last = 0;
  for (const auto& [topic, body] : collector.messages()) {
    const auto seq = nlohmann::json::parse(body)["seq"].get<std::uint64_t>();
    EXPECT_GT(seq, last);
    last = seq;
  }
  EXPECT_EQ(f.stats().retries_total, 0u);
}

TEST_F(MqttSinkTest, RawPayloadModeSendsTheSensorsBytes) {
  Collector collector(upstream_->uri(), "raw/#");
  auto o = sink_options();
  o.payload = MqttPayload::kRaw;
  o.topic_template = "raw/{topic}";
  forward::Forwarder f(*buffer_, std::make_unique<MqttSink>(o), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait({testing::make_record(std::string("\x01\x02{}", 4), "d-9")}).ok());
  ASSERT_TRUE(wait_for([&] { return collector.messages().size() == 1; }));
  EXPECT_EQ(collector.messages()[0].first, "raw/sensors/d-9/temp");
  EXPECT_EQ(collector.messages()[0].second, std::string("\x01\x02{}", 4));
}

// Mutual TLS to an upstream mosquitto that requires client certificates
// from its CA. A second, plain listener on loopback lets the collector read
// back what arrived.
class MqttSinkTlsTest : public MqttSinkTest {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<testing::TestPki>(dir_.path());
    pki_->client("gateway");
    const std::string d = dir_.path().string();
    plain_port_ = testing::free_loopback_port();
    tls_upstream_ = std::make_unique<testing::Mosquitto>(
        dir_ / "tls-upstream", "cafile " + d + "/ca.pem\ncertfile " + d + "/server.pem\nkeyfile " + d +
                                   "/server.key\nrequire_certificate true\nlistener " + std::to_string(plain_port_) +
                                   " 127.0.0.1\n");
    open_buffer();
  }
  MqttSinkOptions tls_options() {
    MqttSinkOptions o;
    o.name = "cloud";
    o.host = "localhost";
    o.port = tls_upstream_->port();
    o.tls = true;
    o.gateway_id = "gw-1";
    o.topic_template = "up/{gateway}/{key}";
    o.timeout = std::chrono::milliseconds(2000);
    o.ca_file = pki_->file("ca.pem");
    o.cert_file = pki_->file("gateway.pem");
    o.key_file = pki_->file("gateway.key");
    return o;
  }
  std::string plain_uri() const { return "tcp://127.0.0.1:" + std::to_string(plain_port_); }
  std::unique_ptr<testing::TestPki> pki_;
  std::uint16_t plain_port_ = 0;
  std::unique_ptr<testing::Mosquitto> tls_upstream_;
};

TEST_F(MqttSinkTlsTest, WithItsClientCertificateEveryRecordArrives) {
  Collector collector(plain_uri(), "up/#");
  forward::Forwarder f(*buffer_, std::make_unique<MqttSink>(tls_options()), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(50, "tls-")).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("cloud") == 50u; })) << f.stats().last_error;
  ASSERT_TRUE(wait_for([&] { return collector.messages().size() == 50u; }));
  EXPECT_EQ(nlohmann::json::parse(collector.messages().back().second)["payload"], "tls-49");
}

// Refused links keep the batch in the buffer (retried, never dead-lettered)
// and say why: no client certificate; a broker the configured CA did not sign.
TEST_F(MqttSinkTlsTest, RefusedLinksKeepTheBatchAndSayWhy) {
  struct Case {
    std::string what;
    std::function<void(MqttSinkOptions&)> change;
    std::string error;  // in the sink's error
  };
  const std::vector<Case> cases{
      {"no client certificate", [](MqttSinkOptions& o) { o.cert_file.clear(), o.key_file.clear(); }, "connect"},
      {"another CA", [&](MqttSinkOptions& o) { o.ca_file = pki_->file("other-ca.pem"); }, "certificate verify failed"},
  };
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(5)).ok());
  for (const auto& c : cases) {
    auto o = tls_options();
    c.change(o);
    forward::Forwarder f(*buffer_, std::make_unique<MqttSink>(o), fast(), log_.fn());
    f.start();
    ASSERT_TRUE(wait_for([&] { return f.stats().retries_total >= 2; })) << c.what;
    f.stop();
    EXPECT_EQ(buffer_->acked_seq("cloud"), 0u) << c.what;
    EXPECT_NE(f.stats().last_error.find(c.error), std::string::npos) << c.what << ": " << f.stats().last_error;
  }
  EXPECT_TRUE(buffer_->dead_letters(10).empty());
}

}  // namespace
}  // namespace tidegate::sinks
