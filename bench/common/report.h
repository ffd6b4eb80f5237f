// What every benchmark's results file needs: formatting, the machine it ran
// on, the date, and writing the Markdown file. Header-only.
#pragma once

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

namespace tidegate::bench {

inline std::string shell(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// User plus system CPU time of this process so far, seconds.
inline double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// User plus system CPU time of another process so far, seconds: fields 14
// and 15 of /proc/PID/stat, counted after "pid (comm) " (comm may hold
// spaces). 0 when the process is gone.
inline double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A KiB field of /proc/PID/status ("VmRSS:", "VmHWM:"); 0 when absent.
inline std::uint64_t status_kib(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(std::strlen(field)));
  }
  return 0;
}

// Resident set size of this process now, KiB.
inline std::uint64_t rss_kib() { return status_kib(::getpid(), "VmRSS:"); }

inline std::string fmt(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

inline std::string today_utc() {
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  return date;
}

// "- machine: <cpu>, N cores, M GiB RAM\n- kernel: ...\n"
inline std::string machine_lines() {
  utsname u{};
  ::uname(&u);
  return "- machine: " + shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'") + ", " +
         std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " cores, " +
         shell("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo") + " RAM\n- kernel: " + u.sysname +
         " " + u.release + " " + u.machine + "\n";
}

// Prints `doc` and, with an output directory, writes it to
// DIR/<name>-<date>-<host>.md.
inline void publish_results(const std::string& name, const std::string& out_dir, const std::string& doc) {
  std::cout << doc;
  if (out_dir.empty()) return;
  utsname u{};
  ::uname(&u);
  std::filesystem::create_directories(out_dir);
  const auto file = std::filesystem::path(out_dir) / (name + "-" + today_utc() + "-" + u.nodename + ".md");
  std::ofstream(file) << doc;
  std::cout << "\nwritten to " << file.string() << "\n";
}

}  // namespace tidegate::bench
