// The `tidegate` command line. main() only forwards to run_cli, so every
// command is testable as a library call.
#pragma once

#include <iosfwd>

namespace tidegate::gateway {

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace tidegate::gateway
