#include "tidegate/net/http_client.h"

#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <sys/stat.h>

#include "tidegate/common/tls_peer.h"

namespace tidegate::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string Url::host_header() const {
  return port == (tls ? "443" : "80") ? host : host + ":" + port;
}

std::string Url::text() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port + target;
}

Url Url::parse(const std::string& text) {
  Url u;
  std::string rest;
  if (text.rfind("https://", 0) == 0) {
    rest = text.substr(8);
    u.port = "443";
  } else if (text.rfind("http://", 0) == 0) {
    u.tls = false;
    rest = text.substr(7);
    u.port = "80";
  } else {
    throw std::invalid_argument("URL must start with http:// or https://: " + text);
  }
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    u.target = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  const auto colon = rest.rfind(':');
  u.host = rest.substr(0, colon);
  if (colon != std::string::npos) u.port = rest.substr(colon + 1);
  if (u.host.empty() || u.port.empty()) throw std::invalid_argument("URL has no host or port: " + text);
  return u;
}

// The trust anchors of one connection attempt. The CA file is read again
// when it changes on disk (another inode, size or time), so a renewed CA is
// used from the next connection on without a restart or reload.
struct HttpClient::Tls {
  asio::ssl::context context{asio::ssl::context::tls_client};
  std::string ca_file_version;  // of the file loaded into `context`
};

namespace {

std::string file_version(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

std::unique_ptr<HttpClient::Tls> HttpClient::load_trust() const {
  auto tls = std::make_unique<Tls>();
  boost::system::error_code ec;
  if (ca_file_.empty()) {
    tls->context.set_default_verify_paths(ec);
  } else {
    tls->ca_file_version = file_version(ca_file_);
    tls->context.load_verify_file(ca_file_, ec);
  }
  if (ec) throw HttpError("TLS: cannot load the CA " + (ca_file_.empty() ? "store" : "file " + ca_file_) + ": " + ec.message());
  tls->context.set_verify_mode(asio::ssl::verify_peer);
  return tls;
}

struct HttpClient::Request : http::request<http::string_body> {
  using http::request<http::string_body>::request;
};

namespace {

// The first failure of a connect or an exchange, named with the step and the
// URL; the asynchronous steps report to it and stop at the first error.
class FirstError {
 public:
  explicit FirstError(const Url& url) : url_(url) {}
  // True, and kept if it is the first, when `ec` is an error.
  bool operator()(beast::error_code ec, const std::string& what) {
    if (!ec) return false;
    if (!failure_) failure_.emplace(what + " " + url_.text() + ": " + ec.message());
    return true;
  }
  bool any() const { return failure_.has_value(); }
  void throw_if_any() const {
    if (failure_) throw *failure_;
  }

 private:
  const Url& url_;
  std::optional<HttpError> failure_;
};

}  // namespace

// One open connection to the upstream, kept between requests (HTTP/1.1
// keep-alive): a catch-up of thousands of batches pays for TCP and TLS
// set-up once, not per batch.
struct HttpClient::Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

HttpClient::HttpClient(Url url, std::chrono::milliseconds timeout, std::string ca_file)
    : url_(std::move(url)), timeout_(timeout), ca_file_(std::move(ca_file)), io_(std::make_unique<asio::io_context>()) {
  if (url_.tls) tls_ = load_trust();
}

HttpClient::~HttpClient() = default;

void HttpClient::connect() {
  connection_.reset();
  FirstError failed(url_);
  asio::ip::tcp::resolver resolver(*io_);
  beast::error_code resolve_ec;
  const auto results = resolver.resolve(url_.host, url_.port, resolve_ec);
  if (failed(resolve_ec, "resolve")) failed.throw_if_any();

  if (tls_ && !ca_file_.empty() && file_version(ca_file_) != tls_->ca_file_version) tls_ = load_trust();
  auto c = std::make_unique<Connection>();
  if (tls_) {
    c->tls.emplace(*io_, tls_->context);
    if (!common::expect_peer(c->tls->native_handle(), url_.host)) {
      throw HttpError("TLS: cannot check the peer against " + url_.host);  // as every connect failure
    }
  } else {
    c->plain.emplace(*io_);
  }
  c->lowest().expires_after(timeout_);
  c->lowest().async_connect(results, [&](beast::error_code ec, auto) {
    if (failed(ec, "connect") || !c->tls) return;
    c->tls->async_handshake(asio::ssl::stream_base::client,
                            [&](beast::error_code ec2) {
                              if (!ec2) return;
                              failed(ec2, "TLS handshake" + common::verify_failure(c->tls->native_handle()));
                            });
  });
  io_->restart();
  io_->run();
  failed.throw_if_any();
  connection_ = std::move(c);
  connections_opened_ += 1;
}

HttpResponse HttpClient::post(const std::vector<std::pair<std::string, std::string>>& headers,
                              const std::string& body) {
  return this->request("POST", url_.target, headers, body);
}

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 const std::string& body) {
  const auto verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) throw std::invalid_argument("unknown HTTP method " + method);
  Request request{verb, target, 11};
  request.set(http::field::host, url_.host_header());
  request.set(http::field::user_agent, "tidegate");
  for (const auto& [name, value] : headers)
    request.set(name, value);
  request.body() = body;
  request.keep_alive(true);
  request.prepare_payload();

  // A kept connection the upstream has closed in the meantime fails on first
  // use: then once more on a new one. (That can send a request twice if the
  // upstream processed it and only the answer was lost; delivery is
  // at-least-once anyway, and records carry their identity.)
  if (connection_) {
    try {
      return exchange(request);
    } catch (const HttpError&) {
      connection_.reset();
    }
  }
  connect();
  return exchange(request);
}

HttpResponse HttpClient::exchange(Request& request) {
  auto& c = *connection_;
  http::response<http::string_body> response;
  FirstError failed(url_);
  // Write and read under one deadline (tcp_stream's expiry), driven here.
  auto run = [&](auto& stream) {
    http::async_write(stream, static_cast<http::request<http::string_body>&>(request),
                      [&](beast::error_code ec, std::size_t) {
                        if (failed(ec, "write")) return;
                        http::async_read(stream, c.buffer, response,
                                         [&](beast::error_code ec2, std::size_t) { failed(ec2, "read"); });
                      });
  };
  c.lowest().expires_after(timeout_);
  if (c.tls) {
    run(*c.tls);
  } else {
    run(*c.plain);
  }
  io_->restart();
  io_->run();
  if (failed.any()) {
    connection_.reset();
    failed.throw_if_any();
  }
  if (!response.keep_alive()) connection_.reset();
  return {static_cast<int>(response.result_int()), response.body()};
}

}  // namespace tidegate::net
