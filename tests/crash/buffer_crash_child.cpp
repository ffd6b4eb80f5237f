// Child process for the crash test: appends forever and reports each
// committed call on stdout as "<first_seq> <count> <run> <first_index>",
// written only from the commit callback, i.e. after the commit. The parent
// kills it with SIGKILL at random moments. With a third argument "ack", a
// second thread also forwards: reads, acks, and the buffer deletes what was
// acknowledged every few milliseconds, so kills land in those writes too.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "tidegate/buffer/buffer.h"

using namespace tidegate::buffer;

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s DB RUN [ack]\n", argv[0]);
    return 2;
  }
  const bool forward = argc == 4 && std::string(argv[3]) == "ack";
  const std::string run = argv[2];
  BufferOptions o;
  o.path = argv[1];
  o.commit_window = std::chrono::milliseconds(2);
  o.max_records = 0;  // no cap: nothing may be evicted in this test
  o.max_bytes = 0;
  o.disk_reserve_bytes = 0;
  o.log = [](LogLevel level, std::string_view msg) {
    std::fprintf(stderr, "child %s: %.*s\n", to_string(level), static_cast<int>(msg.size()), msg.data());
  };
  if (forward) {
    o.maintenance_interval = std::chrono::milliseconds(5);
    o.maintenance_after_records = 64;
    o.maintenance_chunk = 64;
  }
  auto buffer = Buffer::open(o);
  std::thread forwarder;
  if (forward) {
    if (buffer->ensure_sink("cloud", StartPosition::kEarliest) != Status::kOk) return 4;
    forwarder = std::thread([&buffer] {
      for (;;) {
        auto batch = buffer->read("cloud", 50, SIZE_MAX);
        if (batch.records.empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        if (buffer->ack("cloud", batch.records.back().seq) != Status::kOk) std::_Exit(5);
      }
    });
  }
  std::mt19937 rng(static_cast<unsigned>(std::stoul(run) * 7919u + 17u));
  std::uniform_int_distribution<int> batch_size(1, 40);
  for (std::uint64_t index = 0;;) {
    const int n = batch_size(rng);
    std::vector<NewRecord> records;
    for (int k = 0; k < n; ++k) {
      NewRecord r;
      r.source = "crash-child";
      r.partition_key = "dev-" + std::to_string((index + k) % 7);
      r.topic = "crash/" + run;
      r.payload = "run:" + run + ":i:" + std::to_string(index + k);
      records.push_back(std::move(r));
    }
    const std::uint64_t first_index = index;
    index += static_cast<std::uint64_t>(n);
    buffer->append(std::move(records), [run, first_index](const AppendOutcome& out) {
      if (!out.ok()) return;
      std::string line = std::to_string(out.first_seq) + " " + std::to_string(out.count) + " " + run + " " +
                         std::to_string(first_index) + "\n";
      // One write(2) per line: atomic on a pipe, so the parent never reads half.
      if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) std::_Exit(3);
    });
  }
}
