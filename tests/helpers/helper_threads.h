// For tests that run helper threads: a failure in one must end the test,
// not leave the main thread (or another helper) waiting until ctest's
// timeout.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

namespace tidegate::testing {

// Sets a flag however its scope is left. A failed ASSERT in a helper
// thread returns from the thread's function early; threads and loops that
// wait on the flag then end and the test fails, instead of hanging until
// ctest's timeout.
class SetOnExit {
 public:
  explicit SetOnExit(std::atomic<bool>& flag) : flag_(flag) {}
  ~SetOnExit() { flag_ = true; }
  SetOnExit(const SetOnExit&) = delete;
  SetOnExit& operator=(const SetOnExit&) = delete;

 private:
  std::atomic<bool>& flag_;
};

// A deadline for a helper thread's loop: expired() fails the test (once)
// when it has passed, so the loop can end.
class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds within) : at_(std::chrono::steady_clock::now() + within) {}
  bool expired(const char* what) {
    if (std::chrono::steady_clock::now() < at_) return false;
    if (!reported_.exchange(true)) ADD_FAILURE() << what << ": did not finish in time";
    return true;
  }

 private:
  std::chrono::steady_clock::time_point at_;
  std::atomic<bool> reported_{false};
};

}  // namespace tidegate::testing
