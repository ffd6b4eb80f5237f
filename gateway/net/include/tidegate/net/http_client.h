// A small blocking HTTP/1.1 client for the sinks (Boost.Beast, OpenSSL):
// one request per connection, a deadline for the whole exchange, TLS with
// the peer's host name verified. Network failures throw HttpError; any HTTP
// status is a result.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tidegate::net {

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string target = "/";  // path and query
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

 private:
  struct Tls;
  Url url_;
  std::chrono::milliseconds timeout_;
  std::string ca_file_;
  std::unique_ptr<Tls> tls_;
};

}  // namespace tidegate::net
