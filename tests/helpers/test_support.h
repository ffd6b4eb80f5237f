// Shared test fixtures: temporary directories, a settable clock, a settable
// disk, and record builders. Header-only so each suite stays self-contained.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tidegate/buffer/buffer.h"

// Defined when built with AddressSanitizer (GCC names it with a macro, clang
// with a feature test): RSS is not meaningful there, its quarantine keeps
// freed memory.
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ADDRESS_SANITIZER
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ADDRESS_SANITIZER
#endif
#endif

namespace tidegate::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "tidegate-test-XXXXXX").string();
    if (!::mkdtemp(templ.data())) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

class FakeClock final : public buffer::Clock {
 public:
  explicit FakeClock(std::int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns) {}
  std::int64_t wall_ns() override { return now_.load(); }
  void advance(std::chrono::nanoseconds d) { now_ += d.count(); }
  void set(std::int64_t ns) { now_ = ns; }

 private:
  std::atomic<std::int64_t> now_;
};

class FakeDisk final : public buffer::DiskSpace {
 public:
  std::optional<std::uint64_t> available_bytes(const std::filesystem::path&) override {
    std::lock_guard lock(mu_);
    return available_;
  }
  void set(std::optional<std::uint64_t> bytes) {
    std::lock_guard lock(mu_);
    available_ = bytes;
  }

 private:
  std::mutex mu_;
  std::optional<std::uint64_t> available_ = std::uint64_t{1} << 40;
};

inline buffer::NewRecord make_record(const std::string& payload, const std::string& device = "dev-1") {
  buffer::NewRecord r;
  r.source = "test";
  r.partition_key = device;
  r.topic = "sensors/" + device + "/temp";
  r.payload = payload;
  r.content_type = "application/json";
  return r;
}

inline std::vector<buffer::NewRecord> make_records(int n, const std::string& prefix = "r") {
  std::vector<buffer::NewRecord> out;
  for (int i = 0; i < n; ++i) out.push_back(make_record(prefix + std::to_string(i)));
  return out;
}

// Polls `cond` until it holds or `timeout` passes; tests wait on conditions,
// never on fixed sleeps.
// Daemon configs in tests: no status page on the default port (0.0.0.0:8080
// would leave loopback and collide between tests) and no heartbeat records
// among the records a test counts. Tests of those features set their own.
// Replaces every occurrence of `from` in `text` (configurations adapted to a
// test's ports and directories).
inline void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// A buffer file as a second process sees it while a gateway writes it:
// read-only, no integrity check, quiet; nullptr while it cannot be opened yet.
inline std::unique_ptr<buffer::Buffer> open_beside(const std::filesystem::path& db) {
  buffer::BufferOptions o;
  o.path = db;
  o.read_only = true;
  o.integrity_check = buffer::IntegrityCheck::kNone;
  o.log = [](buffer::LogLevel, std::string_view) {};
  try {
    return buffer::Buffer::open(o);
  } catch (const buffer::BufferError&) {
    return nullptr;
  }
}

inline constexpr const char* kQuietDaemon = "[status]\nenabled = false\n[heartbeat]\ninterval = \"0s\"\n";

inline bool wait_for(const std::function<bool()>& cond,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

// Collects log lines so tests can assert on what an operator would read.
class LogCapture {
 public:
  buffer::LogFn fn() {
    return [this](buffer::LogLevel level, std::string_view msg) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(buffer::to_string(level)) + ": " + std::string(msg));
    };
  }
  bool contains(const std::string& needle) const {
    std::lock_guard lock(mu_);
    for (const auto& l : lines_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace tidegate::testing
