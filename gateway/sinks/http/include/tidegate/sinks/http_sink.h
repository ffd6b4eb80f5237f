// The HTTP(S) sink: POSTs each batch to a URL, as a Protobuf
// tidegate.v1.Batch (proto/tidegate/v1/record.proto; versioned by
// format_version) or as JSON lines; optionally gzip-compressed and with a
// bearer token. Any 2xx acknowledges the batch.
//
// Answers: 2xx ok; 408, 429 (throttled), 5xx: retry; 401, 403, 404:
// retry too (a configuration problem is no reason to drop readings, and it
// is logged with every attempt); other 4xx (400, 413, 415, 422): the server
// says it will never take this batch, so its records become dead letters.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tidegate/forward/sink.h"

namespace tidegate::sinks {

enum class HttpFormat { kProtobuf, kJsonLines };

struct HttpSinkOptions {
  std::string name = "http";
  std::string url;
  HttpFormat format = HttpFormat::kProtobuf;
  bool gzip = true;
  std::string bearer_token;  // empty: no Authorization header
  std::chrono::milliseconds timeout{10'000};
  std::string ca_file;
  std::size_t max_batch_bytes = 1u << 20;
  std::string gateway_id;
};

// gzip (RFC 1952) of `data`, for tests and the sink.
std::string gzip_compress(const std::string& data);
std::string gzip_decompress(const std::string& data);

class HttpSink final : public forward::Sink {
 public:
  static constexpr std::size_t kMaxBatch = 1'000;  // records per request

  // Throws std::invalid_argument for a URL it cannot use.
  explicit HttpSink(HttpSinkOptions options);
  ~HttpSink() override;
  const std::string& name() const override;
  forward::SinkLimits limits() const override;
  forward::SendResult send(const std::vector<buffer::Record>& batch) override;
  std::string describe() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::sinks
