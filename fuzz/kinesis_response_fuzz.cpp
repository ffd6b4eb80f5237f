// What a Kinesis endpoint answers to PutRecords is outside input (a proxy,
// a broken endpoint, something pretending to be one). Any status and body:
// interpret() must not throw, must give one outcome per record, and may
// acknowledge only a record the answer shows stored (a SequenceNumber
// string and no ErrorCode) in a 200 whose Records match the batch.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tidegate/sinks/kinesis_sink.h"

using namespace tidegate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static constexpr int kStatuses[] = {200, 200, 200, 400, 429, 500, 503, 0};
  const int status = kStatuses[data[0] % 8];
  const std::size_t records = data[1] % 8;
  const std::string body(reinterpret_cast<const char*>(data + 2), size - 2);
  static const sinks::KinesisSink sink = [] {
    sinks::KinesisSinkOptions o;
    o.stream = "s";
    o.endpoint = "http://127.0.0.1:9";  // never contacted: interpret() only
    return sinks::KinesisSink(o);
  }();
  const auto r = sink.interpret(status, body, records);  // an exception ends the run: a finding
  if (!r.per_record.empty() && r.per_record.size() != records) __builtin_trap();
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  for (std::size_t i = 0; i < records; ++i) {
    if (r.outcome_of(i) != forward::Outcome::kOk) continue;
    if (status != 200) __builtin_trap();
    const auto& entry = doc.at("Records").at(i);  // throws (a finding) if the answer did not hold it
    if (!entry.is_object() || entry.contains("ErrorCode") || !entry.contains("SequenceNumber") ||
        !entry["SequenceNumber"].is_string() || entry["SequenceNumber"].get<std::string>().empty()) {
      __builtin_trap();
    }
  }
  return 0;
}
