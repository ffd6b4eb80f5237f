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

namespace tidegate::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string Url::host_header() const { return port == (tls ? "443" : "80") ? host : host + ":" + port; }

std::string Url::text() const { return std::string(tls ? "https://" : "http://") + host + ":" + port + target; }

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

struct HttpClient::Tls {
  asio::ssl::context context{asio::ssl::context::tls_client};
};

HttpClient::HttpClient(Url url, std::chrono::milliseconds timeout, std::string ca_file)
    : url_(std::move(url)), timeout_(timeout), ca_file_(std::move(ca_file)) {
  if (url_.tls) {
    tls_ = std::make_unique<Tls>();
    if (ca_file_.empty()) {
      tls_->context.set_default_verify_paths();
    } else {
      tls_->context.load_verify_file(ca_file_);
    }
    tls_->context.set_verify_mode(asio::ssl::verify_peer);
  }
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::post(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body) {
  http::request<http::string_body> request{http::verb::post, url_.target, 11};
  request.set(http::field::host, url_.host_header());
  request.set(http::field::user_agent, "tidegate");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();

  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  std::optional<HttpError> failure;
  auto failed = [&](beast::error_code ec, const char* what) {
    if (!ec) return false;
    failure.emplace(std::string(what) + " " + url_.text() + ": " + ec.message());
    return true;
  };
  beast::error_code resolve_ec;
  const auto results = resolver.resolve(url_.host, url_.port, resolve_ec);
  if (failed(resolve_ec, "resolve")) throw *failure;

  // Async operations under one deadline (tcp_stream's expiry), driven here.
  if (tls_) {
    beast::ssl_stream<beast::tcp_stream> stream(io, tls_->context);
    stream.set_verify_callback(asio::ssl::host_name_verification(url_.host));
    SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(url_.host.c_str()));
    beast::get_lowest_layer(stream).expires_after(timeout_);
    beast::get_lowest_layer(stream).async_connect(results, [&](beast::error_code ec, auto) {
      if (failed(ec, "connect")) return;
      stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec2) {
        if (failed(ec2, "TLS handshake")) return;
        http::async_write(stream, request, [&](beast::error_code ec3, std::size_t) {
          if (failed(ec3, "write")) return;
          http::async_read(stream, buffer, response, [&](beast::error_code ec4, std::size_t) { failed(ec4, "read"); });
        });
      });
    });
    io.run();
  } else {
    beast::tcp_stream stream(io);
    stream.expires_after(timeout_);
    stream.async_connect(results, [&](beast::error_code ec, auto) {
      if (failed(ec, "connect")) return;
      http::async_write(stream, request, [&](beast::error_code ec3, std::size_t) {
        if (failed(ec3, "write")) return;
        http::async_read(stream, buffer, response, [&](beast::error_code ec4, std::size_t) { failed(ec4, "read"); });
      });
    });
    io.run();
  }
  if (failure) throw *failure;
  return {static_cast<int>(response.result_int()), response.body()};
}

}  // namespace tidegate::net
