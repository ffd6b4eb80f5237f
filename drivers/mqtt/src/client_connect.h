// The steps from an address to a stream ready for CONNECT, shared by the
// MQTT clients (the source's broker, the sink's upstream): resolve, connect
// with Nagle off, and for TLS check the broker's name (and SNI) and shake
// hands.
#pragma once

#include <memory>
#include <string>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>

#include "stream.h"
#include "tidegate/common/tls_peer.h"

namespace tidegate::drivers::mqtt {

// `wanted()` is asked after every step: false once the caller gave this
// connection up (a newer one, a stop), and then nothing more happens.
// `done("")` when the stream is ready, `done(reason)` when a step failed.
template <typename Wanted, typename Done>
void open_client_stream(boost::asio::ip::tcp::resolver& resolver, const std::shared_ptr<Stream>& stream,
                        const std::string& host, std::uint16_t port, Wanted wanted, Done done) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  resolver.async_resolve(host, std::to_string(port), [stream, host, wanted, done](boost::system::error_code ec,
                                                                                  tcp::resolver::results_type results) {
    if (!wanted()) return;
    if (ec) return done("resolve " + host + ": " + ec.message());
    asio::async_connect(stream->socket(), results,
                        [stream, host, wanted, done](boost::system::error_code ec2, const tcp::endpoint&) {
                          if (!wanted()) return;
                          if (ec2) return done("connect: " + ec2.message());
                          boost::system::error_code ignored;
                          stream->socket().set_option(tcp::no_delay(true), ignored);
                          auto* tls = stream->tls();
                          if (!tls) return done(std::string());
                          // (Without verification OpenSSL does not act on the name; SNI still goes.)
                          if (!common::expect_peer(tls->native_handle(), host)) {
                            return done("TLS: cannot check the broker's certificate against " + host);
                          }
                          tls->async_handshake(asio::ssl::stream_base::client,
                                               [stream, tls, wanted, done](boost::system::error_code ec3) {
                                                 if (!wanted()) return;
                                                 if (ec3) {
                                                   return done("TLS handshake: " + ec3.message() +
                                                               common::verify_failure(tls->native_handle()));
                                                 }
                                                 done(std::string());
                                               });
                        });
  });
}

}  // namespace tidegate::drivers::mqtt
