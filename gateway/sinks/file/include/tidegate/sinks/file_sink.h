// The file sink: rotating local files, the working default for sites
// without an uplink and for the demo. A batch is acknowledged once it is
// written (and, with fsync on, on disk).
//
// Files: <dir>/<prefix>-<UTC start time>-<first seq>.<ext>, written as
// "<name>.partial" and renamed when complete (size or age reached, or on
// shutdown), so a collector picks up only complete files. Formats:
//   jsonl     one JSON object per record (tidegate/proto/envelope.h)
//   protobuf  length-delimited tidegate.v1.Batch messages (a varint length,
//             then the message; one per send)
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "tidegate/forward/sink.h"

namespace tidegate::sinks {

enum class FileFormat { kJsonLines, kProtobuf };

struct FileSinkOptions {
  std::string name = "file";
  std::filesystem::path directory;
  std::string prefix = "tidegate";
  FileFormat format = FileFormat::kJsonLines;
  std::uint64_t max_file_bytes = 64ull << 20;
  std::chrono::seconds max_file_age{3600};
  std::size_t max_files = 0;  // keep at most this many complete files (oldest deleted); 0 = all
  bool fsync = true;          // acknowledge only after fdatasync
  std::string gateway_id;
};

class FileSink final : public forward::Sink {
 public:
  static constexpr std::size_t kMaxBatch = 10'000;  // records per send

  // Finishes any ".partial" file a previous run left. Throws
  // std::system_error if the directory cannot be created.
  explicit FileSink(FileSinkOptions options);
  ~FileSink() override;
  const std::string& name() const override;
  forward::SinkLimits limits() const override;
  forward::SendResult send(const std::vector<buffer::Record>& batch) override;
  std::string describe() const override;
  // Completes the current file now (as at rotation).
  void finish_file();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::sinks
