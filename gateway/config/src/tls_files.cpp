#include "tidegate/config/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <memory>

namespace tidegate::config {
namespace {

using SslCtx = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

SslCtx new_context() {
  return SslCtx(SSL_CTX_new(TLS_method()), &SSL_CTX_free);
}

// OpenSSL's reason for the last failure ("no certificate or crl found"),
// and the error queue emptied for the next call.
std::string openssl_reason() {
  std::string reason;
  while (const unsigned long e = ERR_get_error()) {
    if (reason.empty()) {
      const char* r = ERR_reason_error_string(e);
      reason = r ? r : "error " + std::to_string(e);
    }
  }
  return reason.empty() ? "not valid PEM" : reason;
}

// Never ask for a passphrase on the terminal: an encrypted key is an error.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

}  // namespace

void check_ca_file(Context& ctx, const std::string& key, const std::string& path) {
  if (ctx.docs || path.empty()) return;
  if (!check_readable_file(ctx, key, path, "CA file")) return;
  auto tls = new_context();
  ERR_clear_error();
  if (!tls || SSL_CTX_load_verify_locations(tls.get(), path.c_str(), nullptr) != 1) {
    ctx.error(key, "CA file " + in_quotes(path) + " holds no usable certificate: " + openssl_reason());
  }
}

void check_certificate_and_key(Context& ctx, const std::string& cert_key, const std::string& cert_path,
                               const std::string& key_key, const std::string& key_path) {
  if (ctx.docs || cert_path.empty()) return;
  const bool cert_ok = check_readable_file(ctx, cert_key, cert_path, "certificate file");
  const bool key_ok = check_readable_file(ctx, key_key, key_path, "key file");
  if (!cert_ok || !key_ok) return;
  auto tls = new_context();
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(tls.get(), cert_path.c_str()) != 1) {
    return ctx.error(cert_key,
                     "certificate file " + in_quotes(cert_path) + " is not a PEM certificate: " + openssl_reason());
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(key_path.c_str(), "r"), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr, &EVP_PKEY_free);
  if (!pkey) {
    return ctx.error(key_key, "key file " + in_quotes(key_path) +
                                  " is not a PEM private key (or it "
                                  "is encrypted): " +
                                  openssl_reason());
  }
  if (SSL_CTX_use_PrivateKey(tls.get(), pkey.get()) != 1 || SSL_CTX_check_private_key(tls.get()) != 1) {
    ctx.error(key_key, "key file " + in_quotes(key_path) + " does not match the certificate " + in_quotes(cert_path) +
                           ": " + openssl_reason());
  }
}

TlsKeys read_tls_keys(Section& t, bool url_is_tls) {
  Context& ctx = t.context();
  TlsKeys k;
  k.ca_file = t.text("ca_file", "", "CA certificates to verify the broker (PEM). Empty: the system's trust store.");
  k.cert_file = t.text("cert_file", "", "Client certificate (PEM) for mutual TLS.");
  k.key_file = t.text("key_file", "", "Private key (PEM, not encrypted) of the client certificate.");
  k.insecure_skip_verify = t.boolean("insecure_skip_verify", false,
                                     "Do not verify the broker's certificate. For bench tests only: anyone on the "
                                     "path can read and change the traffic (the MQTT source logs a warning at "
                                     "every connect).");
  if (ctx.docs) return k;
  check_ca_file(ctx, t.key_path("ca_file"), k.ca_file);
  if (!k.cert_file.empty() && k.key_file.empty()) {
    ctx.error(t.key_path("key_file"), "cert_file is set but key_file is not");
  } else {
    check_certificate_and_key(ctx, t.key_path("cert_file"), k.cert_file, t.key_path("key_file"), k.key_file);
  }
  if (!k.key_file.empty() && k.cert_file.empty())
    ctx.error(t.key_path("cert_file"), "key_file is set but cert_file is not");
  if ((t.present("ca_file") || t.present("cert_file")) && !url_is_tls) {
    ctx.error(t.key_path(t.present("ca_file") ? "ca_file" : "cert_file"), "TLS settings given but url is not mqtts://");
  }
  return k;
}

}  // namespace tidegate::config
