// [[sinks.file]]: the sink's keys, checks and factory.
#include "tidegate/plugins/sink_plugin.h"
#include "tidegate/sinks/file_sink.h"

namespace tidegate::sinks {
namespace {

using config::Context;
using config::in_quotes;
using config::Section;

void read_options(Section& s, FileSinkOptions& o) {
  o.name = s.text("name", "file", "Name of this sink: its cursor in the buffer and its label on the status page.");
  o.directory = s.text("directory", "/var/lib/tidegate/out", "Where the files go (created if missing).");
  o.prefix = s.text("prefix", "tidegate", "File names: <prefix>-<UTC time>-<first seq>.jsonl (or .pb).");
  o.format = s.choice("format", "jsonl", {"jsonl", "protobuf"},
                      "jsonl: one JSON object per record. protobuf: length-delimited tidegate.v1.Batch "
                      "messages (proto/tidegate/v1/record.proto).") == "protobuf"
                 ? FileFormat::kProtobuf
                 : FileFormat::kJsonLines;
  o.max_file_bytes = s.size("max_file_size", 64ull << 20, "Start a new file past this size.");
  o.max_file_age = std::chrono::duration_cast<std::chrono::seconds>(
      s.duration("max_file_age", std::chrono::hours(1), "Start a new file after this long."));
  o.max_files = static_cast<std::size_t>(
      s.integer("max_files", 0, 0, 1'000'000, "Keep at most this many complete files, deleting the oldest. 0 = all."));
  o.fsync = s.boolean("fsync", true, "Acknowledge a batch only once it is on disk (fdatasync).");
  if (!s.context().docs) config::check_creatable_file(s.context(), s.key_path("directory"), o.directory / "x");
}

}  // namespace

}  // namespace tidegate::sinks

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SinkDescriptor file_sink_plugin() {
  using sinks::FileSink;
  return sink_descriptor<FileSink, sinks::FileSinkOptions>(
      "file",
      "Rotating local files ([[sinks.file]]), at most " + std::to_string(FileSink::kMaxBatch) + " records a batch.",
      sinks::read_options);
}

}  // namespace tidegate::plugins
