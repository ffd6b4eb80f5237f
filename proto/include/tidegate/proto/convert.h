// Conversion between buffer records and the upstream Protobuf messages.
#pragma once

#include <string>
#include <vector>

#include "record.pb.h"
#include "tidegate/buffer/record.h"

namespace tidegate::proto {

inline constexpr unsigned kBatchFormatVersion = 1;

void to_proto(const buffer::Record& in, tidegate::v1::Record& out);
buffer::Record from_proto(const tidegate::v1::Record& in);

tidegate::v1::Batch make_batch(const std::string& gateway_id, std::int64_t sent_time_ns,
                               const std::vector<buffer::Record>& records);

}  // namespace tidegate::proto
