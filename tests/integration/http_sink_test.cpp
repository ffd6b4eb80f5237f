// The HTTP sink behind a forwarder, against a real HTTP server on loopback
// (Boost.Beast, in the test) that checks the token, unzips and parses what
// it is sent, and answers from a script.
#include "tidegate/sinks/http_sink.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "doc_examples.h"
#include "http_server.h"
#include "mosquitto.h"  // free_loopback_port, port_accepts
#include "process.h"
#include "record.pb.h"
#include "test_pki.h"
#include "forward_support.h"
#include "test_support.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/net/http_client.h"

namespace tidegate::sinks {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using testing::wait_for;

struct Received {
  std::string content_type;
  std::string encoding;
  std::string authorization;
  std::string body;  // after gunzip
};

// The upstream: checks and unpacks each request, answers from a script.
class Upstream {
 public:
  using Reply = std::function<int(const Received&, int call)>;
  explicit Upstream(Reply reply)
      : reply_(std::move(reply)), server_([this](const testing::LoopbackHttpServer::Request& req, int call) {
          Received r;
          r.content_type = std::string(req[http::field::content_type]);
          r.encoding = std::string(req[http::field::content_encoding]);
          r.authorization = std::string(req[http::field::authorization]);
          r.body = r.encoding == "gzip" ? gzip_decompress(req.body()) : req.body();
          EXPECT_EQ(req.target(), "/ingest");
          const int status = reply_(r, call);
          {
            std::lock_guard lock(mu_);
            received_.push_back(r);
          }
          return std::pair<int, std::string>{status, status < 300 ? "" : "no thanks"};
        }) {}
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()) + "/ingest"; }
  std::vector<Received> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  Reply reply_;
  std::mutex mu_;
  std::vector<Received> received_;
  testing::LoopbackHttpServer server_;  // last: stops before the rest goes
};

class HttpSinkTest : public ::testing::Test {
 protected:
  void SetUp() override { buffer_ = open_buffer(dir_ / "buffer.db"); }
  std::unique_ptr<buffer::Buffer> open_buffer(const std::filesystem::path& path) {
    buffer::BufferOptions o;
    o.path = path;
    o.commit_window = std::chrono::milliseconds(1);
    o.log = log_.fn();
    return buffer::Buffer::open(o);
  }
  forward::ForwarderOptions fast() {
    return testing::quick_forwarder(std::chrono::milliseconds(5), std::chrono::milliseconds(30));
  }
  testing::TempDir dir_;
  testing::LogCapture log_;
  std::unique_ptr<buffer::Buffer> buffer_;
};

TEST(Gzip, RoundTrips) {
  const std::string data = std::string(10000, 'a') + "tail";
  const auto z = gzip_compress(data);
  EXPECT_LT(z.size(), data.size() / 10);
  EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f);  // RFC 1952 magic
  EXPECT_EQ(static_cast<unsigned char>(z[1]), 0x8b);
  EXPECT_EQ(gzip_decompress(z), data);
}

// Keep-alive: a catch-up of many batches pays for one connection, and a
// connection the upstream closed is replaced without a failed send.
TEST(HttpClient, KeepsOneConnectionForManyRequests) {
  using Server = testing::LoopbackHttpServer;
  Server server([](const Server::Request& req, int call) {
    return std::pair<int, std::string>{200, std::to_string(call) + ":" + req.body()};
  });
  net::HttpClient client(net::Url::parse("http://127.0.0.1:" + std::to_string(server.port()) + "/x"),
                         std::chrono::seconds(5));
  for (int i = 0; i < 50; ++i) {
    const auto r = client.post({}, "b" + std::to_string(i));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::to_string(i) + ":b" + std::to_string(i));
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClient, ReconnectsWhenTheUpstreamClosesTheConnection) {
  using Server = testing::LoopbackHttpServer;
  for (auto mode : {Server::Connections::kClose, Server::Connections::kDropSilently}) {
    Server server([](const Server::Request&, int call) { return std::pair<int, std::string>{200, std::to_string(call)}; },
                  mode);
    net::HttpClient client(net::Url::parse("http://127.0.0.1:" + std::to_string(server.port()) + "/x"),
                           std::chrono::seconds(5));
    for (int i = 0; i < 5; ++i) {
      const auto r = client.post({}, "b");
      ASSERT_EQ(r.status, 200);
      EXPECT_EQ(r.body, std::to_string(i)) << "each request answered once, none lost or repeated";
    }
    EXPECT_EQ(server.connections(), 5);
  }
}

