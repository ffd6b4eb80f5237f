// The Kinesis sink against kinesalite (a real Kinesis API on loopback, read
// back with the AWS SDK), a small PutRecords server of the test's own for
// what kinesalite never does (partial failure, throttling), and
// @smithy/signature-v4 for the signature (kinesalite does not check it).
#include "tidegate/sinks/kinesis_sink.h"

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "mosquitto.h"  // free_loopback_port, port_accepts
#include "doc_examples.h"
#include "forward_support.h"
#include "http_server.h"
#include "process.h"
#include "test_pki.h"
#include "test_support.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/sinks/kpl.h"

namespace tidegate::sinks {
namespace {

using testing::wait_for;
namespace beast = boost::beast;
namespace http = beast::http;

const std::string kPeerDir = TIDEGATE_KINESIS_PEER_DIR;

std::string node_output(const std::vector<std::string>& args, const std::filesystem::path& out) {
  std::vector<std::string> argv = {TIDEGATE_NODE, kPeerDir + "/peer.js"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::filesystem::remove(out);
  testing::Process p(argv, out);
  // Bounded: a peer that never finishes fails the test with its output
  // instead of holding it until ctest's timeout.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (p.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (p.running()) {
    p.signal_and_wait(SIGKILL);
    ADD_FAILURE() << "node peer.js " << args.front() << " did not finish in 2 minutes: " << p.output();
    return p.output();
  }
  const int status = p.exit_status();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << p.output();
  return p.output();
}

std::string base64_decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    const auto pos = chars.find(c);
    if (pos == std::string::npos) break;
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

// Every record of a stream, read back with the AWS SDK (peer.js read).
std::vector<nlohmann::json> read_stream(std::uint16_t port, const std::filesystem::path& scratch) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(node_output({"read", std::to_string(port), "readings"}, scratch / "read.out"));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

TEST(KinesisSignature, MatchesSmithySignatureV4ForAPutRecordsRequest) {
  testing::TempDir dir;
  sigv4::Request r;
  r.method = "POST";
  r.payload = "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"e30=\",\"PartitionKey\":\"d-1\"}]}";
  r.headers = {{"host", "kinesis.eu-west-1.amazonaws.com"},
               {"content-type", "application/x-amz-json-1.1"},
               {"x-amz-target", "Kinesis_20131202.PutRecords"},
               {"x-amz-date", "20261125T221708Z"}};
  const sigv4::Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  const auto ours = sigv4::sign(r, c, "eu-west-1", "kinesis", "20261125T221708Z");
  nlohmann::json q;
  q["method"] = "POST";
  q["host"] = "kinesis.eu-west-1.amazonaws.com";
  q["path"] = "/";
  q["body"] = r.payload;
  q["region"] = "eu-west-1";
  q["service"] = "kinesis";
  q["accessKeyId"] = c.access_key_id;
  q["secretAccessKey"] = c.secret_access_key;
  q["amzDate"] = "20261125T221708Z";
  for (const auto& [k, v] : r.headers) q["headers"][k] = v;
  auto theirs = node_output({"sign", q.dump()}, dir / "sign.out");
  while (!theirs.empty() && theirs.back() == '\n') theirs.pop_back();
  EXPECT_EQ(ours.authorization, theirs);
}

class KinesaliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::free_loopback_port();
    peer_ = std::make_unique<testing::Process>(
        std::vector<std::string>{TIDEGATE_NODE, kPeerDir + "/peer.js", "serve", std::to_string(port_)},
        dir_ / "kinesalite.log");
    // node takes a few seconds to load kinesalite on a busy machine.
    ASSERT_TRUE(wait_for([&] { return testing::port_accepts(port_); }, std::chrono::seconds(30))) << peer_->output();
    node_output({"create", std::to_string(port_), "readings", "2"}, dir_ / "create.out");
    buffer::BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.log = log_.fn();
    buffer_ = buffer::Buffer::open(o);
  }
  KinesisSinkOptions sink_options() {
    KinesisSinkOptions k;
    k.stream = "readings";
    k.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    k.credentials = {"AKIDEXAMPLE", "secret", ""};
    k.gateway_id = "gw-k";
    return k;
  }
  std::vector<nlohmann::json> read_stream() { return sinks::read_stream(port_, dir_.path()); }
  testing::TempDir dir_;
  testing::LogCapture log_;
  std::uint16_t port_ = 0;
  std::unique_ptr<testing::Process> peer_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

TEST_F(KinesaliteTest, RecordsLandInTheStreamByteIdenticalAndInOrderPerDevice) {
  forward::ForwarderOptions fo;
  fo.linger = std::chrono::milliseconds(5);
  forward::Forwarder f(*buffer_, std::make_unique<KinesisSink>(sink_options()), fo, log_.fn());
  f.start();
  constexpr int kRecords = 600;
  for (int b = 0; b < 6; ++b) {
    std::vector<buffer::NewRecord> batch;
    for (int i = 0; i < 100; ++i) {
      const int n = b * 100 + i;
      auto r = testing::make_record("{\"n\":" + std::to_string(n) + "}", "dev-" + std::to_string(n % 6));
      if (n % 50 == 0) r.payload += std::string("\0\xff", 2);  // bytes, not text
      batch.push_back(std::move(r));
    }
    ASSERT_TRUE(buffer_->append_wait(std::move(batch)).ok());
  }
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("kinesis") == static_cast<std::uint64_t>(kRecords); }))
      << f.stats().last_error;
  auto got = read_stream();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kRecords));
  std::map<std::string, std::uint64_t> last_seq_per_key;
  std::map<std::string, std::string> shard_of_key;
  for (const auto& rec : got) {
    auto envelope = nlohmann::json::parse(base64_decode(rec["data"].get<std::string>()));
    const auto seq = envelope["seq"].get<std::uint64_t>();
    const auto key = rec["key"].get<std::string>();
    EXPECT_EQ(envelope["gateway"], "gw-k");
    EXPECT_EQ(envelope["partition_key"], key);  // the device is the partition key
    const std::string payload = envelope.contains("payload")
                                    ? envelope["payload"].get<std::string>()
                                    : base64_decode(envelope["payload_base64"].get<std::string>());
    std::string expected = "{\"n\":" + std::to_string(seq - 1) + "}";
    if ((seq - 1) % 50 == 0) expected += std::string("\0\xff", 2);
    EXPECT_EQ(payload, expected);
    // Within its shard, each device's records come back in the gateway's order.
    EXPECT_GT(seq, last_seq_per_key[key]) << key;
    last_seq_per_key[key] = seq;
    if (shard_of_key.count(key)) {
      EXPECT_EQ(shard_of_key[key], rec["shard"].get<std::string>());
    }
    shard_of_key[key] = rec["shard"].get<std::string>();
  }
  EXPECT_EQ(last_seq_per_key.size(), 6u);
}

