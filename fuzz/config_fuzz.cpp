// The configuration file: TOML text an integrator writes by hand. Any text
// gives a LoadResult with errors, never a crash or an escaping exception.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "tidegate/gateway/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // No environment: the fuzzer's own variables must not change the result.
  const tidegate::gateway::EnvLookup no_env = [](const std::string&) { return std::optional<std::string>(); };
  (void)tidegate::gateway::parse_config(text, "fuzz.toml", no_env);
  return 0;
}