TEST_F(HttpSinkTest, ProtobufBatchesGzippedWithTheBearerToken) {
  Upstream up([](const Received& r, int) { return r.authorization == "Bearer s3cret" ? 204 : 401; });
  HttpSinkOptions o;
  o.url = up.url();
  o.bearer_token = "s3cret";
  o.gateway_id = "gw-h";
  forward::Forwarder f(*buffer_, std::make_unique<HttpSink>(o), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(250, "p")).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("http") == 250u; })) << f.stats().last_error;
  std::uint64_t expect = 1;
  for (const auto& r : up.received()) {
    EXPECT_EQ(r.encoding, "gzip");
    EXPECT_NE(r.content_type.find("application/x-protobuf"), std::string::npos);
    tidegate::v1::Batch batch;
    ASSERT_TRUE(batch.ParseFromString(r.body));
    EXPECT_EQ(batch.format_version(), 1u);
    EXPECT_EQ(batch.gateway_id(), "gw-h");
    for (const auto& rec : batch.records()) {
      EXPECT_EQ(rec.seq(), expect);
      EXPECT_EQ(rec.payload(), "p" + std::to_string(expect - 1));
      ++expect;
    }
  }
  EXPECT_EQ(expect, 251u);
}

TEST_F(HttpSinkTest, JsonLinesWithoutGzip) {
  Upstream up([](const Received&, int) { return 200; });
  HttpSinkOptions o;
  o.url = up.url();
  o.format = HttpFormat::kJsonLines;
  o.gzip = false;
  o.gateway_id = "gw-h";
  forward::Forwarder f(*buffer_, std::make_unique<HttpSink>(o), fast(), log_.fn());
  f.start();
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(3)).ok());
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("http") == 3u; }));
  const auto r = up.received().at(0);
  EXPECT_EQ(r.encoding, "");
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  std::istringstream lines(r.body);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(nlohmann::json::parse(line)["seq"], 1);
}

TEST_F(HttpSinkTest, ServerErrorsAreRetriedAndBadRequestsDeadLettered) {
  // 503 twice, then 400 for the batch with "r2" in it, then fine.
  Upstream up([](const Received& r, int call) {
    if (call < 2) return 503;
    if (r.body.find("\"payload\":\"r2\"") != std::string::npos) return 400;
    return 200;
  });
  HttpSinkOptions o;
  o.url = up.url();
  o.format = HttpFormat::kJsonLines;
  auto fo = fast();
  fo.max_records = 2;
  forward::Forwarder f(*buffer_, std::make_unique<HttpSink>(o), fo, log_.fn());
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(6, "r")).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("http") == 6u; })) << f.stats().last_error;
  EXPECT_EQ(f.stats().retries_total, 2u);
  auto letters = buffer_->dead_letters(10);
  ASSERT_EQ(letters.size(), 2u);  // the batch r2, r3 was refused for good
  EXPECT_EQ(letters[0].record.payload, "r2");
  EXPECT_EQ(letters[1].record.payload, "r3");
  EXPECT_NE(letters[0].reason.find("HTTP 400"), std::string::npos);
}

TEST_F(HttpSinkTest, AnUnreachableEndpointIsRetriedNotDropped) {
  HttpSinkOptions o;
  o.url = "http://127.0.0.1:9/ingest";  // discard port: nothing listens
  o.timeout = std::chrono::milliseconds(500);
  forward::Forwarder f(*buffer_, std::make_unique<HttpSink>(o), fast(), log_.fn());
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(2)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return f.stats().retries_total >= 2; }));
  EXPECT_EQ(buffer_->acked_seq("http"), 0u);
  EXPECT_NE(f.stats().last_error.find("connect"), std::string::npos) << f.stats().last_error;
  EXPECT_TRUE(buffer_->dead_letters(10).empty());
}

// HTTPS: the receiver's certificate is checked against the configured CA
// and the URL's host. A receiver the CA did not sign, or a certificate for
// another name, gets nothing: the batch waits and is retried (never dropped
// or dead-lettered), and the error names the TLS handshake.
class HttpsSinkTest : public HttpSinkTest {
 protected:
  void SetUp() override {
    HttpSinkTest::SetUp();
    pki_ = std::make_unique<testing::TestPki>(dir_.path());
  }
  std::unique_ptr<testing::TestPki> pki_;
};