// Kinesis over HTTPS, as to AWS: kinesalite behind a TLS front (socat) with a
// certificate from the test's CA. An endpoint whose certificate the sink
// cannot verify gets no request and the batch waits; with the right CA file
// every record lands.
TEST_F(KinesaliteTest, OverHttpsRecordsLandAndAnEndpointThatCannotBeVerifiedGetsNothing) {
  const auto pki_dir = dir_ / "pki";
  std::filesystem::create_directories(pki_dir);
  testing::TestPki pki(pki_dir);
  const auto tls_port = testing::free_loopback_port();
  testing::Process front({"/usr/bin/socat",
                          "OPENSSL-LISTEN:" + std::to_string(tls_port) + ",bind=127.0.0.1,reuseaddr,fork,cert=" +
                              pki.file("server.pem") + ",key=" + pki.file("server.key") + ",verify=0",
                          "TCP:127.0.0.1:" + std::to_string(port_)},
                         dir_ / "socat.log");
  ASSERT_TRUE(wait_for([&] { return testing::port_accepts(tls_port); }, std::chrono::seconds(10))) << front.output();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(100, "over-tls")).ok());
  auto options = [&](const std::string& ca) {
    auto k = sink_options();
    k.endpoint = "https://localhost:" + std::to_string(tls_port);
    k.ca_file = pki.file(ca);
    k.timeout = std::chrono::milliseconds(2000);
    return k;
  };
  const auto fo = testing::quick_forwarder(std::chrono::milliseconds(5), std::chrono::milliseconds(30));
  {
    forward::Forwarder f(*buffer_, std::make_unique<KinesisSink>(options("other-ca.pem")), fo, log_.fn());
    f.start();
    ASSERT_TRUE(wait_for([&] { return f.stats().retries_total >= 2; })) << f.stats().last_error;
    f.stop();
    EXPECT_EQ(buffer_->acked_seq("kinesis"), 0u);
    EXPECT_NE(f.stats().last_error.find("unable to get local issuer certificate"), std::string::npos)
        << f.stats().last_error;
  }
  EXPECT_TRUE(read_stream().empty()) << "nothing may reach an endpoint that was not verified";
  forward::Forwarder f(*buffer_, std::make_unique<KinesisSink>(options("ca.pem")), fo, log_.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("kinesis") == 100u; })) << f.stats().last_error;
  f.stop();
  const auto got = read_stream();
  ASSERT_EQ(got.size(), 100u);
  std::set<std::string> payloads;
  for (const auto& rec : got) {
    payloads.insert(nlohmann::json::parse(base64_decode(rec["data"].get<std::string>()))["payload"].get<std::string>());
  }
  EXPECT_EQ(payloads.size(), 100u);
  EXPECT_TRUE(payloads.count("over-tls99"));
}

