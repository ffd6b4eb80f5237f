#include "tidegate/proto/convert.h"

namespace tidegate::proto {

void to_proto(const buffer::Record& in, tidegate::v1::Record& out) {
  out.set_seq(in.seq);
  out.set_ingest_time_ns(in.ingest_ns);
  out.set_clock_synced(in.clock_synced);
  out.set_source(in.source);
  out.set_partition_key(in.partition_key);
  out.set_topic(in.topic);
  out.set_payload(in.payload);
  if (in.device_ts_ns) {
    out.set_device_time_ns(*in.device_ts_ns);
  } else {
    out.clear_device_time_ns();
  }
  out.set_content_type(in.content_type);
}

buffer::Record from_proto(const tidegate::v1::Record& in) {
  buffer::Record out;
  out.seq = in.seq();
  out.ingest_ns = in.ingest_time_ns();
  out.clock_synced = in.clock_synced();
  out.source = in.source();
  out.partition_key = in.partition_key();
  out.topic = in.topic();
  out.payload = in.payload();
  if (in.has_device_time_ns()) out.device_ts_ns = in.device_time_ns();
  out.content_type = in.content_type();
  return out;
}

tidegate::v1::Batch make_batch(const std::string& gateway_id, std::int64_t sent_time_ns,
                               const std::vector<buffer::Record>& records) {
  tidegate::v1::Batch batch;
  batch.set_format_version(kBatchFormatVersion);
  batch.set_gateway_id(gateway_id);
  batch.set_sent_time_ns(sent_time_ns);
  batch.mutable_records()->Reserve(static_cast<int>(records.size()));
  for (const auto& r : records) to_proto(r, *batch.add_records());
  return batch;
}

}  // namespace tidegate::proto
