// Short texts from operators and the status page's clients: the status API's
// dead-letter selection (query string), times, sizes, durations, URLs,
// listen addresses and broker URLs from the configuration.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "tidegate/config/schema.h"
#include "tidegate/gateway/operations.h"
#include "tidegate/net/http_client.h"
#include "tidegate/status/routes.h"

using namespace tidegate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto which = status::parse_selection_query(text)) {
    // What is parsed prints back to a query that parses the same way.
    if (!status::parse_selection_query("/api/dead-letters/clear?" + status::selection_query(*which))) __builtin_trap();
  }
  (void)gateway::parse_operator_time(text);
  (void)config::parse_size(text);
  (void)config::parse_duration_ms(text);
  std::string host, address;
  std::uint16_t port = 0;
  bool tls = false;
  (void)config::parse_broker_url(text, host, port, tls);
  (void)config::parse_listen(text, address, port);
  (void)config::parse_port(text, 1, port);
  try {
    (void)net::Url::parse(text);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
