// The `tidegate` command line. main() only forwards to run_cli, so every
// command is testable as a library call.
#pragma once

#include <iosfwd>

namespace tidegate::gateway {

// Questions (confirmations) read their answer from std::cin, or from `in`.
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err, std::istream& in);

}  // namespace tidegate::gateway
