// The status server on a real loopback socket, with clients that misbehave:
// malformed, oversized and slow requests, more connections than allowed,
// many at once, and TLS.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <thread>

#include "process.h"
#include "test_support.h"
#include "tidegate/status/http_server.h"

namespace tidegate::status {
namespace {

using namespace std::chrono_literals;

// A raw TCP client: what it sends is exactly what the test wrote.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& data) { (void)!::send(fd_, data.data(), data.size(), MSG_NOSIGNAL); }
  // Everything until the server closes (or 5 s pass).
  std::string read_all() {
    std::string out;
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  // One response of a keep-alive connection (by Content-Length).
  std::string read_response() {
    std::string out;
    char buf[4096];
    for (;;) {
      const auto head_end = out.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const auto cl = out.find("Content-Length: ");
        const std::size_t length = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
        if (out.size() >= head_end + 4 + length) return out;
      }
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string get(std::uint16_t port, const std::string& path) {
  RawClient c(port);
  c.send("GET " + path + " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
  return c.read_all();
}

class StatusServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions o = {}) {
    o.address = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<HttpServer>(
        io_, o,
        [this](const HttpRequest& r) {
          handled_++;
          HttpResponse out;
          out.body = r.method + " " + r.target + " body=" + std::to_string(r.body.size());
          return out;
        },
        log_.fn());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) boost::asio::post(io_, [this] { server_->close(); });
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const { return server_->port(); }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
  testing::LogCapture log_;
};

TEST_F(StatusServerTest, AnswersRequestsAndKeepsTheConnectionAlive) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.connected());
  c.send("GET /a HTTP/1.1\r\nHost: gw\r\n\r\n");
  auto r1 = c.read_response();
  EXPECT_EQ(r1.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r1;
  EXPECT_NE(r1.find("GET /a body=0"), std::string::npos);
  EXPECT_NE(r1.find("X-Content-Type-Options: nosniff"), std::string::npos);
  c.send("POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello");
  auto r2 = c.read_response();
  EXPECT_NE(r2.find("POST /b body=5"), std::string::npos) << r2;
  c.send("HEAD /c HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
  auto r3 = c.read_all();
  EXPECT_NE(r3.find("Content-Length: 14"), std::string::npos) << r3;  // "HEAD /c body=0"
  EXPECT_EQ(r3.find("HEAD /c body"), std::string::npos) << "a HEAD response has no body";
}

TEST_F(StatusServerTest, MalformedRequestsGet400AndTheServerCarriesOn) {
  start();
  for (const std::string& bad : std::vector<std::string>{
           "GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
           std::string("GET /\0x HTTP/1.1\r\n\r\n", 20), "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"}) {
    RawClient c(port());
    c.send(bad);
    const auto r = c.read_all();
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << "for " << bad << ": " << r;
  }
  EXPECT_NE(get(port(), "/ok").find("200 OK"), std::string::npos);
  EXPECT_EQ(server_->stats().bad_requests_total, 5u);
}

TEST_F(StatusServerTest, OversizedHeadersAndBodiesAreRefusedWithoutReadingThem) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 2048;
  start(o);
  {
    RawClient c(port());
    c.send("GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
    EXPECT_EQ(c.read_all().rfind("HTTP/1.1 431", 0), 0u);
  }
  {
    RawClient c(port());
    c.send("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000000\r\n\r\n" + std::string(1000, 'b'));
    EXPECT_EQ(c.read_all().rfind("HTTP/1.1 413", 0), 0u);
  }
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_NE(get(port(), "/").find("200 OK"), std::string::npos);
}

TEST_F(StatusServerTest, ASlowClientIsCutOffWhileOthersAreServed) {
  HttpServerOptions o;
  o.request_timeout = 500ms;
  start(o);
  RawClient slow(port());
  slow.send("GET / HTTP/1.1\r\nHost: gw\r\n");  // and never the blank line
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(get(port(), "/meanwhile").find("200 OK"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 400ms) << "the slow client must not hold up another";
  EXPECT_EQ(slow.read_all(), "");  // closed by the server after the timeout
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 400ms);
  EXPECT_LT(waited, 3s);
  EXPECT_TRUE(testing::wait_for([&] { return server_->stats().connections_active == 0; }));
  EXPECT_EQ(server_->stats().bad_requests_total, 1u);
}

TEST_F(StatusServerTest, ConnectionsBeyondTheLimitGet503AndTheLimitRecovers) {
  HttpServerOptions o;
  o.max_connections = 4;
  start(o);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  ASSERT_TRUE(testing::wait_for([&] { return server_->stats().connections_active == 4; }));
  const auto refused = get(port(), "/");
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_EQ(server_->stats().connections_refused_total, 1u);
  idle.clear();
  ASSERT_TRUE(testing::wait_for([&] { return server_->stats().connections_active == 0; }));
  EXPECT_NE(get(port(), "/").find("200 OK"), std::string::npos);
}

TEST_F(StatusServerTest, ManyConcurrentClientsAreAllServed) {
  HttpServerOptions o;
  o.max_connections = 64;
  start(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 32; ++t) {
    clients.emplace_back([&] {
      RawClient c(port());
      for (int i = 0; i < 25; ++i) {
        c.send("GET /api/status HTTP/1.1\r\nHost: gw\r\n\r\n");
        if (c.read_response().rfind("HTTP/1.1 200", 0) == 0) ok++;
      }
    });
  }
  for (auto& c : clients)
    c.join();
  EXPECT_EQ(ok.load(), 32 * 25);
  EXPECT_EQ(handled_.load(), 32 * 25);
}

TEST_F(StatusServerTest, ServesHttpsWithAConfiguredCertificate) {
  testing::TempDir dir;
  const auto cert = dir.path() / "cert.pem";
  const auto key = dir.path() / "key.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
                          key.string() + " -out " + cert.string() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  HttpServerOptions o;
  o.tls_cert_file = cert.string();
  o.tls_key_file = key.string();
  start(o);

  namespace asio = boost::asio;
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert.string());
  asio::ssl::stream<asio::ip::tcp::socket> tls(io, ctx);
  tls.set_verify_mode(asio::ssl::verify_peer);
  tls.next_layer().connect({asio::ip::make_address("127.0.0.1"), port()});
  tls.handshake(asio::ssl::stream_base::client);
  const std::string req = "GET /secure HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
  asio::write(tls, asio::buffer(req));
  std::string response;
  boost::system::error_code ec;
  char buf[1024];
  for (;;) {
    const auto n = tls.read_some(asio::buffer(buf), ec);
    response.append(buf, n);
    if (ec) break;
  }
  EXPECT_NE(response.find("GET /secure body=0"), std::string::npos) << response;

  // Plain HTTP on the TLS port: dropped, and the server carries on.
  EXPECT_EQ(get(port(), "/plain").find("200 OK"), std::string::npos);
  EXPECT_EQ(server_->stats().requests_total, 1u);
}

TEST(StatusServer, ATakenPortIsReportedAtStart) {
  boost::asio::io_context io;
  HttpServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  HttpServer first(
      io, o, [](const HttpRequest&) { return HttpResponse{}; }, nullptr);
  o.port = first.port();
  EXPECT_THROW(HttpServer(
                   io, o, [](const HttpRequest&) { return HttpResponse{}; }, nullptr),
               std::runtime_error);
  o.address = "not-an-address";
  EXPECT_THROW(HttpServer(
                   io, o, [](const HttpRequest&) { return HttpResponse{}; }, nullptr),
               std::runtime_error);
}

}  // namespace
}  // namespace tidegate::status
