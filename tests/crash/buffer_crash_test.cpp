// Crash test: a child process appends in a loop and reports every committed
// call on a pipe; the parent SIGKILLs it at random moments, again and again.
// After the last kill, every reported record must be in the buffer, intact,
// in order, and the database must pass its full integrity check.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "test_support.h"
#include "tidegate/buffer/buffer.h"

namespace tidegate::buffer {
namespace {

struct Reported {
  std::uint64_t first_seq;
  std::uint64_t count;
  int run;
  std::uint64_t first_index;
};

// Runs the child, kills it `delay` after its first report, returns what it
// reported before dying.
std::vector<Reported> run_and_kill(const std::string& db, int run, std::chrono::milliseconds delay,
                                   const char* mode = nullptr) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    const std::string run_arg = std::to_string(run);
    ::execl(TIDEGATE_CRASH_CHILD, TIDEGATE_CRASH_CHILD, db.c_str(), run_arg.c_str(), mode, nullptr);
    std::_Exit(127);
  }
  ::close(fds[1]);
  std::string data;
  char buf[4096];
  bool killed = false;
  std::chrono::steady_clock::time_point kill_at{};
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    if (!killed && kill_at != std::chrono::steady_clock::time_point{} && std::chrono::steady_clock::now() >= kill_at) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (!killed && std::chrono::steady_clock::now() > give_up) {
      ::kill(pid, SIGKILL);
      killed = true;
      ADD_FAILURE() << "child reported nothing within 30 s";
    }
    // Poll so the kill happens on time even while the child is quiet.
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fds[0], &set);
    timeval tv{0, 1000};
    if (::select(fds[0] + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child is gone
    data.append(buf, static_cast<std::size_t>(n));
    if (kill_at == std::chrono::steady_clock::time_point{}) kill_at = std::chrono::steady_clock::now() + delay;
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited on its own: " << status;

  std::vector<Reported> out;
  std::istringstream lines(data);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    Reported r{};
    if (f >> r.first_seq >> r.count >> r.run >> r.first_index) out.push_back(r);
  }
  return out;
}

// `kills` runs of the child on one file, each killed at a random moment
// (fixed seed); everything they reported, in order.
std::vector<Reported> kill_repeatedly(const std::string& db, int kills, unsigned seed, const char* mode = nullptr) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 150);
  std::vector<Reported> reported;
  for (int run = 0; run < kills; ++run) {
    auto got = run_and_kill(db, run, std::chrono::milliseconds(delay_ms(rng)), mode);
    EXPECT_FALSE(got.empty()) << "run " << run;
    reported.insert(reported.end(), got.begin(), got.end());
  }
  return reported;
}

TEST(BufferCrash, NothingReportedAsCommittedIsLostToSigkill) {
  testing::TempDir dir;
  const std::string db = (dir / "crash.db").string();
  constexpr int kKills = 25;
  const auto reported = kill_repeatedly(db, kKills, 20261125);

  BufferOptions o;
  o.path = db;
  o.integrity_check = IntegrityCheck::kFull;
  auto buffer = Buffer::open(o);
  ASSERT_FALSE(buffer->open_report().recovered) << buffer->open_report().problem;
  EXPECT_TRUE(buffer->verify(IntegrityCheck::kFull).ok);

  std::map<std::uint64_t, Record> stored;
  for (std::uint64_t after = 0;;) {
    auto batch = buffer->read_after(after, 10'000, SIZE_MAX);
    ASSERT_EQ(batch.status, Status::kOk);
    if (batch.records.empty()) break;
    for (auto& r : batch.records) {
      ASSERT_GT(r.seq, after) << "sequence order broken";
      after = r.seq;
      stored.emplace(r.seq, std::move(r));
    }
  }
  std::uint64_t checked = 0;
  for (const auto& rep : reported) {
    for (std::uint64_t k = 0; k < rep.count; ++k) {
      auto it = stored.find(rep.first_seq + k);
      ASSERT_NE(it, stored.end()) << "reported seq " << rep.first_seq + k << " missing";
      ASSERT_EQ(it->second.payload,
                "run:" + std::to_string(rep.run) + ":i:" + std::to_string(rep.first_index + k));
      ++checked;
    }
  }
  // Later runs continue the numbering: a run's first seq is above everything
  // reported by earlier runs.
  int prev_run = -1;
  std::uint64_t prev_max = 0;
  std::uint64_t run_max = 0;
  for (const auto& rep : reported) {
    if (rep.run != prev_run) {
      EXPECT_GT(rep.first_seq, std::max(prev_max, run_max));
      prev_max = std::max(prev_max, run_max);
      prev_run = rep.run;
    }
    run_max = std::max(run_max, rep.first_seq + rep.count - 1);
  }
  std::printf("crash test: %d kills, %llu reported records all present, %zu stored\n", kKills,
              static_cast<unsigned long long>(checked), stored.size());
}

// The same kills while a forwarder acknowledges and the buffer deletes what it
// acknowledged (cursor and counters written by the deleting transaction,
// appends leaving them to the newest row): nothing undelivered is lost, the
// byte count matches what is stored, and numbering continues.
TEST(BufferCrash, KillsDuringAcksAndDeletionsLoseNothingUndelivered) {
  testing::TempDir dir;
  const std::string db = (dir / "crash-ack.db").string();
  constexpr int kKills = 15;
  const auto reported = kill_repeatedly(db, kKills, 20261206, "ack");
  BufferOptions o;
  o.path = db;
  o.integrity_check = IntegrityCheck::kFull;
  auto buffer = Buffer::open(o);
  ASSERT_FALSE(buffer->open_report().recovered) << buffer->open_report().problem;
  const auto cursor = buffer->acked_seq("cloud");
  ASSERT_TRUE(cursor.has_value());
  std::map<std::uint64_t, Record> stored;
  std::uint64_t bytes = 0;
  for (std::uint64_t after = 0;;) {
    auto batch = buffer->read_after(after, 10'000, SIZE_MAX);
    ASSERT_EQ(batch.status, Status::kOk);
    if (batch.records.empty()) break;
    for (auto& r : batch.records) {
      after = r.seq;
      bytes += accounted_size(r);
      stored.emplace(r.seq, std::move(r));
    }
  }
  std::uint64_t undelivered = 0;
  std::uint64_t highest = 0;
  for (const auto& rep : reported) {
    highest = std::max(highest, rep.first_seq + rep.count - 1);
    for (std::uint64_t k = 0; k < rep.count; ++k) {
      const auto seq = rep.first_seq + k;
      if (seq <= *cursor) continue;  // delivered (and maybe deleted)
      auto it = stored.find(seq);
      ASSERT_NE(it, stored.end()) << "undelivered seq " << seq << " missing (cursor " << *cursor << ")";
      ASSERT_EQ(it->second.payload, "run:" + std::to_string(rep.run) + ":i:" + std::to_string(rep.first_index + k));
      ++undelivered;
    }
  }
  const auto s = buffer->stats();
  EXPECT_EQ(s.bytes, bytes);
  EXPECT_EQ(s.records, stored.size());
  EXPECT_GT(s.next_seq, highest);
  EXPECT_GT(*cursor, 0u) << "the forwarder never got an ack into the file";
  std::printf("crash test with acks: %d kills, cursor at %llu, %llu undelivered reported records all present\n", kKills,
              static_cast<unsigned long long>(*cursor), static_cast<unsigned long long>(undelivered));
}

}  // namespace
}  // namespace tidegate::buffer