TEST_F(KinesaliteTest, AggregatedRecordsDeaggregateToEveryReadingInOrder) {
  auto o = sink_options();
  o.aggregate = true;
  o.data = KinesisData::kRaw;
  forward::ForwarderOptions fo;
  fo.linger = std::chrono::milliseconds(20);
  forward::Forwarder f(*buffer_, std::make_unique<KinesisSink>(o), fo, log_.fn());
  std::vector<buffer::NewRecord> batch;
  for (int n = 0; n < 400; ++n) batch.push_back(testing::make_record(std::to_string(n), "dev-" + std::to_string(n % 4)));
  ASSERT_TRUE(buffer_->append_wait(std::move(batch)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("kinesis") == 400u; })) << f.stats().last_error;
  auto got = read_stream();
  EXPECT_LT(got.size(), 40u);  // a handful of Kinesis records carry 400 readings
  std::map<std::string, int> last;
  std::size_t readings = 0;
  for (const auto& rec : got) {
    auto inner = kpl::deaggregate(base64_decode(rec["data"].get<std::string>()));
    ASSERT_TRUE(inner.has_value());
    const auto key = rec["key"].get<std::string>();
    for (const auto& d : *inner) {
      const int n = std::stoi(d);
      EXPECT_EQ(key, "dev-" + std::to_string(n % 4));
      if (last.count(key)) {
        EXPECT_GT(n, last[key]);
      }
      last[key] = n;
      ++readings;
    }
  }
  EXPECT_EQ(readings, 400u);
}

// End to end, as deployed: sensors publish QoS 1 to mosquitto, the tidegate
// process takes them in and forwards them to the stream.
TEST_F(KinesaliteTest, ReadingsPublishedOverMqttLandInTheStream) {
  testing::Mosquitto broker(dir_ / "broker");
  const auto config = dir_ / "tidegate.toml";
  std::ofstream(config) << "[gateway]\nid = \"e2e\"\n" << testing::kQuietDaemon << "[buffer]\npath = \"" << (dir_ / "gw.db").string()
                        << "\"\ndisk_reserve = 0\n[[sources.mqtt]]\nname = \"local\"\nurl = \"mqtt://127.0.0.1:"
                        << broker.port() << "\"\ntopics = [\"sensors/#\"]\nkey_from_topic = \"sensors/{device}/#\"\n"
                        << "[[sinks.kinesis]]\nname = \"stream\"\nstream = \"readings\"\ndata = \"raw\"\n"
                        << "endpoint = \"http://127.0.0.1:" << port_ << "\"\naccess_key_id = \"AKIDEXAMPLE\"\n"
                        << "secret_access_key = \"secret\"\n";
  testing::Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, dir_ / "gateway.log");
  ASSERT_TRUE(wait_for([&] { return gw.output().find("subscribed to") != std::string::npos; })) << gw.output();
  constexpr int kMessages = 300;
  {
    ::mqtt::async_client pub(broker.uri(), "sensor-sim", 10000, nullptr);
    pub.connect(::mqtt::connect_options_builder().clean_session(true).finalize())->wait();
    std::vector<::mqtt::delivery_token_ptr> tokens;
    for (int i = 0; i < kMessages; ++i) {
      tokens.push_back(pub.publish(::mqtt::make_message("sensors/dev-" + std::to_string(i % 4) + "/t",
                                                        "{\"i\":" + std::to_string(i) + "}", 1, false)));
    }
    for (auto& t : tokens) t->wait();
    pub.disconnect()->wait();
  }
  std::vector<nlohmann::json> got;
  ASSERT_TRUE(wait_for([&] {
    got = read_stream();
    return got.size() >= static_cast<std::size_t>(kMessages);
  }, std::chrono::seconds(30))) << got.size() << "\n" << gw.output();
  EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages));  // nothing failed, so exactly once
  std::map<std::string, int> last;
  for (const auto& rec : got) {
    const auto data = base64_decode(rec["data"].get<std::string>());  // raw: the sensor's bytes
    const int i = nlohmann::json::parse(data)["i"].get<int>();
    const auto key = rec["key"].get<std::string>();
    EXPECT_EQ(key, "dev-" + std::to_string(i % 4));
    if (last.count(key)) {
      EXPECT_GT(i, last[key]) << key;  // in order per device
    }
    last[key] = i;
  }
}

