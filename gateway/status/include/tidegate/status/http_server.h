// A small HTTP/1.1 server (Boost.Beast) for the status page, hardened for a
// network the gateway does not control: every request is bounded in header
// size, body size and the time it may take to arrive; connections are
// limited in number (beyond the limit a client gets 503 and is closed);
// a malformed request gets 400 and the connection is closed. Optional TLS.
// Runs on the caller's io_context; the handler is called on its thread.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tidegate/buffer/environment.h"

namespace tidegate::status {

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  std::size_t max_connections = 32;
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;
  // A whole request (or the TLS handshake) must arrive within this; it is
  // also how long an idle keep-alive connection stays open.
  std::chrono::milliseconds request_timeout{10'000};
  std::size_t max_requests_per_connection = 1000;
  std::string tls_cert_file;  // both set: HTTPS only
  std::string tls_key_file;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string authorization;
  std::string body;
  std::string peer;        // the client's address, for the log of operator requests
  std::string user_agent;  // what asked (the tidegate CLI names itself and its user)
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// A plain-text answer: `text` and a newline.
HttpResponse text_response(unsigned status, std::string text);

struct HttpServerStats {
  std::uint64_t connections_total = 0;
  std::uint64_t connections_active = 0;
  std::uint64_t connections_refused_total = 0;  // over max_connections
  std::uint64_t requests_total = 0;
  std::uint64_t bad_requests_total = 0;  // malformed, oversized or too slow
};

class HttpServer {
 public:
  // Binds and starts accepting; throws std::runtime_error if it cannot bind
  // or the TLS files cannot be loaded.
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, HttpHandler handler, buffer::LogFn log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Stops accepting and closes open connections; call on the io thread or
  // after it stopped.
  void close();
  HttpServerStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tidegate::status
