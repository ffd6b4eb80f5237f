// The OpenSSL context of an MQTT client: TLS 1.2 or later, the broker's
// chain checked against the CA file (or the system's store), and the client
// certificate for mutual TLS. Throws boost::system::system_error for a file
// OpenSSL cannot read.
#pragma once

#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio/ssl/context.hpp>

#include "tidegate/drivers/mqtt/tls_options.h"

namespace tidegate::drivers::mqtt {

inline boost::asio::ssl::context make_client_tls_context(const TlsOptions& tls) {
  namespace ssl = boost::asio::ssl;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (tls.ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(tls.ca_file);
  }
  if (!tls.cert_file.empty()) {
    ctx.use_certificate_chain_file(tls.cert_file);
    ctx.use_private_key_file(tls.key_file.empty() ? tls.cert_file : tls.key_file, ssl::context::pem);
  }
  ctx.set_verify_mode(tls.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
  return ctx;
}

}  // namespace tidegate::drivers::mqtt
