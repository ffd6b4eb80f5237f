// History out of the buffer, for backfills and disaster recovery: the
// retained records in a time range, optionally of one source or device, in
// the envelope the sinks send (JSON lines, or Protobuf batches).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "tidegate/gateway/operations.h"

namespace tidegate::gateway {

enum class ExportFormat { kJsonLines, kProtobuf };

struct ExportRequest {
  std::optional<std::int64_t> from_ns;  // ingest time, inclusive; none: the oldest record
  std::optional<std::int64_t> to_ns;    // ingest time, exclusive; none: the newest
  std::string source;                   // empty: every source
  std::string device;                   // partition key; empty: every device
  ExportFormat format = ExportFormat::kJsonLines;
};

// Writes the matching records to `to`, in sequence order; the count goes to
// ctx.err. Read-only: safe beside a running gateway.
//  - JSON lines: one record per line, as the file and HTTP sinks send them.
//  - Protobuf: tidegate.v1.Batch messages of up to 500 records, each
//    preceded by its length as a varint (the "delimited" framing of
//    writeDelimitedTo / parseDelimitedFrom).
int export_records(const OperatorContext& ctx, const ExportRequest& request, std::ostream& to);

}  // namespace tidegate::gateway
