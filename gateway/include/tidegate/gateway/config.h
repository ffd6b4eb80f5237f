// The gateway's configuration: a TOML file, validated as a whole before
// anything starts. Every key is declared once, with its type, default and
// help text; the same declarations validate files and generate the
// configuration reference (`tidegate config-reference`, docs/configuration.md),
// so the two cannot disagree.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tidegate/buffer/options.h"
#include "tidegate/config/schema.h"
#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/plugins/sink_plugin.h"
#include "tidegate/processing/chain.h"
#include "tidegate/plugins/source_plugin.h"
#include "tidegate/status/http_server.h"
#include "tidegate/status/snapshot.h"

namespace tidegate::gateway {

using config::ConfigError;
using config::EnvLookup;

struct GatewayConfig {
  std::string gateway_id;
  buffer::LogLevel log_level = buffer::LogLevel::kInfo;
  buffer::BufferOptions buffer;
  // Every [[sources.KIND]] and [[sinks.KIND]] table, in the order of the
  // plugin list and then of the file. The sources end with the window and
  // deadband processors: derived streams run like sources.
  std::vector<plugins::SourcePlan> sources;
  std::vector<plugins::SinkPlan> sinks;
  // Every [[processors.KIND]] table; sinks name them in `processors`.
  std::vector<plugins::ProcessorPlan> processors;

  // The status page and its health thresholds.
  struct StatusConfig {
    bool enabled = true;
    status::HttpServerOptions http;
    std::string token;  // enables state-changing operations over HTTP
    status::HealthThresholds thresholds;
  } status;
  // The gateway's own health record, sent upstream through every sink.
  struct HeartbeatConfig {
    std::chrono::milliseconds interval{60'000};  // 0 = off
    std::string topic = "tidegate/heartbeat";
  } heartbeat;
};

EnvLookup process_env();
// The process environment first, then the service's environment file (as
// systemd's EnvironmentFile= gives it to the service).
EnvLookup process_env_then(std::map<std::string, std::string> file_vars);

struct LoadResult {
  std::optional<GatewayConfig> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
  // The sections "buffer", "sources", "sinks", "status" and "heartbeat",
  // each as toml++ writes it back (keys sorted): a reload compares them to
  // the running ones to tell what changed. A section the file does not have
  // has no entry.
  std::map<std::string, std::string> section_text;
};

LoadResult load_config(const std::filesystem::path& file, const EnvLookup& env = process_env());
LoadResult parse_config(const std::string& toml_text, const std::string& file_name,
                        const EnvLookup& env = process_env());

// The route and processors of one sink of `config`, made fresh (each sink
// has its own instances). Processor names were checked by the loader.
std::unique_ptr<processing::Chain> make_chain(const GatewayConfig& config, const plugins::SinkPlan& sink);

// Markdown: every key with type, default and description.
std::string config_reference_markdown();

}  // namespace tidegate::gateway
