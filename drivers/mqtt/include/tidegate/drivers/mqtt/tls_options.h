// TLS of an MQTT client connection (the source's broker, the sink's upstream).
#pragma once

#include <string>

namespace tidegate::drivers::mqtt {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;    // empty: the system's trust store
  std::string cert_file;  // client certificate (mutual TLS), optional
  std::string key_file;   // empty: in cert_file
  bool insecure_skip_verify = false;  // logged loudly at every connect
};

}  // namespace tidegate::drivers::mqtt
