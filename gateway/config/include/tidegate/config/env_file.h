// The service's environment file (/etc/default/tidegate): secrets such as
// AWS credentials that must not sit in the world-readable parts of the
// configuration. systemd loads it with EnvironmentFile=; the CLI reads it
// the same way, so `sudo tidegate check-config` sees what the service sees.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tidegate::config {

struct EnvFile {
  std::map<std::string, std::string> vars;
  std::vector<std::string> errors;  // "FILE:LINE: reason"; the other lines still count
};

// systemd's EnvironmentFile= syntax: KEY=VALUE lines, '#' and ';' comments,
// blank lines, values optionally in single or double quotes (double quotes
// take \" and \\ escapes), a trailing backslash continues the line.
EnvFile parse_env_file(const std::string& text, const std::string& file_name);

// nullopt with `error` set when the file exists but cannot be read; an empty
// EnvFile when it does not exist and `must_exist` is false.
std::optional<EnvFile> read_env_file(const std::filesystem::path& path, bool must_exist, std::string& error);

}  // namespace tidegate::config
