// A real mosquitto broker for integration tests: its own config, port and
// persistence directory per test, started in the foreground and stopped by
// PID. Bound to 127.0.0.1 on a port chosen at run time.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tidegate::testing {

// A port the kernel had free a moment ago on 127.0.0.1.
inline std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool port_accepts(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

class Mosquitto {
 public:
  // `extra` is appended to the generated config; `prefix` runs mosquitto
  // under another program (bench_compare --callgrind: valgrind).
  explicit Mosquitto(std::filesystem::path dir, std::string extra = "", std::vector<std::string> prefix = {})
      : dir_(std::move(dir)), port_(free_loopback_port()), extra_(std::move(extra)), prefix_(std::move(prefix)) {
    std::filesystem::create_directories(dir_ / "data");
    start();
  }
  ~Mosquitto() { stop(); }
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

  void start() {
    if (pid_ > 0) return;
    const auto conf = dir_ / "mosquitto.conf";
    {
      std::ofstream f(conf);
      // As root, mosquitto switches to the "mosquitto" user unless told not
      // to, and then cannot write its persistence file here.
      if (::geteuid() == 0) f << "user root\n";
      f << "listener " << port_ << " 127.0.0.1\n"
        << "allow_anonymous true\n"
        << "persistence true\n"
        << "persistence_location " << (dir_ / "data").string() << "/\n"
        // Never drop queued messages for a slow or absent subscriber (the
        // default of 1000 silently does), and let many PUBACKs be pending.
        << "max_queued_messages 0\n"
        << "max_inflight_messages 0\n"
        << "log_dest file " << (dir_ / "mosquitto.log").string() << "\n"
        << extra_ << "\n";
    }
    const auto console = (dir_ / "mosquitto.out").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Die with the test: a test that aborts must not leave a broker behind
      // holding ctest's output pipe open (ctest would wait for ever).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int out = ::open(console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      std::vector<std::string> args = prefix_;
      for (const char* a : {"mosquitto", "-c"}) args.emplace_back(a);
      args.push_back(conf.string());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::_Exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(prefix_.empty() ? 10 : 60);
    while (!port_accepts(port_)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("mosquitto exited at start; see " + (dir_ / "mosquitto.log").string());
      }
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("mosquitto did not listen");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // SIGTERM: mosquitto writes its persistence file and exits.
  void stop() { signal_and_wait(SIGTERM); }
  // SIGKILL: whatever was not yet saved is gone.
  void kill() { signal_and_wait(SIGKILL); }
  void restart() {
    stop();
    start();
  }

 private:
  void signal_and_wait(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::filesystem::path dir_;
  std::uint16_t port_;
  std::string extra_;
  std::vector<std::string> prefix_;
  pid_t pid_ = -1;
};

}  // namespace tidegate::testing
