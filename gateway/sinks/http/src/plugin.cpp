// [[sinks.http]]: the sink's keys, checks and factory.
#include "tidegate/config/tls_files.h"
#include "tidegate/plugins/sink_plugin.h"
#include "tidegate/sinks/http_sink.h"

namespace tidegate::sinks {
namespace {

using config::Context;
using config::in_quotes;
using config::Section;

void read_options(Section& s, HttpSinkOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "http", "Name of this sink: its cursor in the buffer and its status label.");
  o.url = s.text("url", "", "Where batches are POSTed: http(s)://host[:port]/path (required).");
  o.format = s.choice("format", "protobuf", {"protobuf", "jsonl"},
                      "protobuf: one tidegate.v1.Batch per request (proto/tidegate/v1/record.proto). jsonl: one JSON "
                      "envelope per line.") == "jsonl"
                 ? HttpFormat::kJsonLines
                 : HttpFormat::kProtobuf;
  o.gzip = s.boolean("gzip", true, "Compress request bodies (Content-Encoding: gzip).");
  const auto token = s.text("bearer_token", "",
                            "Sent as Authorization: Bearer. Prefer TIDEGATE_SINK_<NAME>_TOKEN, "
                            "which overrides it; never logged.");
  o.timeout = s.duration("timeout", std::chrono::seconds(10), "Time allowed for one request.");
  o.ca_file = s.text("ca_file", "", "CA certificates for https. Empty: the system's trust store.");
  o.max_batch_bytes = s.memory_size("max_request_size", 1u << 20, "Records per request stop before this many bytes.");
  if (!ctx.docs) {
    o.bearer_token = ctx.env(config::env_name("SINK", o.name, "TOKEN")).value_or(token);
    if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
      ctx.error(s.key_path("url"), "expected http(s)://host[:port]/path, got " + in_quotes(o.url));
    }
    config::check_ca_file(ctx, s.key_path("ca_file"), o.ca_file);
  }
}

}  // namespace

}  // namespace tidegate::sinks

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SinkDescriptor http_sink_plugin() {
  using sinks::HttpSink;
  return sink_descriptor<HttpSink, sinks::HttpSinkOptions>(
      "http",
      "An HTTP(S) endpoint ([[sinks.http]]): batches of at most " + std::to_string(HttpSink::kMaxBatch) +
          " records POSTed as Protobuf or JSON lines; any "
          "2xx acknowledges; 5xx, 408, 429, 401, 403, 404 are retried; other 4xx dead-letter the batch.",
      sinks::read_options);
}

}  // namespace tidegate::plugins
