// TLS and mutual TLS between the MQTT source and a real mosquitto, with a
// CA and certificates made by the openssl command for this test run.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "mosquitto.h"
#include "test_pki.h"
#include "test_support.h"
#include "tidegate/drivers/mqtt/mqtt_source.h"

namespace tidegate::drivers::mqtt {
namespace {

using testing::wait_for;

class MqttTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path().string();
    testing::TestPki pki(dir_.path());
    pki.client("client");
    pki.client("printer.example");  // signed by the CA, for another name
    broker_ = std::make_unique<testing::Mosquitto>(dir_ / "broker", "cafile " + d + "/ca.pem\ncertfile " + d +
                                                                          "/server.pem\nkeyfile " + d +
                                                                          "/server.key\nrequire_certificate true\n");
    buffer::BufferOptions bo;
    bo.path = dir_ / "buffer.db";
    bo.commit_window = std::chrono::milliseconds(2);
    bo.log = log_.fn();
    buffer_ = buffer::Buffer::open(bo);
  }

  MqttSourceOptions options() {
    MqttSourceOptions o;
    o.name = "tls";
    o.host = "localhost";  // the name in the server certificate
    o.port = broker_->port();
    o.client_id = "tidegate-tls";
    o.subscriptions = {{"sensors/#", 1}};
    o.tls.enabled = true;
    o.tls.ca_file = (dir_ / "ca.pem").string();
    o.tls.cert_file = (dir_ / "client.pem").string();
    o.tls.key_file = (dir_ / "client.key").string();
    o.reconnect_min = std::chrono::milliseconds(50);
    o.reconnect_max = std::chrono::milliseconds(200);
    return o;
  }

  testing::TempDir dir_;
  testing::LogCapture log_;
  std::unique_ptr<testing::Mosquitto> broker_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

TEST_F(MqttTlsTest, MutualTlsConnectsAndMessagesArrive) {
  MqttSource source(options(), *buffer_, log_.fn());
  source.start();
  ASSERT_TRUE(wait_for([&] { return source.mqtt_stats().state == "connected"; })) << source.stats().last_error;
  // Publish over TLS as well, with Paho, once the subscription is active.
  ::mqtt::async_client pub("ssl://localhost:" + std::to_string(broker_->port()), "tls-publisher");
  auto ssl = ::mqtt::ssl_options_builder()
                 .trust_store((dir_ / "ca.pem").string())
                 .key_store((dir_ / "client.pem").string())
                 .private_key((dir_ / "client.key").string())
                 .finalize();
  pub.connect(::mqtt::connect_options_builder().ssl(ssl).clean_session(true).finalize())->wait();
  ASSERT_TRUE(wait_for([&] {
    pub.publish(::mqtt::make_message("sensors/d1/t", "over-tls", 1, false))->wait();
    return buffer_->stats().records > 0;
  }));
  pub.disconnect()->wait();
  EXPECT_EQ(buffer_->read_after(0, 1, SIZE_MAX).records.at(0).payload, "over-tls");
}

TEST_F(MqttTlsTest, MissingClientCertificateIsRefused) {
  auto o = options();
  o.tls.cert_file.clear();
  o.tls.key_file.clear();
  MqttSource source(o, *buffer_, log_.fn());
  source.start();
  ASSERT_TRUE(wait_for([&] { return source.mqtt_stats().common.errors_total >= 2; }));
  EXPECT_NE(source.mqtt_stats().state, "connected");
  EXPECT_GE(source.mqtt_stats().connects_total, 0u);
  EXPECT_TRUE(log_.contains("reconnecting in"));
}

TEST_F(MqttTlsTest, AnUntrustedBrokerIsRefusedUnlessVerificationIsOff) {
  auto o = options();
  o.tls.ca_file = (dir_ / "other-ca.pem").string();
  {
    MqttSource source(o, *buffer_, log_.fn());
    source.start();
    ASSERT_TRUE(wait_for([&] { return source.mqtt_stats().common.errors_total >= 1; }));
    EXPECT_NE(source.stats().last_error.find("TLS handshake"), std::string::npos) << source.stats().last_error;
    EXPECT_EQ(source.mqtt_stats().connects_total, 0u);
  }
  o.tls.insecure_skip_verify = true;
  MqttSource insecure(o, *buffer_, log_.fn());
  insecure.start();
  ASSERT_TRUE(wait_for([&] { return insecure.mqtt_stats().state == "connected"; })) << insecure.stats().last_error;
  EXPECT_TRUE(log_.contains("TLS certificate verification is OFF"));
}

TEST_F(MqttTlsTest, TheBrokerNameMustMatchItsCertificate) {
  // A broker whose certificate (from the right CA) is for another name.
  const std::string d = dir_.path().string();
  testing::Mosquitto other(dir_ / "other", "cafile " + d + "/ca.pem\ncertfile " + d + "/printer.example.pem\nkeyfile " +
                                               d + "/printer.example.key\nrequire_certificate true\n");
  for (const auto& [host, reason] : {std::pair<std::string, std::string>{"localhost", "(hostname mismatch)"},
                                     std::pair<std::string, std::string>{"127.0.0.1", "(IP address mismatch)"}}) {
    auto o = options();
    o.host = host;
    o.port = other.port();
    MqttSource source(o, *buffer_, log_.fn());
    source.start();
    ASSERT_TRUE(wait_for([&] { return source.mqtt_stats().common.errors_total >= 1; })) << host;
    EXPECT_NE(source.stats().last_error.find("TLS handshake"), std::string::npos) << source.stats().last_error;
    EXPECT_NE(source.stats().last_error.find(reason), std::string::npos) << source.stats().last_error;
    EXPECT_EQ(source.mqtt_stats().connects_total, 0u) << host;
    source.stop();
  }
}

// The broker's address as an IP: checked against the certificate's IP
// addresses (the test certificate names 127.0.0.1 too).
TEST_F(MqttTlsTest, ABrokerReachedByItsIpAddressIsCheckedAgainstTheCertificatesAddresses) {
  auto o = options();
  o.host = "127.0.0.1";
  MqttSource source(o, *buffer_, log_.fn());
  source.start();
  ASSERT_TRUE(wait_for([&] { return source.mqtt_stats().state == "connected"; })) << source.stats().last_error;
  source.stop();
}

}  // namespace
}  // namespace tidegate::drivers::mqtt
