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
#include "tidegate/drivers/mqtt/mqtt_source.h"
#include "tidegate/drivers/sim/sim_source.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/sinks/file_sink.h"
#include "tidegate/sinks/http_sink.h"
#include "tidegate/sinks/kinesis_sink.h"
#include "tidegate/sinks/mqtt_sink.h"
#include "tidegate/status/http_server.h"
#include "tidegate/status/snapshot.h"

namespace tidegate::gateway {

struct ConfigError {
  std::string file;
  std::string key;  // dotted path, e.g. "sources.mqtt[0].port"; empty for the file itself
  std::string reason;
  std::string text() const;  // "FILE: KEY: REASON"
};

struct GatewayConfig {
  std::string gateway_id;
  buffer::LogLevel log_level = buffer::LogLevel::kInfo;
  buffer::BufferOptions buffer;
  std::vector<drivers::mqtt::MqttSourceOptions> mqtt_sources;
  std::vector<drivers::sim::SimOptions> sim_sources;

  // A sink: its own settings, and how its forwarder batches and retries.
  template <typename Options>
  struct SinkConfig {
    Options sink;
    forward::ForwarderOptions forwarder;
  };
  using FileSinkConfig = SinkConfig<sinks::FileSinkOptions>;
  using MqttSinkConfig = SinkConfig<sinks::MqttSinkOptions>;
  using KinesisSinkConfig = SinkConfig<sinks::KinesisSinkOptions>;
  using HttpSinkConfig = SinkConfig<sinks::HttpSinkOptions>;
  std::vector<FileSinkConfig> file_sinks;
  std::vector<MqttSinkConfig> mqtt_sinks;
  std::vector<KinesisSinkConfig> kinesis_sinks;
  std::vector<HttpSinkConfig> http_sinks;

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

  // Calls fn(kind, index, name, gateway_id&) for every sink, of every kind.
  template <typename Fn>
  void for_each_sink(Fn&& fn) {
    for (std::size_t i = 0; i < file_sinks.size(); ++i) fn("file", i, file_sinks[i].sink.name, file_sinks[i].sink.gateway_id);
    for (std::size_t i = 0; i < mqtt_sinks.size(); ++i) fn("mqtt", i, mqtt_sinks[i].sink.name, mqtt_sinks[i].sink.gateway_id);
    for (std::size_t i = 0; i < kinesis_sinks.size(); ++i) {
      fn("kinesis", i, kinesis_sinks[i].sink.name, kinesis_sinks[i].sink.gateway_id);
    }
    for (std::size_t i = 0; i < http_sinks.size(); ++i) fn("http", i, http_sinks[i].sink.name, http_sinks[i].sink.gateway_id);
  }
};

// Looks up environment variables (injected so tests need not set real ones).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

struct LoadResult {
  std::optional<GatewayConfig> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
  // The sections a running gateway cannot change in place ("buffer",
  // "sources", "sinks"), each as toml++ writes it back (keys sorted): a
  // reload compares them, from the same parse, to name what needs a restart.
  // A section the file does not have has no entry.
  std::map<std::string, std::string> restart_sections;
};

LoadResult load_config(const std::filesystem::path& file, const EnvLookup& env = process_env());
LoadResult parse_config(const std::string& toml_text, const std::string& file_name,
                        const EnvLookup& env = process_env());

// Markdown: every key with type, default and description.
std::string config_reference_markdown();

}  // namespace tidegate::gateway
