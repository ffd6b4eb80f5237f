#include "tidegate/gateway/export.h"

#include <chrono>
#include <ostream>
#include <vector>

#include "operator_access.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/proto/convert.h"
#include "tidegate/proto/envelope.h"

namespace tidegate::gateway {
namespace {

constexpr std::size_t kBatchRecords = 500;

void write_varint(std::ostream& to, std::uint64_t n) {
  char bytes[10];
  int len = 0;
  do {
    bytes[len] = static_cast<char>(n & 0x7F);
    n >>= 7;
    if (n) bytes[len] = static_cast<char>(bytes[len] | 0x80);
    ++len;
  } while (n);
  to.write(bytes, len);
}

bool matches(const buffer::Record& r, const ExportRequest& q) {
  if (q.from_ns && r.ingest_ns < *q.from_ns) return false;
  if (q.to_ns && r.ingest_ns >= *q.to_ns) return false;
  if (!q.source.empty() && r.source != q.source) return false;
  if (!q.device.empty() && r.partition_key != q.device) return false;
  return true;
}

}  // namespace

int export_records(const OperatorContext& ctx, const ExportRequest& q, std::ostream& to) {
  if (!ops::buffer_exists(ctx)) return 2;
  auto buf = ops::open_read_only(ctx);
  const auto sent_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<buffer::Record> batch;
  std::uint64_t exported = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    const auto message = proto::make_batch(ctx.gateway_id, sent_ns, batch).SerializeAsString();
    write_varint(to, message.size());
    to.write(message.data(), static_cast<std::streamsize>(message.size()));
    batch.clear();
  };
  // What was stored when the export began: records committed meanwhile by
  // a running gateway are left for a later export.
  const std::uint64_t last = buf->stats().next_seq - 1;
  std::uint64_t after = 0;
  while (after < last) {
    auto page = buf->read_after(after, 1000, SIZE_MAX);
    if (page.status != buffer::Status::kOk) {
      *ctx.err << "tidegate export: reading the buffer failed after " << exported << " records: " << page.error
               << "\n";
      return 2;
    }
    if (page.records.empty()) break;
    for (auto& r : page.records) {
      if (r.seq > last || !matches(r, q)) continue;
      exported += 1;
      if (q.format == ExportFormat::kJsonLines) {
        to << proto::record_json(r, ctx.gateway_id) << '\n';
      } else {
        batch.push_back(std::move(r));
        if (batch.size() == kBatchRecords) flush();
      }
    }
    after = page.records.back().seq;
    if (!to) break;
  }
  flush();
  to.flush();
  if (!to) {
    *ctx.err << "tidegate export: writing failed after " << exported << " records\n";
    return 2;
  }
  *ctx.err << "exported " << exported << " records\n";
  return 0;
}

}  // namespace tidegate::gateway
