// A real HTTP/1.1 server on 127.0.0.1 (Boost.Beast, a thread per connection,
// port chosen by the kernel) answering each request from a test's handler.
// For upstreams the tests need to script: failures, throttling, slowness.
// Keeps connections open between requests (keep-alive) unless told to close
// each after one answer, and counts the connections it accepted. Handlers
// may be called from several connections at once.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <type_traits>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tidegate::testing {

class LoopbackHttpServer {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  // Returns the status and body to answer the `call`-th request with.
  using Handler = std::function<std::pair<int, std::string>(const Request& request, int call)>;

  enum class Connections {
    kKeepAlive,     // serve many requests per connection
    kClose,         // answer "Connection: close" and close
    kDropSilently,  // promise keep-alive, then close (an upstream's idle timeout)
  };
  explicit LoopbackHttpServer(Handler handler, Connections mode = Connections::kKeepAlive)
      : handler_(std::move(handler)), mode_(mode), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  // HTTPS with this certificate chain and key (PEM files).
  LoopbackHttpServer(Handler handler, const std::string& cert_file, const std::string& key_file)
      : handler_(std::move(handler)),
        mode_(Connections::kKeepAlive),
        tls_(std::in_place, boost::asio::ssl::context::tls_server),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    tls_->use_certificate_chain_file(cert_file);
    tls_->use_private_key_file(key_file, boost::asio::ssl::context::pem);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackHttpServer() {
    stop_ = true;
    {
      std::lock_guard lock(mu_);
      for (const int fd : open_fds_)
        ::shutdown(fd, SHUT_RDWR);  // wakes blocking reads
    }
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);  // wakes the blocking accept
    thread_.join();
    for (auto& t : connection_threads_)
      t.join();
  }
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_.load(); }
  int failed_handshakes() const { return failed_handshakes_.load(); }

 private:
  void serve() {
    while (!stop_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      connections_++;
      std::lock_guard lock(mu_);
      open_fds_.insert(socket.native_handle());
      connection_threads_.emplace_back([this, s = std::move(socket)]() mutable {
        if (!tls_) return converse(s);
        boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> stream(s, *tls_);
        boost::system::error_code handshake;
        stream.handshake(boost::asio::ssl::stream_base::server, handshake);
        if (handshake) {
          failed_handshakes_++;
          forget(s);
          return;
        }
        converse(stream);
        forget(s);
      });
    }
  }

  void forget(boost::asio::ip::tcp::socket& socket) {
    std::lock_guard lock(mu_);
    open_fds_.erase(socket.native_handle());
  }

  template <typename Stream>
  void converse(Stream& socket) {
    namespace http = boost::beast::http;
    boost::system::error_code ec;
    boost::beast::flat_buffer buffer;
    for (bool open = true; open && !stop_;) {
      Request req;
      http::read(socket, buffer, req, ec);
      if (ec) break;
      auto [status, body] = handler_(req, calls_++);
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.set(http::field::content_type, "application/x-amz-json-1.1");
      res.body() = std::move(body);
      open = mode_ == Connections::kKeepAlive && req.keep_alive();
      res.keep_alive(open || mode_ == Connections::kDropSilently);
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec) break;
    }
    if constexpr (std::is_same_v<Stream, boost::asio::ip::tcp::socket>) forget(socket);
  }

  Handler handler_;
  Connections mode_;
  std::optional<boost::asio::ssl::context> tls_;
  std::atomic<int> connections_{0};
  std::atomic<int> failed_handshakes_{0};
  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::set<int> open_fds_;
  std::vector<std::thread> connection_threads_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace tidegate::testing
