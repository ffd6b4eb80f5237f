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
std::vector<Reported> run_and_kill(const std::string& db, int run, std::chrono::milliseconds delay) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    const std::string run_arg = std::to_string(run);
    ::execl(TIDEGATE_CRASH_CHILD, TIDEGATE_CRASH_CHILD, db.c_str(), run_arg.c_str(), nullptr);
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

TEST(BufferCrash, NothingReportedAsCommittedIsLostToSigkill) {
  testing::TempDir dir;
  const std::string db = (dir / "crash.db").string();
  std::mt19937 rng(20261125);
  std::uniform_int_distribution<int> delay_ms(0, 150);
  std::vector<Reported> reported;
  constexpr int kKills = 25;
  for (int run = 0; run < kKills; ++run) {
    auto got = run_and_kill(db, run, std::chrono::milliseconds(delay_ms(rng)));
    EXPECT_FALSE(got.empty()) << "run " << run;
    reported.insert(reported.end(), got.begin(), got.end());
  }

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

}  // namespace
}  // namespace tidegate::buffer
