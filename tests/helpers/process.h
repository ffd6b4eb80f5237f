// A child process for integration tests: started with fork/exec, output to
// a file, stopped with a signal of the test's choosing.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tidegate::testing {

// A whole file as text (empty if it cannot be read).
inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// How many gateway runs a log (appended to by each run) shows up and
// running: kill tests start their timer once the run is up, so a slow
// start (sanitizers, a loaded machine) still gets killed while it ingests.
inline std::size_t runs_started(const std::filesystem::path& log) {
  const auto text = read_text(log);
  std::size_t n = 0;
  for (auto at = text.find("running with"); at != std::string::npos; at = text.find("running with", at + 1))
    ++n;
  return n;
}

// What a shell command prints on stdout (popen), for running the CLI as an
// operator would.
inline std::string capture(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

class Process {
 public:
  Process(std::vector<std::string> argv, std::filesystem::path output) : output_(std::move(output)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      const int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0) signal_and_wait(SIGKILL);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void signal(int sig) { ::kill(pid_, sig); }
  // Sends `sig` and returns the exit status as waitpid reports it.
  int signal_and_wait(int sig) {
    ::kill(pid_, sig);
    return wait();
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    return true;
  }
  int exit_status() const { return exit_status_; }
  pid_t pid() const { return pid_; }
  // Resident set size now, KiB (0 once it has exited).
  std::uint64_t rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    }
    return 0;
  }
  std::string output() const { return read_text(output_); }

 private:
  std::filesystem::path output_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
};

}  // namespace tidegate::testing