// docs/cloud.md's Kinesis configuration, as a reader copies it, run against
// the local Kinesis API: only the endpoint is added, ports and paths moved to
// the test's, and the keys come from an environment file as in the docs.
TEST_F(KinesaliteTest, TheKinesisExampleOfTheDocsDeliversToTheStream) {
  auto toml = testing::doc_example(std::filesystem::path(TIDEGATE_SOURCE_DIR) / "docs" / "cloud.md", "kinesis");
  ASSERT_FALSE(toml.empty());
  node_output({"create", std::to_string(port_), "building-readings", "1"}, dir_ / "create2.out");
  const auto listener = testing::free_loopback_port();
  const auto status = testing::free_loopback_port();
  std::filesystem::create_directories(dir_ / "gateway");  // the fixture's own buffer is in dir_
  testing::replace_all(toml, "/var/lib/tidegate/", (dir_ / "gateway" / "").string());
  testing::replace_all(toml, "listen = \"0.0.0.0:1883\"", "listen = \"127.0.0.1:" + std::to_string(listener) + "\"");
  testing::replace_all(toml, "listen = \"0.0.0.0:8080\"", "listen = \"127.0.0.1:" + std::to_string(status) + "\"");
  testing::replace_all(toml, "region = \"eu-west-1\"",
                       "region = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:" + std::to_string(port_) + "\"");
  const auto config = dir_ / "cloud-kinesis.toml";
  std::ofstream(config) << toml;
  const auto env_file = dir_ / "default-tidegate";
  std::ofstream(env_file) << "AWS_ACCESS_KEY_ID=AKIDEXAMPLE\nAWS_SECRET_ACCESS_KEY=secret\n";
  testing::Process gw({TIDEGATE_BINARY, "run", "--config", config.string(), "--env-file", env_file.string()},
                      dir_ / "gateway.log");
  ASSERT_TRUE(wait_for([&] { return testing::port_accepts(listener); })) << gw.output();
  constexpr int kMessages = 50;
  {
    ::mqtt::async_client pub("tcp://127.0.0.1:" + std::to_string(listener), "ahu-1", 1000, nullptr);
    pub.connect(::mqtt::connect_options_builder().clean_session(true).finalize())->wait();
    for (int i = 0; i < kMessages; ++i) {
      pub.publish(::mqtt::make_message("sensors/ahu-1/temp", "{\"i\":" + std::to_string(i) + "}", 1, false))->wait();
    }
    pub.disconnect()->wait();
  }
  std::vector<nlohmann::json> got;
  ASSERT_TRUE(wait_for([&] {
    got.clear();
    std::istringstream lines(
        node_output({"read", std::to_string(port_), "building-readings"}, dir_ / "read2.out"));
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] == '{') got.push_back(nlohmann::json::parse(line));
    }
    return got.size() >= static_cast<std::size_t>(kMessages);
  }, std::chrono::seconds(30))) << got.size() << "\n" << gw.output();
  EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    const auto envelope = nlohmann::json::parse(base64_decode(got[i]["data"].get<std::string>()));
    EXPECT_EQ(envelope["gateway"], "plant-room-3");
    EXPECT_EQ(envelope["partition_key"], "ahu-1");
    EXPECT_EQ(envelope["payload"], "{\"i\":" + std::to_string(i) + "}");
    EXPECT_EQ(got[i]["key"], "ahu-1");
  }
}

// Crash during forwarding: the tidegate process is killed with SIGKILL again
// and again while simulated sensors write and the Kinesis sink forwards.
// Every record reaches the stream at least once.
TEST_F(KinesaliteTest, EveryRecordReachesTheStreamThroughRepeatedKills) {
  const auto config = dir_ / "tidegate.toml";
  auto write_config = [&](bool with_sensors) {
    std::ofstream(config) << "[gateway]\nid = \"kill\"\n" << testing::kQuietDaemon << "[buffer]\npath = \"" << (dir_ / "gw.db").string()
                          // Cursors reach the file every 200 ms, not every 10 s: each killed
                          // run re-sends less, and kinesalite has less to hold and read back.
                          << "\"\ndisk_reserve = 0\nmaintenance_interval = \"200ms\"\n"
                          << (with_sensors ? "[[sources.sim]]\nname = \"sim\"\ndevices = 8\nrate = 50\n" : "")
                          << "[[sinks.kinesis]]\nname = \"stream\"\nstream = \"readings\"\nlinger = \"5ms\"\n"
                          << "endpoint = \"http://127.0.0.1:" << port_ << "\"\naccess_key_id = \"AKIDEXAMPLE\"\n"
                          << "secret_access_key = \"secret\"\n";
  };
  write_config(true);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> up_ms(150, 400);
  for (int kill = 0; kill < 10; ++kill) {
    const auto before = testing::runs_started(dir_ / "gateway.log");
    testing::Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, dir_ / "gateway.log");
    ASSERT_TRUE(wait_for([&] { return testing::runs_started(dir_ / "gateway.log") > before; }, std::chrono::seconds(30)));
    std::this_thread::sleep_for(std::chrono::milliseconds(up_ms(rng)));
    gw.signal_and_wait(SIGKILL);
  }
  // A last run without sensors delivers what is left.
  write_config(false);
  buffer::BufferOptions ro;
  ro.path = dir_ / "gw.db";
  ro.read_only = true;
  ro.log = [](buffer::LogLevel, std::string_view) {};
  const std::uint64_t last_seq = buffer::Buffer::open(ro)->stats().next_seq - 1;
  ASSERT_GT(last_seq, 100u);
  testing::Process gw({TIDEGATE_BINARY, "run", "--config", config.string()}, dir_ / "gateway.log");
  ASSERT_TRUE(wait_for([&] { return buffer::Buffer::open(ro)->acked_seq("stream") == last_seq; },
                       std::chrono::seconds(60)));
  EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  std::set<std::uint64_t> seqs;
  std::size_t lines = 0;
  for (const auto& rec : read_stream()) {
    seqs.insert(nlohmann::json::parse(base64_decode(rec["data"].get<std::string>()))["seq"].get<std::uint64_t>());
    ++lines;
  }
  for (std::uint64_t s = 1; s <= last_seq; ++s) ASSERT_TRUE(seqs.count(s)) << "seq " << s << " never reached the stream";
  std::printf("kinesis crash test: %llu records, %zu in the stream, %zu duplicates\n",
              static_cast<unsigned long long>(last_seq), lines, lines - seqs.size());
}