TEST_F(HttpsSinkTest, DeliversOverTlsToAReceiverTheCaSigned) {
  std::mutex mu;
  std::vector<std::string> bodies;
  testing::LoopbackHttpServer server(
      [&](const testing::LoopbackHttpServer::Request& req, int) {
        std::lock_guard lock(mu);
        bodies.push_back(req.body());
        return std::pair<int, std::string>{200, ""};
      },
      pki_->file("server.pem"), pki_->file("server.key"));
  for (const std::string host : {"127.0.0.1", "localhost"}) {  // the certificate names both
    testing::TempDir db_dir;
    auto buf = open_buffer(db_dir / "b.db");
    HttpSinkOptions o;
    o.url = "https://" + host + ":" + std::to_string(server.port()) + "/ingest";
    o.format = HttpFormat::kJsonLines;
    o.gzip = false;
    o.ca_file = pki_->file("ca.pem");
    forward::Forwarder f(*buf, std::make_unique<HttpSink>(o), fast(), log_.fn());
    ASSERT_TRUE(buf->append_wait(testing::make_records(5, "tls")).ok());
    f.start();
    ASSERT_TRUE(wait_for([&] { return buf->acked_seq("http") == 5u; })) << host << ": " << f.stats().last_error;
  }
  std::lock_guard lock(mu);
  std::string all;
  for (const auto& b : bodies) all += b;
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 10);
  EXPECT_NE(all.find("\"payload\":\"tls4\""), std::string::npos);
  EXPECT_EQ(server.failed_handshakes(), 0);
}

TEST_F(HttpsSinkTest, AReceiverTheCaDidNotSignOrAnotherNameGetsNothingAndTheBatchWaits) {
  std::atomic<int> requests{0};
  auto answer = [&](const testing::LoopbackHttpServer::Request&, int) {
    requests++;
    return std::pair<int, std::string>{200, ""};
  };
  pki_->client("printer.example");  // signed by the CA, for another name
  pki_->expired_server();
  testing::LoopbackHttpServer right_name(answer, pki_->file("server.pem"), pki_->file("server.key"));
  testing::LoopbackHttpServer wrong_name(answer, pki_->file("printer.example.pem"), pki_->file("printer.example.key"));
  testing::LoopbackHttpServer expired(answer, pki_->file("expired.pem"), pki_->file("expired.key"));
  struct Case {
    const testing::LoopbackHttpServer* server;
    std::string ca;
    std::string reason;  // OpenSSL's, in the sink's error
  };
  // Another CA; the right CA but a certificate for another name; the right
  // CA and name but a certificate past its end date.
  for (const auto& c : {Case{&right_name, "other-ca.pem", "unable to get local issuer certificate"},
                        Case{&wrong_name, "ca.pem", "IP address mismatch"},
                        Case{&expired, "ca.pem", "certificate has expired"}}) {
    testing::TempDir db_dir;
    auto buf = open_buffer(db_dir / "b.db");
    HttpSinkOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(c.server->port()) + "/ingest";
    o.ca_file = pki_->file(c.ca);
    o.timeout = std::chrono::milliseconds(2000);
    forward::Forwarder f(*buf, std::make_unique<HttpSink>(o), fast(), log_.fn());
    ASSERT_TRUE(buf->append_wait(testing::make_records(3)).ok());
    f.start();
    ASSERT_TRUE(wait_for([&] { return f.stats().retries_total >= 2; })) << c.ca;
    f.stop();
    EXPECT_EQ(buf->acked_seq("http"), 0u) << c.ca;
    EXPECT_TRUE(buf->dead_letters(10).empty());
    EXPECT_NE(f.stats().last_error.find("TLS handshake (" + c.reason + ")"), std::string::npos) << f.stats().last_error;
    // The server counts a failed handshake on its own thread, a moment after
    // the client gave up on it.
    EXPECT_TRUE(wait_for([&] { return c.server->failed_handshakes() >= 2; })) << c.server->failed_handshakes();
  }
  EXPECT_EQ(requests.load(), 0) << "no request may reach an unverified receiver";
}

