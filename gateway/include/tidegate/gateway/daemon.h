// `tidegate run`: loads the configuration, opens the buffer, runs the
// sources until SIGTERM or SIGINT, then stops them so that everything taken
// in is committed and acknowledged, and exits 0. SIGHUP re-reads the file:
// settings that can change live are applied, the others are named as
// needing a restart.
#pragma once

#include <filesystem>
#include <ostream>

#include "tidegate/gateway/config.h"

namespace tidegate::gateway {

// Exit codes: 0 clean stop, 1 runtime failure (buffer unusable), 2 bad configuration.
// `env` resolves the variables the configuration refers to (credentials,
// the status token), at start and on every reload.
int run_daemon(const std::filesystem::path& config_file, std::ostream& log_stream, EnvLookup env = process_env());

}  // namespace tidegate::gateway