// A buffer that commits at once, for tests that fill it first.
std::unique_ptr<buffer::Buffer> open_buffer(const testing::TempDir& dir) {
  buffer::BufferOptions bo;
  bo.path = dir / "buffer.db";
  bo.commit_window = std::chrono::milliseconds(1);
  return buffer::Buffer::open(bo);
}

// The sink's options against a scripted PutRecords server: raw payloads, so
// the server sees the test's bytes.
KinesisSinkOptions scripted_sink(std::uint16_t port) {
  KinesisSinkOptions k;
  k.stream = "s";
  k.endpoint = "http://127.0.0.1:" + std::to_string(port);
  k.credentials = {"A", "S", ""};
  k.data = KinesisData::kRaw;
  return k;
}

// Uplink outage: kinesalite (keeping its data on disk) is stopped while
// readings keep arriving; the backlog waits in the buffer; it comes back and
// everything is delivered.
TEST(KinesisOutage, TheBacklogIsDeliveredWhenTheStreamComesBack) {
  testing::TempDir dir;
  const auto port = testing::free_loopback_port();
  const auto data = (dir / "kinesalite").string();
  std::filesystem::create_directories(data);
  auto start_peer = [&] {
    auto p = std::make_unique<testing::Process>(
        std::vector<std::string>{TIDEGATE_NODE, kPeerDir + "/peer.js", "serve", std::to_string(port), data},
        dir / "kinesalite.log");
    EXPECT_TRUE(wait_for([&] { return testing::port_accepts(port); }, std::chrono::seconds(30))) << p->output();
    return p;
  };
  auto peer = start_peer();
  node_output({"create", std::to_string(port), "readings", "1"}, dir / "create.out");
  auto buf = open_buffer(dir);
  KinesisSinkOptions k;
  k.stream = "readings";
  k.endpoint = "http://127.0.0.1:" + std::to_string(port);
  k.credentials = {"AKIDEXAMPLE", "secret", ""};
  k.timeout = std::chrono::milliseconds(1000);
  const auto fo = testing::quick_forwarder(std::chrono::milliseconds(50), std::chrono::milliseconds(300));
  testing::LogCapture log;
  forward::Forwarder f(*buf, std::make_unique<KinesisSink>(k), fo, log.fn());
  f.start();
  ASSERT_TRUE(buf->append_wait(testing::make_records(100, "before-")).ok());
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 100u; })) << f.stats().last_error;

  peer->signal_and_wait(SIGTERM);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(buf->append_wait(testing::make_records(100, "during-")).ok());
  ASSERT_TRUE(wait_for([&] { return f.stats().state == "backing-off"; }));
  EXPECT_EQ(buf->acked_seq("kinesis"), 100u);
  for (const auto& s : buf->stats().sinks) {
    EXPECT_EQ(s.lag_records, 1000u);  // the backlog, on disk
  }
  peer = start_peer();
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 1100u; }, std::chrono::seconds(30)))
      << f.stats().last_error;
  std::set<std::uint64_t> seqs;
  for (const auto& line : read_stream(port, dir.path())) {
    seqs.insert(nlohmann::json::parse(base64_decode(line["data"].get<std::string>()))["seq"].get<std::uint64_t>());
  }
  for (std::uint64_t s = 1; s <= 1100; ++s) ASSERT_TRUE(seqs.count(s)) << "seq " << s;
  EXPECT_GT(f.stats().retries_total, 0u);
}

// A PutRecords server of the test's own, for what kinesalite never does
// (failing records, throttling): it answers from a script and keeps what it
// was sent.
class ScriptedKinesis {
 public:
  using Reply = std::function<std::pair<int, std::string>(const nlohmann::json& request, int call)>;
  explicit ScriptedKinesis(Reply reply)
      : reply_(std::move(reply)), server_([this](const testing::LoopbackHttpServer::Request& req, int call) {
          auto body = nlohmann::json::parse(req.body());
          std::vector<std::string> data;
          for (const auto& r : body["Records"]) data.push_back(base64_decode(r["Data"].get<std::string>()));
          {
            std::lock_guard lock(mu_);
            calls_.push_back(data);
          }
          return reply_(body, call);
        }) {}
  std::uint16_t port() const { return server_.port(); }
  std::vector<std::vector<std::string>> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  Reply reply_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> calls_;
  testing::LoopbackHttpServer server_;  // last: stops before the rest goes
};

std::string all_ok(std::size_t n) {
  nlohmann::json r;
  r["FailedRecordCount"] = 0;
  r["Records"] = nlohmann::json::array();
  for (std::size_t i = 0; i < n; ++i) {
    r["Records"].push_back({{"SequenceNumber", std::to_string(i)}, {"ShardId", "shardId-0"}});
  }
  return r.dump();
}

