// Which certificate a TLS client accepts from its peer: one for the host it
// was told to reach. A host name is checked against the certificate's DNS
// names and sent as SNI; an IP address (https://192.168.1.10/, common for a
// receiver on the site network) is checked against its IP addresses and not
// sent as SNI, which RFC 6066 reserves for names. Header-only: the users
// link OpenSSL themselves.
#pragma once

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <string>

namespace tidegate::common {

inline bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Call before the handshake, on a connection whose context verifies peers.
// False if OpenSSL refused the setting (the handshake must not go ahead).
inline bool expect_peer(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (is_ip_literal(host)) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1) return false;
  // SNI (SSL_set_tlsext_host_name is a macro with a C cast).
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str())) == 1;
}

// Why OpenSSL refused the peer's certificate, as " (reason)" to append to a
// handshake error ("certificate verify failed" alone does not say whether the
// CA, the name or the dates were wrong); empty if the chain was not the cause.
inline std::string verify_failure(const SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return {};
  return std::string(" (") + X509_verify_cert_error_string(result) + ")";
}

}  // namespace tidegate::common
