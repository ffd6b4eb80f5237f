#include "tidegate/status/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace tidegate::status {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using buffer::LogLevel;

HttpResponse text_response(unsigned status, std::string text) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(text) + "\n";
  return r;
}

namespace {

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void cancel() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& context, HttpServerOptions o, HttpHandler h, buffer::LogFn l)
      : io(context), acceptor(context), options(std::move(o)), handler(std::move(h)), log(std::move(l)) {}

  void accept();
  void refuse(tcp::socket socket);

  void track(std::uint64_t id, std::weak_ptr<SessionBase> s) {
    std::lock_guard lock(mu);
    sessions[id] = std::move(s);
  }
  void untrack(std::uint64_t id) {
    std::lock_guard lock(mu);
    sessions.erase(id);
    --active;
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  std::optional<asio::ssl::context> tls;
  HttpServerOptions options;
  HttpHandler handler;
  buffer::LogFn log;
  bool closed = false;

  std::mutex mu;
  std::map<std::uint64_t, std::weak_ptr<SessionBase>> sessions;
  std::uint64_t next_id = 0;
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> refused_total{0};
  std::atomic<std::uint64_t> requests_total{0};
  std::atomic<std::uint64_t> bad_requests_total{0};
};

namespace {

http::response<http::string_body> make_response(const HttpResponse& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "tidegate");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  for (const auto& [name, value] : r.headers)
    res.set(name, value);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// One connection: reads bounded requests one after another (keep-alive) and
// answers each with the handler's response.
template <typename Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... Args>
  Session(std::shared_ptr<HttpServer::Impl> server, std::uint64_t id, Args&&... args)
      : server_(std::move(server)), id_(id), stream_(std::forward<Args>(args)...) {}

  ~Session() override { server_->untrack(id_); }

  void start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read();
    } else {
      lowest().expires_after(server_->options.request_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->count_bad();  // not TLS, or too slow: dropped
        self->read();
      });
    }
  }

  void cancel() override {
    beast::error_code ignored;
    lowest().socket().close(ignored);
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void count_bad() { server_->bad_requests_total++; }

  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    lowest().expires_after(server_->options.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset) {
      return close();
    }
    if (ec == beast::error::timeout) {
      // An idle keep-alive connection is not an error; a half-sent request is.
      if (parser_->got_some()) count_bad();
      return;
    }
    if (ec == http::error::header_limit) return reject(431, "request header too large");
    if (ec == http::error::body_limit) return reject(413, "request body too large");
    if (ec) return reject(400, "malformed request: " + ec.message());

    const auto& req = parser_->get();
    server_->requests_total++;
    HttpRequest in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.authorization = std::string(req[http::field::authorization]);
    in.body = req.body();
    in.user_agent = std::string(req[http::field::user_agent]);
    beast::error_code peer_error;
    const auto peer = lowest().socket().remote_endpoint(peer_error);
    if (!peer_error) in.peer = peer.address().to_string();
    HttpResponse out;
    try {
      out = server_->handler(in);
    } catch (const std::exception& e) {
      out = text_response(500, std::string("internal error: ") + e.what());
    }
    const bool head = req.method() == http::verb::head;
    const bool keep_alive = req.keep_alive() && ++served_ < server_->options.max_requests_per_connection;
    write(make_response(out, req.version(), keep_alive), head);
  }

  void reject(unsigned status, std::string text) {
    count_bad();
    write(make_response(text_response(status, std::move(text)), 11, false), false);
  }

  void write(http::response<http::string_body> res, bool head) {
    res_ = std::move(res);
    lowest().expires_after(server_->options.request_timeout);
    auto done = [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->res_.keep_alive()) return self->close();
      self->read();
    };
    if (head) {
      serializer_.emplace(res_);
      http::async_write_header(stream_, *serializer_, std::move(done));
    } else {
      http::async_write(stream_, res_, std::move(done));
    }
  }

  void close() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    }
  }

  std::shared_ptr<HttpServer::Impl> server_;
  std::uint64_t id_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::size_t served_ = 0;
};

}  // namespace

void HttpServer::Impl::refuse(tcp::socket socket) {
  // Over the limit: a short 503 written without waiting (it fits the socket
  // buffer), then closed, so a flood of clients costs no memory.
  refused_total++;
  static const char kBusy[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nRetry-After: 5\r\n"
      "Connection: close\r\n\r\ntoo many connections; try again\n";
  beast::error_code ec;
  socket.non_blocking(true, ec);
  if (!tls) socket.write_some(asio::buffer(kBusy, sizeof kBusy - 1), ec);
  socket.close(ec);
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->closed || ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (self->active.load() >= self->options.max_connections) {
        self->refuse(std::move(socket));
      } else {
        self->active++;
        self->connections_total++;
        std::uint64_t id;
        {
          std::lock_guard lock(self->mu);
          id = self->next_id++;
        }
        std::shared_ptr<SessionBase> session;
        if (self->tls) {
          auto s =
              std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(self, id, std::move(socket), *self->tls);
          s->start();
          session = s;
        } else {
          auto s = std::make_shared<Session<beast::tcp_stream>>(self, id, std::move(socket));
          s->start();
          session = s;
        }
        self->track(id, session);
      }
    } else if (self->log) {
      self->log(LogLevel::kWarning, "status page: accept failed: " + ec.message());
    }
    self->accept();
  });
}

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler handler, buffer::LogFn log)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler), std::move(log))) {
  auto& o = impl_->options;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    impl_->tls.emplace(asio::ssl::context::tls_server);
    beast::error_code ec;
    impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
    impl_->tls->use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec) throw std::runtime_error("status page certificate " + o.tls_cert_file + ": " + ec.message());
    impl_->tls->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("status page key " + o.tls_key_file + ": " + ec.message());
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(o.address, ec);
  if (ec) throw std::runtime_error("status page address '" + o.address + "': " + ec.message());
  const tcp::endpoint endpoint(address, o.port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("status page cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " +
                             ec.message());
  }
  impl_->accept();
}

HttpServer::~HttpServer() {
  close();
}

std::uint16_t HttpServer::port() const {
  beast::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void HttpServer::close() {
  impl_->closed = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, weak] : impl_->sessions) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open)
    s->cancel();
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  s.connections_total = impl_->connections_total;
  s.connections_active = impl_->active;
  s.connections_refused_total = impl_->refused_total;
  s.requests_total = impl_->requests_total;
  s.bad_requests_total = impl_->bad_requests_total;
  return s;
}

}  // namespace tidegate::status