TEST(KinesisPartialFailure, OnlyFailedRecordsAreResentAndThrottlingBacksOff) {
  testing::TempDir dir;
  ScriptedKinesis server([](const nlohmann::json& req, int call) -> std::pair<int, std::string> {
    const auto n = req["Records"].size();
    if (call == 0) {  // records 1 and 3 of the batch fail
      nlohmann::json r;
      r["FailedRecordCount"] = 2;
      for (std::size_t i = 0; i < n; ++i) {
        if (i == 1 || i == 3) {
          r["Records"].push_back({{"ErrorCode", "ProvisionedThroughputExceededException"},
                                  {"ErrorMessage", "Rate exceeded for shard shardId-0"}});
        } else {
          r["Records"].push_back({{"SequenceNumber", "1"}, {"ShardId", "shardId-0"}});
        }
      }
      return {200, r.dump()};
    }
    if (call == 1) return {400, "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"};
    return {200, all_ok(n)};
  });
  auto buf = open_buffer(dir);
  auto k = scripted_sink(server.port());
  forward::ForwarderOptions fo;
  fo.retry_min = std::chrono::milliseconds(5);
  fo.retry_max = std::chrono::milliseconds(20);
  testing::LogCapture log;
  ASSERT_TRUE(buf->append_wait(testing::make_records(6, "r")).ok());
  forward::Forwarder f(*buf, std::make_unique<KinesisSink>(k), fo, log.fn());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 6u; })) << f.stats().last_error;
  auto calls = server.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0], (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4", "r5"}));
  EXPECT_EQ(calls[1], (std::vector<std::string>{"r1", "r3"}));  // only the failed ones
  EXPECT_EQ(calls[2], (std::vector<std::string>{"r1", "r3"}));  // again after the throttled call
  EXPECT_EQ(f.stats().retries_total, 2u);
  EXPECT_TRUE(log.contains("ProvisionedThroughputExceededException"));
}

// A PutRecords server that keeps each call's (partition key, data) pairs and
// how many calls were in flight at once; `reply` may fail calls.
class LaneRecorder {
 public:
  using Call = std::vector<std::pair<std::string, std::string>>;
  using Reply = std::function<int(const Call& call)>;  // HTTP status to answer
  LaneRecorder(std::chrono::milliseconds delay, Reply reply)
      : reply_(std::move(reply)), server_([this, delay](const testing::LoopbackHttpServer::Request& req, int) {
          const int now = ++in_flight_;
          for (int seen = max_in_flight_; now > seen && !max_in_flight_.compare_exchange_weak(seen, now);) {
          }
          std::this_thread::sleep_for(delay);  // a round trip to a far region
          Call call;
          const auto doc = nlohmann::json::parse(req.body());
          for (const auto& r : doc["Records"]) {
            call.emplace_back(r["PartitionKey"].get<std::string>(), base64_decode(r["Data"].get<std::string>()));
          }
          const int status = reply_(call);
          {
            std::lock_guard lock(mu_);
            calls_.push_back({call, status});
          }
          --in_flight_;
          return std::pair<int, std::string>{status, status == 200 ? all_ok(call.size()) : "Service Unavailable"};
        }) {}
  std::uint16_t port() const { return server_.port(); }
  int connections() const { return server_.connections(); }
  int max_in_flight() const { return max_in_flight_; }
  std::vector<std::pair<Call, int>> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  Reply reply_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0};
  std::mutex mu_;
  std::vector<std::pair<Call, int>> calls_;
  testing::LoopbackHttpServer server_;  // last: stops before the rest goes
};

// 2,000 readings from 64 devices, payload "<device>/<n>" with n counting per device.
std::vector<buffer::NewRecord> readings_of_64_devices() {
  std::vector<buffer::NewRecord> out;
  for (int i = 0; i < 2000; ++i) {
    const std::string device = "d" + std::to_string(i % 64);
    out.push_back(testing::make_record(device + "/" + std::to_string(i / 64), device));
  }
  return out;
}

// Each device's readings, in the order the server accepted them.
std::map<std::string, std::vector<int>> accepted_per_device(const std::vector<std::pair<LaneRecorder::Call, int>>& calls) {
  std::map<std::string, std::vector<int>> out;
  for (const auto& [call, status] : calls) {
    if (status != 200) continue;
    for (const auto& [key, data] : call) out[key].push_back(std::stoi(data.substr(data.find('/') + 1)));
  }
  return out;
}

void expect_every_device_complete_and_in_order(const std::map<std::string, std::vector<int>>& per_device) {
  ASSERT_EQ(per_device.size(), 64u);
  for (const auto& [device, ns] : per_device) {
    std::vector<int> want;
    for (int n = 0; n < static_cast<int>(ns.size()); ++n) want.push_back(n);
    EXPECT_EQ(ns, want) << device;
  }
}

