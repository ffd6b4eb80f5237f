// Disk-full tests on a real, small filesystem: a 4 MiB tmpfs mounted for the
// test. Needs root (CI runs as root); elsewhere the tests skip and say why,
// and BufferTest.SqliteFullFailsCleanlyAndKeepsWhatWasCommitted covers the
// SQLITE_FULL path through max_page_count.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "test_support.h"
#include "tidegate/buffer/buffer.h"

namespace tidegate::buffer {
namespace {

class SmallDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=4m,mode=0700") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  BufferOptions options() {
    BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.max_bytes = 0;
    o.log = log_.fn();
    return o;
  }
  void write_filler(std::size_t bytes) {
    std::ofstream f(dir_ / "filler", std::ios::binary);
    f << std::string(bytes, 'F');
    ASSERT_TRUE(f.good());
  }

  testing::TempDir dir_;
  testing::LogCapture log_;
  bool mounted_ = false;
};

TEST_F(SmallDiskTest, EnospcRefusesAppendsCleanlyAndTheyResumeWhenSpaceReturns) {
  write_filler(1 << 20);
  auto o = options();
  o.disk_reserve_bytes = 0;  // let it really hit ENOSPC
  auto b = Buffer::open(o);
  std::uint64_t committed = 0;
  std::uint64_t last_seq = 0;
  AppendOutcome outcome;
  for (int i = 0; i < 100000; ++i) {
    outcome = b->append_wait({testing::make_record(std::string(1000, 'x'))});
    if (!outcome.ok()) break;
    committed += 1;
    last_seq = outcome.last_seq();
  }
  ASSERT_EQ(outcome.status, Status::kDiskFull) << outcome.error;
  EXPECT_GT(committed, 100u);
  EXPECT_TRUE(log_.contains("disk-full"));
  EXPECT_EQ(b->stats().records, committed);
  EXPECT_GE(b->stats().disk_full_total, 1u);
  EXPECT_TRUE(b->verify(IntegrityCheck::kFull).ok);

  // Space returns: the same open buffer takes appends again, numbering on.
  std::filesystem::remove(dir_ / "filler");
  auto resumed = b->append_wait({testing::make_record("after")});
  ASSERT_TRUE(resumed.ok()) << resumed.error;
  EXPECT_EQ(resumed.first_seq, last_seq + 1);
  EXPECT_TRUE(log_.contains("appends accepted again"));
  b.reset();

  auto reopened = Buffer::open(options());
  EXPECT_FALSE(reopened->open_report().recovered);
  EXPECT_EQ(reopened->stats().records, committed + 1);
}

TEST_F(SmallDiskTest, ReserveStopsGrowthBeforeTheFilesystemIsFull) {
  auto o = options();
  o.disk_reserve_bytes = 2 << 20;  // of 4 MiB
  auto b = Buffer::open(o);
  for (int i = 0; i < 2000; ++i) {
    auto outcome = b->append_wait({testing::make_record(std::string(1000, 'y'))});
    ASSERT_TRUE(outcome.ok()) << "append " << i << ": " << outcome.error;
  }
  auto s = b->stats();
  EXPECT_TRUE(s.disk_reserve_reached);
  EXPECT_GT(s.evicted_total, 0u);
  EXPECT_EQ(s.disk_full_total, 0u);
  // The OS and the broker still have room to write.
  std::ofstream f(dir_ / "broker.db", std::ios::binary);
  f << std::string(512 << 10, 'b');
  EXPECT_TRUE(f.good());
  EXPECT_TRUE(log_.contains("below the reserve"));
}

}  // namespace
}  // namespace tidegate::buffer
