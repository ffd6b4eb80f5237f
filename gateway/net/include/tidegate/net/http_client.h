// A small blocking HTTP/1.1 client for the sinks (Boost.Beast, OpenSSL):
// one connection kept open between requests (keep-alive), a deadline for
// each exchange, TLS with the peer's host name verified. Network failures
// throw HttpError (and drop the connection); any HTTP status is a result.
// One thread at a time (each forwarder owns its sink's client).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace tidegate::net {

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string target = "/";         // path and query
  std::string host_header() const;  // host, with the port unless it is the scheme's default
  std::string text() const;
  // Throws std::invalid_argument for anything but http(s)://host[:port][/path].
  static Url parse(const std::string& url);
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  HttpClient(Url url, std::chrono::milliseconds timeout, std::string ca_file = {});
  ~HttpClient();
  const Url& url() const { return url_; }
  HttpResponse post(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body);
  // Any method ("GET", "PUT", ...) to a target (path and query) on the same
  // host as url().
  HttpResponse request(const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body);
  // Connections opened so far (1 for any number of requests while the
  // upstream keeps the connection).
  std::uint64_t connections_opened() const { return connections_opened_; }

 private:
  struct Tls;
  struct Connection;
  struct Request;
  std::unique_ptr<Tls> load_trust() const;
  void connect();
  HttpResponse exchange(Request& request);

  Url url_;
  std::chrono::milliseconds timeout_;
  std::string ca_file_;
  std::unique_ptr<Tls> tls_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<Connection> connection_;
  std::uint64_t connections_opened_ = 0;
};

}  // namespace tidegate::net