TEST(KinesisLanes, EachDeviceTakesOneConnectionAndTheRoundTripsOverlap) {
  testing::TempDir dir;
  LaneRecorder server(std::chrono::milliseconds(100), [](const LaneRecorder::Call&) { return 200; });
  auto buf = open_buffer(dir);
  ASSERT_TRUE(buf->append_wait(readings_of_64_devices()).ok());
  auto k = scripted_sink(server.port());
  k.connections = 4;
  forward::Forwarder f(*buf, std::make_unique<KinesisSink>(k), forward::ForwarderOptions{}, nullptr);
  f.start();
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 2000u; })) << f.stats().last_error;
  const auto calls = server.calls();
  EXPECT_EQ(server.connections(), 4);
  EXPECT_GE(server.max_in_flight(), 2);  // lanes overlapped (all four, unless a thread started late)
  EXPECT_EQ(calls.size(), 4u);  // one batch of 2,000: the lanes balanced at 500 each
  std::map<std::string, int> calls_per_device;
  for (const auto& [call, status] : calls) {
    std::set<std::string> keys;
    for (const auto& [key, data] : call) keys.insert(key);
    for (const auto& key : keys) calls_per_device[key] += 1;
  }
  for (const auto& [device, n] : calls_per_device) EXPECT_EQ(n, 1) << device;  // a device in one lane
  expect_every_device_complete_and_in_order(accepted_per_device(calls));
  EXPECT_EQ(f.stats().resent_records_total, 0u);
}

TEST(KinesisLanes, ABatchThatFitsOneCallIsOneCallOnOneConnection) {
  testing::TempDir dir;
  LaneRecorder server(std::chrono::milliseconds(0), [](const LaneRecorder::Call&) { return 200; });
  auto buf = open_buffer(dir);
  auto readings = readings_of_64_devices();
  readings.resize(100);  // live traffic: a batch under one call's limits
  ASSERT_TRUE(buf->append_wait(readings).ok());
  auto k = scripted_sink(server.port());
  forward::Forwarder f(*buf, std::make_unique<KinesisSink>(k), forward::ForwarderOptions{}, nullptr);
  f.start();
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 100u; })) << f.stats().last_error;
  EXPECT_EQ(server.calls().size(), 1u);
  EXPECT_EQ(server.connections(), 1);
}

TEST(KinesisLanes, AFailedLaneIsSentAgainAloneAndItsDevicesKeepTheirOrder) {
  testing::TempDir dir;
  std::atomic<bool> failed_once{false};
  LaneRecorder server(std::chrono::milliseconds(0), [&](const LaneRecorder::Call& call) {
    const bool has_d5 = std::any_of(call.begin(), call.end(), [](const auto& r) { return r.first == "d5"; });
    if (has_d5 && !failed_once.exchange(true)) return 503;
    return 200;
  });
  auto buf = open_buffer(dir);
  ASSERT_TRUE(buf->append_wait(readings_of_64_devices()).ok());
  auto k = scripted_sink(server.port());
  forward::Forwarder f(*buf, std::make_unique<KinesisSink>(k),
                       testing::quick_forwarder(std::chrono::milliseconds(5), std::chrono::milliseconds(20)), nullptr);
  f.start();
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 2000u; })) << f.stats().last_error;
  const auto calls = server.calls();
  std::size_t failed_records = 0, accepted_records = 0;
  for (const auto& [call, status] : calls) (status == 200 ? accepted_records : failed_records) += call.size();
  EXPECT_GT(failed_records, 0u);
  EXPECT_EQ(accepted_records, 2000u);  // the other lanes' records went once
  EXPECT_EQ(f.stats().resent_records_total, failed_records);
  expect_every_device_complete_and_in_order(accepted_per_device(calls));
}

TEST(KinesisResponses, AreInterpretedPerRecord) {
  KinesisSinkOptions k;
  k.stream = "s";
  k.endpoint = "http://127.0.0.1:9";
  KinesisSink sink(k);
  EXPECT_EQ(sink.interpret(200, all_ok(2), 2).batch, forward::Outcome::kOk);
  auto bad = sink.interpret(200, "{\"FailedRecordCount\":0,\"Records\":[]}", 2);
  EXPECT_EQ(bad.batch, forward::Outcome::kRetry);  // a response that does not add up is no acknowledgement
  auto missing = sink.interpret(400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s not found\"}", 2);
  EXPECT_EQ(missing.batch, forward::Outcome::kRetry);
  EXPECT_FALSE(missing.throttled);
  EXPECT_NE(missing.error.find("Stream s not found"), std::string::npos);
  EXPECT_EQ(sink.interpret(503, "Service Unavailable", 2).batch, forward::Outcome::kRetry);
  EXPECT_TRUE(sink.interpret(400, "{\"__type\":\"LimitExceededException\"}", 2).throttled);
}

