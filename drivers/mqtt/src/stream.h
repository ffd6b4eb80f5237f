// Plain TCP or TLS over TCP, behind the calls an MQTT connection needs: the
// source's connection to its broker and each of the listener's clients.
#pragma once

#include <netinet/tcp.h>

#include <vector>
#include <optional>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

namespace tidegate::drivers::mqtt {

class Stream {
 public:
  using tcp = boost::asio::ip::tcp;
  // A socket still to connect (the source).
  Stream(boost::asio::io_context& io, boost::asio::ssl::context* tls) {
    if (tls) {
      tls_.emplace(io, *tls);
    } else {
      plain_.emplace(io);
    }
  }
  // An accepted socket (the listener).
  Stream(tcp::socket socket, boost::asio::ssl::context* tls) {
    if (tls) {
      tls_.emplace(std::move(socket), *tls);
    } else {
      plain_.emplace(std::move(socket));
    }
  }
  tcp::socket::lowest_layer_type& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  boost::asio::ssl::stream<tcp::socket>* tls() { return tls_ ? &*tls_ : nullptr; }

  template <typename Buffer, typename Handler>
  void async_read_some(const Buffer& b, Handler&& h) {
    if (tls_) {
      tls_->async_read_some(b, std::forward<Handler>(h));
    } else {
      plain_->async_read_some(b, std::forward<Handler>(h));
    }
  }
  template <typename Buffer, typename Handler>
  void async_write(const Buffer& b, Handler&& h) {
    if (tls_) {
      boost::asio::async_write(*tls_, b, std::forward<Handler>(h));
    } else {
      boost::asio::async_write(*plain_, b, std::forward<Handler>(h));
    }
  }
  // Per connection, so a late completion of an old connection's read never
  // writes into the buffer a newer connection is using. Sized by the user:
  // the listener's thousand idle clients cannot each hold 64 KiB.
  std::vector<char> read_buf;

  // Asks the kernel to acknowledge what was read at once. A peer writing
  // with Nagle's algorithm on (mosquitto's default, set_tcp_nodelay false)
  // holds its next small packet until our ACK of the previous one; when we
  // send nothing meanwhile (a publisher waiting for the rest of its PUBACKs)
  // the kernel's delayed-ACK timer sets the pace: bench/compare measured
  // p50 23 ms at 1,000 readings/s before this, 2 ms after. Linux leaves
  // quick-ACK mode by itself, so it is asked for after each such read.
  void quick_ack() {
#ifdef TCP_QUICKACK
    boost::system::error_code ignored;
    socket().set_option(boost::asio::detail::socket_option::boolean<IPPROTO_TCP, TCP_QUICKACK>(true), ignored);
#endif
  }

  void close() {
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  std::optional<tcp::socket> plain_;
  std::optional<boost::asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace tidegate::drivers::mqtt
