// The file sink on real files, alone and behind a forwarder.
#include "tidegate/sinks/file_sink.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "record.pb.h"
#include "test_support.h"
#include "tidegate/forward/forwarder.h"

namespace tidegate::sinks {
namespace {

std::vector<buffer::Record> records(std::uint64_t first, int n, const std::string& payload = "{\"t\":21}") {
  std::vector<buffer::Record> out;
  for (int i = 0; i < n; ++i) {
    buffer::Record r;
    static_cast<buffer::NewRecord&>(r) = testing::make_record(payload);
    r.seq = first + static_cast<std::uint64_t>(i);
    r.ingest_ns = 1'700'000'000'000'000'000 + i;
    out.push_back(r);
  }
  return out;
}

std::vector<std::filesystem::path> files(const std::filesystem::path& dir, const std::string& ext) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<nlohmann::json> lines(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

class FileSinkTest : public ::testing::Test {
 protected:
  FileSinkOptions options() {
    FileSinkOptions o;
    o.directory = dir_ / "out";
    o.gateway_id = "gw-7";
    return o;
  }
  testing::TempDir dir_;
};

TEST_F(FileSinkTest, WritesJsonLinesThatNameGatewayAndSequence) {
  {
    FileSink sink(options());
    auto batch = records(1, 3);
    batch[2].payload = std::string("\x00\xff", 2);
    EXPECT_EQ(sink.send(batch).batch, forward::Outcome::kOk);
    // While open, the file is ".partial": collectors skip it.
    EXPECT_EQ(files(dir_ / "out", ".partial").size(), 1u);
    EXPECT_TRUE(files(dir_ / "out", ".jsonl").empty());
  }
  auto done = files(dir_ / "out", ".jsonl");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NE(done[0].filename().string().find("tidegate-"), std::string::npos);
  EXPECT_NE(done[0].filename().string().find("-1.jsonl"), std::string::npos);
  auto got = lines(done[0]);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["gateway"], "gw-7");
  EXPECT_EQ(got[0]["seq"], 1);
  EXPECT_EQ(got[0]["payload"], "{\"t\":21}");
  EXPECT_EQ(got[0]["partition_key"], "dev-1");
  EXPECT_EQ(got[2]["payload_base64"], "AP8=");
}

TEST_F(FileSinkTest, RotatesBySizeAndKeepsAtMostMaxFiles) {
  auto o = options();
  o.max_file_bytes = 2000;
  o.max_files = 3;
  {
    FileSink sink(o);
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(sink.send(records(1 + static_cast<std::uint64_t>(i) * 10, 10)).batch, forward::Outcome::kOk);
    }
  }
  auto done = files(dir_ / "out", ".jsonl");
  EXPECT_EQ(done.size(), 3u);  // older ones pruned
  std::set<std::uint64_t> seqs;
  for (const auto& f : done) {
    for (const auto& j : lines(f)) seqs.insert(j["seq"].get<std::uint64_t>());
  }
  EXPECT_TRUE(seqs.count(100));  // the newest are kept
  EXPECT_FALSE(seqs.count(1));
}

TEST_F(FileSinkTest, ProtobufFilesHoldLengthDelimitedBatches) {
  auto o = options();
  o.format = FileFormat::kProtobuf;
  {
    FileSink sink(o);
    ASSERT_EQ(sink.send(records(1, 2)).batch, forward::Outcome::kOk);
    ASSERT_EQ(sink.send(records(3, 3)).batch, forward::Outcome::kOk);
  }
  auto done = files(dir_ / "out", ".pb");
  ASSERT_EQ(done.size(), 1u);
  std::ifstream in(done[0], std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  std::vector<std::uint64_t> seqs;
  while (pos < data.size()) {
    std::size_t len = 0;
    int shift = 0;
    while (true) {
      const auto b = static_cast<unsigned char>(data[pos++]);
      len |= static_cast<std::size_t>(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    ASSERT_LE(len, data.size() - pos);
    tidegate::v1::Batch batch;
    ASSERT_TRUE(batch.ParseFromString(data.substr(pos, len)));
    pos += len;
    EXPECT_EQ(batch.gateway_id(), "gw-7");
    for (const auto& r : batch.records()) seqs.push_back(r.seq());
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

TEST_F(FileSinkTest, APartialFileLeftByACrashIsCompletedAtStart) {
  std::filesystem::create_directories(dir_ / "out");
  std::ofstream(dir_ / "out" / "tidegate-20260101T000000Z-1.jsonl.partial") << "{\"seq\":1}\n";
  FileSink sink(options());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "out" / "tidegate-20260101T000000Z-1.jsonl"));
}

// After a crash that came before the cursor was stored, the next run sends
// the same records again from the same first sequence, often within the
// same second: its file must not replace the earlier one (which may hold
// more), complete or left partial by the crash.
TEST_F(FileSinkTest, ARunThatStartsAgainFromTheSameRecordNeverOverwritesAFile) {
  const auto out = dir_ / "out";
  {
    FileSink first(options());
    ASSERT_EQ(first.send(records(1, 5)).batch, forward::Outcome::kOk);  // 1..5, completed at its end
  }
  const auto first_file = files(out, ".jsonl").at(0);
  {
    FileSink crashed(options());
    ASSERT_EQ(crashed.send(records(1, 4)).batch, forward::Outcome::kOk);
    const auto partial = files(out, ".partial");
    ASSERT_EQ(partial.size(), 1u);
    std::filesystem::copy_file(partial[0], dir_ / "left-by-crash");
  }
  // As a kill -9 leaves it: the second run's file still partial.
  for (const auto& f : files(out, ".jsonl")) {
    if (f != first_file) {
      std::filesystem::rename(dir_ / "left-by-crash", f.string() + ".partial");
      std::filesystem::remove(f);
    }
  }
  ASSERT_EQ(files(out, ".partial").size(), 1u);
  {
    FileSink again(options());  // completes the partial file, then writes its own
    ASSERT_EQ(again.send(records(1, 2)).batch, forward::Outcome::kOk);
  }
  std::multiset<std::uint64_t> seqs;
  for (const auto& f : files(out, ".jsonl")) {
    for (const auto& l : lines(f)) seqs.insert(l["seq"].get<std::uint64_t>());
  }
  EXPECT_EQ(seqs, (std::multiset<std::uint64_t>{1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5}));
}

TEST_F(FileSinkTest, AFullDiskIsARetryAndLeavesOnlyWholeLines) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const auto out = dir_ / "out";
  std::filesystem::create_directories(out);
  if (::mount("tmpfs", out.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::filesystem::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{out};
  {
    std::ofstream(out / "filler") << std::string(16 << 10, 'F');
  }
  auto o = options();
  o.max_file_bytes = 1 << 20;
  FileSink sink(o);
  forward::SendResult r;
  std::uint64_t seq = 1;
  for (int i = 0; i < 100; ++i) {
    r = sink.send(records(seq, 20, std::string(300, 'x')));
    if (r.batch != forward::Outcome::kOk) break;
    seq += 20;
  }
  ASSERT_EQ(r.batch, forward::Outcome::kRetry);
  EXPECT_NE(r.error.find("No space left"), std::string::npos) << r.error;
  // Space returns: the same batch goes through, after only whole batches.
  std::filesystem::remove(out / "filler");
  ASSERT_EQ(sink.send(records(seq, 20, std::string(300, 'x'))).batch, forward::Outcome::kOk);
  sink.finish_file();
  std::uint64_t expect = 1;
  for (const auto& f : files(out, ".jsonl")) {
    for (const auto& j : lines(f)) ASSERT_EQ(j["seq"].get<std::uint64_t>(), expect++);  // parses: no torn line
  }
  EXPECT_EQ(expect, seq + 20);
}

TEST_F(FileSinkTest, BehindAForwarderEveryRecordLandsOnceInOrder) {
  buffer::BufferOptions bo;
  bo.path = dir_ / "buffer.db";
  bo.commit_window = std::chrono::milliseconds(1);
  auto buf = buffer::Buffer::open(bo);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(buf->append_wait(testing::make_records(50, "p")).ok());
  auto o = options();
  o.max_file_bytes = 20'000;
  forward::ForwarderOptions fo;
  fo.linger = std::chrono::milliseconds(2);
  fo.max_records = 100;  // several batches, so the size limit rotates between them
  {
    forward::Forwarder f(*buf, std::make_unique<FileSink>(o), fo, {});
    f.start();
    ASSERT_TRUE(testing::wait_for([&] { return buf->acked_seq("file") == 1000u; }));
  }
  std::vector<std::uint64_t> seqs;
  for (const auto& f : files(dir_ / "out", ".jsonl")) {
    for (const auto& j : lines(f)) seqs.push_back(j["seq"].get<std::uint64_t>());
  }
  ASSERT_EQ(seqs.size(), 1000u);
  for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1);
  EXPECT_GT(files(dir_ / "out", ".jsonl").size(), 1u);  // rotated
}

}  // namespace
}  // namespace tidegate::sinks
