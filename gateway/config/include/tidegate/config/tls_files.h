// TLS material a configuration names, loaded at start-up by the same OpenSSL
// calls the connections make later, so that `check-config` and `run` refuse
// a bad file (exit 2, naming file, key and reason) instead of a connection
// failing, or a thread aborting, once the gateway runs.
#pragma once

#include <string>

#include "tidegate/config/schema.h"

namespace tidegate::config {

// A CA bundle (PEM): readable, holding at least one certificate.
void check_ca_file(Context& ctx, const std::string& key, const std::string& path);

// A certificate chain and its private key (PEM): each readable and parsable,
// and the key the certificate's. Nothing to check while cert_path is empty;
// callers refuse a certificate without its key before.
void check_certificate_and_key(Context& ctx, const std::string& cert_key, const std::string& cert_path,
                               const std::string& key_key, const std::string& key_path);

// The [tls] table of an MQTT client (a source's or a sink's): every file
// loaded as above, and TLS settings only with an mqtts:// URL.
struct TlsKeys {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;
};
TlsKeys read_tls_keys(Section& t, bool url_is_tls);

}  // namespace tidegate::config