// A CA file replaced on disk (a renewed or corrected CA) is used from the
// next connection on: the waiting batch goes out without a restart.
TEST_F(HttpsSinkTest, ACaFileReplacedOnDiskIsUsedFromTheNextConnection) {
  std::atomic<int> requests{0};
  testing::LoopbackHttpServer server(
      [&](const testing::LoopbackHttpServer::Request&, int) {
        requests++;
        return std::pair<int, std::string>{200, ""};
      },
      pki_->file("server.pem"), pki_->file("server.key"));
  const auto ca = dir_ / "trusted.pem";
  std::filesystem::copy_file(pki_->file("other-ca.pem"), ca);  // the wrong CA at first
  HttpSinkOptions o;
  o.url = "https://localhost:" + std::to_string(server.port()) + "/ingest";
  o.ca_file = ca.string();
  forward::Forwarder f(*buffer_, std::make_unique<HttpSink>(o), fast(), log_.fn());
  ASSERT_TRUE(buffer_->append_wait(testing::make_records(4)).ok());
  f.start();
  ASSERT_TRUE(wait_for([&] { return f.stats().retries_total >= 2; }));
  EXPECT_EQ(requests.load(), 0);
  // Replaced the way tools do it: a new file renamed over the old one.
  std::filesystem::copy_file(pki_->file("ca.pem"), dir_ / "trusted.pem.new");
  std::filesystem::rename(dir_ / "trusted.pem.new", ca);
  ASSERT_TRUE(wait_for([&] { return buffer_->acked_seq("http") == 4u; })) << f.stats().last_error;
  EXPECT_TRUE(buffer_->dead_letters(10).empty());
}

// docs/cloud.md's HTTP example, run as an integrator would try it: the
// gateway with that configuration (addresses moved to loopback, the token
// in the environment file) and examples/http_receiver.py as the receiver.
TEST(HttpDocExample, TheExampleReceiverGetsEveryReadingOfTheDocsConfiguration) {
  testing::TempDir dir;
  const std::filesystem::path source(TIDEGATE_SOURCE_DIR);
  auto toml = testing::doc_example(source / "docs" / "cloud.md", "http");
  ASSERT_FALSE(toml.empty());
  const auto receiver_port = testing::free_loopback_port();
  const auto listener_port = testing::free_loopback_port();
  testing::replace_all(toml, "/var/lib/tidegate/", (dir / "").string());
  testing::replace_all(toml, "listen = \"0.0.0.0:1883\"", "listen = \"127.0.0.1:" + std::to_string(listener_port) + "\"");
  testing::replace_all(toml, "https://ingest.example.com/tidegate",
                       "http://127.0.0.1:" + std::to_string(receiver_port) + "/tidegate");
  testing::replace_all(toml, "ca_file = \"/etc/tidegate/certs/ingest-ca.pem\"", "");
  toml += "[status]\nenabled = false\n[heartbeat]\ninterval = \"0s\"\n";
  std::ofstream(dir / "tidegate.toml") << toml;
  std::ofstream(dir / "default-tidegate") << "TIDEGATE_SINK_WAREHOUSE_TOKEN=s3cret\n";
  const auto out = dir / "received.jsonl";
  testing::Process receiver({"/usr/bin/python3", (source / "examples" / "http_receiver.py").string(), "--host",
                             "127.0.0.1", "--port", std::to_string(receiver_port), "--token", "s3cret", "--out",
                             out.string()},
                            dir / "receiver.log");
  ASSERT_TRUE(wait_for([&] { return testing::port_accepts(receiver_port); })) << receiver.output();
  testing::Process gw({TIDEGATE_BINARY, "run", "--config", (dir / "tidegate.toml").string(), "--env-file",
                       (dir / "default-tidegate").string()},
                      dir / "gateway.log");
  ASSERT_TRUE(wait_for([&] { return testing::port_accepts(listener_port); })) << gw.output();
  for (int i = 0; i < 20; ++i) {
    const auto cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(listener_port) +
                     " -q 1 -i ahu-7 -t sensors/ahu-7/supply_temp -m '{\"t\":" + std::to_string(i) + "}'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::vector<nlohmann::json> got;
  ASSERT_TRUE(wait_for([&] {
    got.clear();
    std::ifstream in(out);
    for (std::string line; std::getline(in, line);) got.push_back(nlohmann::json::parse(line));
    return got.size() >= 20;
  }, std::chrono::seconds(20))) << got.size() << "\n" << gw.output() << receiver.output();
  EXPECT_EQ(WEXITSTATUS(gw.signal_and_wait(SIGTERM)), 0);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(got[i]["gateway"], "plant-room-3");
    EXPECT_EQ(got[i]["seq"], i + 1);
    EXPECT_EQ(got[i]["topic"], "sensors/ahu-7/supply_temp");
    EXPECT_EQ(got[i]["partition_key"], "ahu-7");
    EXPECT_EQ(got[i]["payload"], "{\"t\":" + std::to_string(i) + "}");
  }
}

}  // namespace
}  // namespace tidegate::sinks
