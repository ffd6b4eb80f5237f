// KPL aggregated records, byte for byte against the published format
// (amazon-kinesis-producer, aggregation-format.md).
#include "tidegate/sinks/kpl.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "test_support.h"
#include "tidegate/sinks/kinesis_sink.h"

namespace tidegate::sinks {
namespace {

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

std::string md5(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<const char*>(d), n);
}

TEST(Kpl, AggregatedRecordBytesFollowThePublishedFormat) {
  const auto out = kpl::aggregate("k", {"ab"});
  // AggregatedRecord { partition_key_table: "k", records { partition_key_index: 0, data: "ab" } }
  const std::string message = bytes({0x0A, 0x01, 'k',                                        // field 1, "k"
                                     0x1A, 0x06, 0x08, 0x00, 0x1A, 0x02, 'a', 'b'});          // field 3, Record
  ASSERT_EQ(out.size(), 4 + message.size() + 16);
  EXPECT_EQ(out.substr(0, 4), bytes({0xF3, 0x89, 0x9A, 0xC2}));  // magic
  EXPECT_EQ(out.substr(4, message.size()), message);
  EXPECT_EQ(out.substr(4 + message.size()), md5(message));      // MD5 of the message
}

TEST(Kpl, DeaggregatesAndRejectsDamage) {
  const std::vector<std::string> datas = {"{\"t\":1}", std::string("\0\xff", 2), ""};
  auto out = kpl::aggregate("dev-1", datas);
  EXPECT_EQ(kpl::deaggregate(out), datas);
  auto damaged = out;
  damaged[6] ^= 0x01;
  EXPECT_FALSE(kpl::deaggregate(damaged).has_value());  // digest mismatch
  EXPECT_FALSE(kpl::deaggregate("plain record").has_value());
}

TEST(Kpl, TheSinkAggregatesPerDeviceInOrder) {
  KinesisSinkOptions o;
  o.stream = "s";
  o.endpoint = "http://127.0.0.1:9";
  o.aggregate = true;
  o.data = KinesisData::kRaw;
  KinesisSink sink(o);
  std::vector<buffer::Record> batch;
  for (int i = 0; i < 6; ++i) {
    buffer::Record r;
    static_cast<buffer::NewRecord&>(r) = testing::make_record("v" + std::to_string(i), i % 2 ? "odd" : "even");
    r.seq = static_cast<std::uint64_t>(i + 1);
    batch.push_back(r);
  }
  const auto entries = sink.entries(batch);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].partition_key, "even");
  EXPECT_EQ(entries[0].records, (std::vector<std::size_t>{0, 2, 4}));
  EXPECT_EQ(kpl::deaggregate(entries[0].data), (std::vector<std::string>{"v0", "v2", "v4"}));
  EXPECT_EQ(entries[1].partition_key, "odd");
  EXPECT_EQ(kpl::deaggregate(entries[1].data), (std::vector<std::string>{"v1", "v3", "v5"}));
}

}  // namespace
}  // namespace tidegate::sinks