// What an upstream (or something pretending to be one) answers is outside
// input: no answer may throw, and only a record the answer shows stored (a
// SequenceNumber, no ErrorCode) counts as delivered, whatever
// FailedRecordCount claims.
TEST(KinesisResponses, OnlyARecordShownStoredIsAcknowledgedAndNoAnswerThrows) {
  KinesisSinkOptions k;
  k.stream = "s";
  k.endpoint = "http://127.0.0.1:9";
  KinesisSink sink(k);
  using forward::Outcome;
  const auto lying = sink.interpret(
      200,
      R"({"FailedRecordCount":0,"Records":[{"ErrorCode":"InternalFailure","ErrorMessage":"x"},)"
      R"({"SequenceNumber":"1","ShardId":"shardId-0"},{}]})",
      3);
  EXPECT_EQ(lying.outcome_of(0), Outcome::kRetry);
  EXPECT_EQ(lying.outcome_of(1), Outcome::kOk);
  EXPECT_EQ(lying.outcome_of(2), Outcome::kRetry);  // neither stored nor failed: not an acknowledgement
  EXPECT_NE(lying.error.find("2 of 3 records"), std::string::npos) << lying.error;
  for (const auto& [status, body] : std::vector<std::pair<int, std::string>>{
           {500, "[1]"},
           {400, R"({"__type":7,"message":["x"]})"},
           {200, R"({"FailedRecordCount":"x","Records":[{"ErrorCode":5}]})"},
           {200, R"({"Records":[7]})"},
           {200, R"({"Records":{"a":1}})"}}) {
    forward::SendResult r;
    EXPECT_NO_THROW(r = sink.interpret(status, body, 1)) << body;
    EXPECT_EQ(r.outcome_of(0), Outcome::kRetry) << body;
  }
}

TEST(KinesisRequests, UseTheDeviceAsPartitionKeyAndStayWithinTheApiLimits) {
  KinesisSinkOptions k;
  k.stream = "readings";
  k.endpoint = "http://127.0.0.1:9";
  k.gateway_id = "gw";
  KinesisSink sink(k);
  buffer::Record r;
  static_cast<buffer::NewRecord&>(r) = testing::make_record("{}", "boiler-7");
  r.seq = 42;
  auto body = nlohmann::json::parse(sink.put_records_body({r}));
  EXPECT_EQ(body["StreamName"], "readings");
  EXPECT_EQ(body["Records"][0]["PartitionKey"], "boiler-7");
  EXPECT_EQ(nlohmann::json::parse(base64_decode(body["Records"][0]["Data"].get<std::string>()))["seq"], 42);
  EXPECT_LE(sink.limits().max_record_bytes * 4 / 3, 1u << 20);  // base64 of a record stays under 1 MiB

  // A batch is cut into calls of at most 500 records and 5 MiB of body.
  using Spans = std::vector<std::pair<std::size_t, std::size_t>>;
  const std::vector<KinesisSink::Entry> small(1200, {"k", "x", {}});
  EXPECT_EQ(KinesisSink::calls(small), (Spans{{0, 500}, {500, 1000}, {1000, 1200}}));
  const std::vector<KinesisSink::Entry> large(12, {"k", std::string(600u << 10, 'a'), {}});
  const auto spans = KinesisSink::calls(large);
  EXPECT_EQ(spans, (Spans{{0, 5}, {5, 10}, {10, 12}}));
  for (const auto& [begin, end] : spans) {
    const std::vector<KinesisSink::Entry> call(large.begin() + static_cast<std::ptrdiff_t>(begin),
                                               large.begin() + static_cast<std::ptrdiff_t>(end));
    EXPECT_LE(sink.put_records_body(call).size(), 5u << 20);
  }
  EXPECT_GE(sink.limits().max_bytes, 4 * (large[0].data.size() * 5));  // a batch can fill its calls
}

TEST(KinesisPartialFailure, ABatchGoesAsCallsInOrderAndNothingAfterAFailedCall) {
  testing::TempDir dir;
  ScriptedKinesis server([](const nlohmann::json& req, int call) -> std::pair<int, std::string> {
    if (call == 1) return {503, "Service Unavailable"};
    return {200, all_ok(req["Records"].size())};
  });
  auto buf = open_buffer(dir);
  auto k = scripted_sink(server.port());
  ASSERT_TRUE(buf->append_wait(testing::make_records(1200, "r")).ok());
  forward::Forwarder f(*buf, std::make_unique<KinesisSink>(k),
                         testing::quick_forwarder(std::chrono::milliseconds(5), std::chrono::milliseconds(20)), nullptr);
  f.start();
  ASSERT_TRUE(wait_for([&] { return buf->acked_seq("kinesis") == 1200u; })) << f.stats().last_error;
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 4u);  // 500 ok, 500 failed (the last 200 not sent), then 500 and 200
  std::vector<std::size_t> sizes;
  for (const auto& c : calls) sizes.push_back(c.size());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{500, 500, 500, 200}));
  EXPECT_EQ(calls[0].front(), "r0");
  EXPECT_EQ(calls[1].front(), "r500");
  EXPECT_EQ(calls[2], calls[1]);  // the failed call again, before anything after it
  EXPECT_EQ(calls[3].front(), "r1000");
  EXPECT_EQ(calls[3].back(), "r1199");
  EXPECT_EQ(f.stats().resent_records_total, 500u);  // the 200 kept back had not been sent
}

}  // namespace
}  // namespace tidegate::sinks
