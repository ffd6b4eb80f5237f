#include <gtest/gtest.h>

#include "tidegate/proto/convert.h"
#include "tidegate/proto/envelope.h"

namespace tidegate::proto {
namespace {

TEST(ProtoConvert, RecordRoundTripsThroughTheWireFormat) {
  buffer::Record r;
  r.seq = 123456789012ull;
  r.ingest_ns = 1'700'000'000'000'000'001;
  r.clock_synced = true;
  r.source = "mqtt-local";
  r.partition_key = "dev-9";
  r.topic = "sensors/dev-9/co2";
  r.payload = std::string("\0\x01{\"ppm\":612}", 13);
  r.device_ts_ns = 1'699'999'999'000'000'000;
  r.content_type = "application/json";

  auto batch = make_batch("gw-plant-3", 5, {r});
  std::string wire;
  ASSERT_TRUE(batch.SerializeToString(&wire));
  tidegate::v1::Batch parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.format_version(), kBatchFormatVersion);
  EXPECT_EQ(parsed.gateway_id(), "gw-plant-3");
  ASSERT_EQ(parsed.records_size(), 1);
  auto back = from_proto(parsed.records(0));
  EXPECT_EQ(back.seq, r.seq);
  EXPECT_EQ(back.ingest_ns, r.ingest_ns);
  EXPECT_EQ(back.clock_synced, r.clock_synced);
  EXPECT_EQ(back.source, r.source);
  EXPECT_EQ(back.partition_key, r.partition_key);
  EXPECT_EQ(back.topic, r.topic);
  EXPECT_EQ(back.payload, r.payload);
  EXPECT_EQ(back.device_ts_ns, r.device_ts_ns);
  EXPECT_EQ(back.content_type, r.content_type);
}

TEST(ProtoConvert, AbsentDeviceTimeStaysAbsent) {
  buffer::Record r;
  r.seq = 1;
  tidegate::v1::Record out;
  to_proto(r, out);
  EXPECT_FALSE(out.has_device_time_ns());
  EXPECT_FALSE(from_proto(out).device_ts_ns.has_value());
}

}  // namespace
}  // namespace tidegate::proto

namespace tidegate::proto {
namespace {

TEST(RecordJson, IsTheDocumentedEnvelopeWithTextOrBase64Payload) {
  buffer::Record r;
  r.seq = 7;
  r.ingest_ns = 1'795'000'000'000'000'000;
  r.clock_synced = true;
  r.source = "local";
  r.partition_key = "d-7";
  r.topic = "sensors/d-7/t";
  r.content_type = "application/json";
  r.payload = R"({"t":21.5,"note":"a\b"})";
  EXPECT_EQ(record_json(r, "plant-3"),
            R"({"gateway":"plant-3","seq":7,"ingest_ns":1795000000000000000,"clock_synced":true,"source":"local",)"
            R"("partition_key":"d-7","topic":"sensors/d-7/t","device_ts_ns":null,"content_type":"application/json",)"
            R"("payload":"{\"t\":21.5,\"note\":\"a\\b\"}"})");
  r.payload = std::string("\x00\xff", 2);
  r.device_ts_ns = -5;
  std::string out = "[";
  append_record_json(out, r);
  EXPECT_EQ(out, R"([{"seq":7,"ingest_ns":1795000000000000000,"clock_synced":true,"source":"local",)"
                 R"("partition_key":"d-7","topic":"sensors/d-7/t","device_ts_ns":-5,"content_type":"application/json",)"
                 R"("payload_base64":"AP8="})");
}

}  // namespace
}  // namespace tidegate::proto
