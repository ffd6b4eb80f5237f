// Amazon Kinesis Data Streams sink: PutRecords over HTTP(S) (Boost.Beast,
// OpenSSL), signed with Signature V4. The partition key is the record's
// partition key (the device), never random, so each device stays ordered
// within its shard. A batch goes as PutRecords calls of up to 500 records,
// in lanes (a device in one lane) sent at once on parallel connections; a
// lane stops at its first call with a failure. Per-record failures
// in the response (FailedRecordCount) are retried alone; throttling backs off.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tidegate/forward/sink.h"
#include "tidegate/sinks/aws_credentials.h"
#include "tidegate/sinks/sigv4.h"

namespace tidegate::sinks {

enum class KinesisData {
  kEnvelope,  // the JSON envelope: gateway id and sequence travel with the reading
  kRaw,       // the sensor's bytes only
};

struct KinesisSinkOptions {
  std::string name = "kinesis";
  std::string stream;
  std::string region = "us-east-1";
  // Empty: https://kinesis.<region>.amazonaws.com. Else http(s)://host[:port].
  std::string endpoint;
  sigv4::Credentials credentials;  // from the config or AWS_* environment variables
  // Where credentials come from: those keys (kKeys), or temporary ones of an
  // instance role or a web identity (its fields other than `keys`).
  aws::CredentialOptions credential_source;
  KinesisData data = KinesisData::kEnvelope;
  // Pack the readings of one device in a batch into KPL aggregated records
  // (fewer, fuller Kinesis records: cheaper, and more throughput per shard).
  bool aggregate = false;
  // PutRecords calls in flight at once when a batch needs several calls
  // (a backlog), each on its own connection. A device's readings of a batch
  // all go through one of them, in order; more connections overlap round
  // trips (a cellular uplink's 100 ms each).
  std::size_t connections = 4;
  std::chrono::milliseconds timeout{10'000};
  std::string ca_file;  // empty: the system's trust store
  std::string gateway_id;
};

class KinesisSink final : public forward::Sink {
 public:
  // Throws std::invalid_argument for an endpoint it cannot parse or
  // connections outside 1 to kMaxConnections.
  explicit KinesisSink(KinesisSinkOptions options);
  ~KinesisSink() override;
  const std::string& name() const override;
  forward::SinkLimits limits() const override;
  forward::SendResult send(const std::vector<buffer::Record>& batch) override;
  std::string describe() const override;

  // One Kinesis record to put: its partition key, its data, and which
  // records of the batch it carries.
  struct Entry {
    std::string partition_key;
    std::string data;
    std::vector<std::size_t> records;
  };
  // The batch as Kinesis records: one per record, or aggregated per device.
  std::vector<Entry> entries(const std::vector<buffer::Record>& batch) const;
  // PutRecords allows 500 records and 5 MiB per call; a body is kept under
  // 4.5 MB, leaving room for the JSON around the records.
  static constexpr std::size_t kMaxCallRecords = 500;
  static constexpr std::size_t kMaxCallBytes = 4'500'000;
  static constexpr std::size_t kMaxConnections = 16;
  // The entries split into PutRecords calls, in order: [begin, end) ranges.
  static std::vector<std::pair<std::size_t, std::size_t>> calls(const std::vector<Entry>& entries);
  // The lane (connection) of each entry: all of a device's entries share
  // one, and the lanes' entry counts are balanced.
  static std::vector<std::size_t> assign_lanes(const std::vector<Entry>& entries, std::size_t lanes);
  // The PutRecords JSON body of one call (exposed for tests).
  std::string put_records_body(std::span<const Entry> entries) const;
  std::string put_records_body(const std::vector<buffer::Record>& batch) const {
    return put_records_body(entries(batch));
  }
  // Maps an HTTP status and body to per-record outcomes (exposed for tests).
  forward::SendResult interpret(int http_status, const std::string& body, std::size_t records) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::sinks
