// KPL record aggregation (proto/kpl/aggregation.proto): many small readings
// of one partition key packed into one Kinesis record that standard
// consumers de-aggregate.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace tidegate::sinks::kpl {

inline constexpr unsigned char kMagic[4] = {0xF3, 0x89, 0x9A, 0xC2};

// Magic bytes + AggregatedRecord{partition_key_table=[key], records} + MD5.
std::string aggregate(const std::string& partition_key, const std::vector<std::string>& datas);

// The user records of an aggregated record, or nullopt if `data` is not one
// (wrong magic, bad digest, unparsable message).
std::optional<std::vector<std::string>> deaggregate(const std::string& data);

// Bytes aggregate() adds around the data of `count` records of `bytes` total
// (an upper bound, to stay under Kinesis's 1 MiB per record).
std::size_t overhead(std::size_t count, std::size_t partition_key_size);

}  // namespace tidegate::sinks::kpl
