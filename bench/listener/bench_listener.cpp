// bench/listener: QoS 1 readings/s acknowledged through tidegate's MQTT
// listener into the buffer, side by side in the same run with the same
// publisher through mosquitto (publisher -> mosquitto -> subscriber).
//
// The publisher is one load generator for both peers: Boost.Asio on one
// thread, N connections (MQTT 3.1.1, clean sessions), each keeping W QoS 1
// PUBLISHes of 100 bytes in flight. Peers run as their own processes:
// - mosquitto (the test helper's configuration) with mosquitto_sub -q 1
//   subscribed to everything; the clock stops when the publisher has every
//   PUBACK and the subscriber every message;
// - the tidegate binary with a [[sources.mqtt_listener]] and no sink; the
//   clock stops when the publisher has every PUBACK (each one means
//   "committed"); the buffer is counted afterwards.
// Also: CPU seconds of each peer's processes, their peak RSS, and the RSS of
// each peer with 1,000 idle clients connected.
//
//   bench_listener [--quick] [--out DIR] [--tidegate PATH]
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <thread>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>

#include "mosquitto.h"
#include "process.h"
#include "report.h"
#include "test_support.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/mqtt/codec.h"

using namespace tidegate;
using bench::cpu_seconds;
using bench::fmt;
using bench::status_kib;
using Steady = std::chrono::steady_clock;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using drivers::mqtt::PacketReader;
using drivers::mqtt::PacketType;
using drivers::mqtt::Version;

namespace {

// ---------------------------------------------------------------- load generator

struct LoadResult {
  std::uint64_t acked = 0;
  double seconds = 0;  // from the first PUBLISH (all clients connected) to the last PUBACK
  Steady::time_point started;
  std::string error;
};

class LoadGenerator {
 public:
  LoadGenerator(std::uint16_t port, int clients, std::uint64_t per_client, int window, bool idle = false)
      : port_(port), per_client_(per_client), window_(window), idle_(idle) {
    for (int i = 0; i < clients; ++i) clients_.push_back(std::make_unique<Client>(io_, i));
  }

  // Connects every client; then (unless idle) publishes until all is
  // acknowledged. Returns when done, or on the first error.
  LoadResult run(std::chrono::seconds limit) {
    for (auto& c : clients_) connect(*c);
    const auto connected_deadline = Steady::now() + std::chrono::seconds(30);
    while (connected_ < clients_.size() && error_.empty() && Steady::now() < connected_deadline) {
      io_.run_for(std::chrono::milliseconds(10));
    }
    if (connected_ < clients_.size() && error_.empty()) error_ = "not all clients connected";
    LoadResult r;
    if (!error_.empty() || idle_) {
      r.error = error_;
      return r;
    }
    const auto start = Steady::now();
    r.started = start;
    for (auto& c : clients_) pump(*c);
    const auto deadline = start + limit;
    while (acked_ < per_client_ * clients_.size() && error_.empty() && Steady::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(10));
    }
    r.seconds = std::chrono::duration<double>(Steady::now() - start).count();
    r.acked = acked_;
    r.error = error_.empty() && acked_ < per_client_ * clients_.size() ? "timed out" : error_;
    return r;
  }

  // Idle clients stay connected while the caller measures; PINGs are not
  // needed within the keep alive of 120 s.
  void hold(std::chrono::milliseconds d) { io_.run_for(d); }

 private:
  struct Client {
    Client(asio::io_context& io, int n) : socket(io), index(n) {}
    tcp::socket socket;
    int index;
    PacketReader reader;
    std::array<char, 8192> buf{};
    std::uint64_t sent = 0, acked = 0;
    std::uint16_t next_id = 1;
    int inflight = 0;
    std::string out;  // built while a write is in progress
    bool writing = false;
  };

  void fail(const std::string& what) {
    if (error_.empty()) error_ = what;
  }

  void connect(Client& c) {
    c.socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                           [this, &c](const boost::system::error_code& ec) {
                             if (ec) return fail("connect: " + ec.message());
                             c.socket.set_option(tcp::no_delay(true));
                             drivers::mqtt::ConnectOptions o;
                             o.version = Version::kV311;
                             o.client_id = "bench-" + std::to_string(c.index);
                             o.clean_start = true;
                             o.keepalive_s = 120;
                             c.out = drivers::mqtt::encode_connect(o);
                             flush(c);
                             read(c);
                           });
  }

  void pump(Client& c) {
    while (c.inflight < window_ && c.sent < per_client_) {
      std::string payload = std::to_string(c.index) + "-" + std::to_string(c.sent) + "-";
      payload.resize(100, 'x');
      c.out += drivers::mqtt::encode_publish(Version::kV311, "bench/d" + std::to_string(c.index % 64), payload, 1,
                                             c.next_id);
      c.next_id = static_cast<std::uint16_t>(c.next_id == 65535 ? 1 : c.next_id + 1);
      c.sent += 1;
      c.inflight += 1;
    }
    flush(c);
  }

  void flush(Client& c) {
    if (c.writing || c.out.empty()) return;
    c.writing = true;
    auto bytes = std::make_shared<std::string>(std::move(c.out));
    c.out.clear();
    asio::async_write(c.socket, asio::buffer(*bytes), [this, &c, bytes](const boost::system::error_code& ec, std::size_t) {
      c.writing = false;
      if (ec) return fail("write: " + ec.message());
      flush(c);
    });
  }

  void read(Client& c) {
    c.socket.async_read_some(asio::buffer(c.buf), [this, &c](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return fail("read: " + ec.message());
      c.reader.feed(c.buf.data(), n);
      try {
        while (auto p = c.reader.next()) {
          if (p->type == PacketType::kConnack) {
            const auto ack = drivers::mqtt::parse_connack(Version::kV311, *p);
            if (ack.reason != 0) return fail("refused: " + std::to_string(ack.reason));
            connected_ += 1;
          } else if (p->type == PacketType::kPuback) {
            c.acked += 1;
            c.inflight -= 1;
            acked_ += 1;
          }
        }
      } catch (const std::exception& e) {
        return fail(e.what());
      }
      if (!idle_ && connected_ == clients_.size()) pump(c);
      read(c);
    });
  }

  asio::io_context io_;
  std::uint16_t port_;
  std::uint64_t per_client_;
  int window_;
  bool idle_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::size_t connected_ = 0;
  std::uint64_t acked_ = 0;
  std::string error_;
};

// ---------------------------------------------------------------- peers

struct Row {
  std::string path;
  int clients = 0;
  int window = 0;
  std::uint64_t messages = 0;
  double rate = 0;
  double cpu = 0;
  std::uint64_t peak_rss_kib = 0;
  std::string note;
};

Row run_mosquitto(const std::filesystem::path& dir, int clients, std::uint64_t messages, int window) {
  Row row;
  row.path = "mosquitto -> mosquitto_sub";
  row.clients = clients;
  row.window = window;
  row.messages = messages;
  testing::Mosquitto broker(dir / "broker");
  const pid_t broker_pid = broker.pid();
  testing::Process sub({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-q", "1",
                        "-t", "bench/#", "-C", std::to_string(messages), "-i", "bench-sub"},
                       dir / "sub.out");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // subscribed
  const double cpu_before = cpu_seconds(broker_pid) + cpu_seconds(sub.pid());
  LoadGenerator load(broker.port(), clients, messages / static_cast<std::uint64_t>(clients), window);
  const auto result = load.run(std::chrono::seconds(300));
  const auto start = result.started;
  // mosquitto_sub exits after its count: it has every message then.
  bool delivered = false;
  double sub_cpu = 0;
  while (Steady::now() - start < std::chrono::seconds(300)) {
    sub_cpu = cpu_seconds(sub.pid());
    if (!sub.running()) {
      delivered = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  row.rate = static_cast<double>(result.acked) / std::max(seconds, result.seconds);
  row.cpu = cpu_seconds(broker_pid) + sub_cpu - cpu_before;
  row.peak_rss_kib = status_kib(broker_pid, "VmHWM:");
  if (!result.error.empty()) row.note = result.error;
  if (!delivered) row.note += " subscriber did not get every message";
  return row;
}

std::unique_ptr<testing::Process> start_tidegate(const std::string& binary, const std::filesystem::path& dir,
                                                 std::uint16_t port) {
  std::filesystem::remove_all(dir / "gw");
  std::filesystem::create_directories(dir / "gw");
  const auto config = dir / "gw" / "tidegate.toml";
  std::ofstream(config) << "[gateway]\nid = \"bench\"\nlog_level = \"info\"\n" << testing::kQuietDaemon
                        << "[buffer]\npath = \"" << (dir / "gw" / "buffer.db").string()
                        << "\"\nmax_bytes = \"1GiB\"\ndisk_reserve = 0\n"
                        << "[[sources.mqtt_listener]]\nlisten = \"127.0.0.1:" << port
                        << "\"\nmax_connections = 2000\nmax_connect_rate = 0\n";
  auto gw = std::make_unique<testing::Process>(std::vector<std::string>{binary, "run", "--config", config.string()},
                                               dir / "gw" / "gateway.log");
  for (int i = 0; i < 500 && !testing::port_accepts(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return gw;
}

std::uint64_t records_in(const std::filesystem::path& db) {
  buffer::BufferOptions o;
  o.path = db;
  o.read_only = true;
  o.integrity_check = buffer::IntegrityCheck::kNone;
  o.log = [](buffer::LogLevel, std::string_view) {};
  return buffer::Buffer::open(o)->stats().records;
}

Row run_tidegate(const std::string& binary, const std::filesystem::path& dir, int clients, std::uint64_t messages,
                 int window) {
  Row row;
  row.path = "tidegate listener -> buffer";
  row.clients = clients;
  row.window = window;
  row.messages = messages;
  const auto port = testing::free_loopback_port();
  auto gw = start_tidegate(binary, dir, port);
  const double cpu_before = cpu_seconds(gw->pid());
  LoadGenerator load(port, clients, messages / static_cast<std::uint64_t>(clients), window);
  const auto result = load.run(std::chrono::seconds(300));
  row.rate = static_cast<double>(result.acked) / result.seconds;
  row.cpu = cpu_seconds(gw->pid()) - cpu_before;
  row.peak_rss_kib = status_kib(gw->pid(), "VmHWM:");
  gw->signal_and_wait(SIGTERM);
  const auto stored = records_in(dir / "gw" / "buffer.db");
  if (!result.error.empty()) row.note = result.error;
  if (stored != result.acked) row.note += " buffer holds " + std::to_string(stored) + " of " + std::to_string(result.acked);
  return row;
}

// RSS of a peer with `clients` idle connections (after they connected).
std::pair<std::uint64_t, std::uint64_t> idle_rss(const std::string& binary, const std::filesystem::path& dir,
                                                 int clients) {
  std::uint64_t mosquitto_kib = 0, tidegate_kib = 0;
  {
    testing::Mosquitto broker(dir / "idle-broker");
    const pid_t pid = broker.pid();
    LoadGenerator idle(broker.port(), clients, 0, 0, true);
    idle.run(std::chrono::seconds(30));
    idle.hold(std::chrono::milliseconds(500));
    mosquitto_kib = status_kib(pid, "VmRSS:");
  }
  const auto port = testing::free_loopback_port();
  auto gw = start_tidegate(binary, dir, port);
  LoadGenerator idle(port, clients, 0, 0, true);
  const auto r = idle.run(std::chrono::seconds(30));
  if (!r.error.empty()) std::cerr << "idle clients: " << r.error << "\n";
  idle.hold(std::chrono::milliseconds(500));
  tidegate_kib = status_kib(gw->pid(), "VmRSS:");
  gw->signal_and_wait(SIGTERM);
  return {mosquitto_kib, tidegate_kib};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string out_dir;
  std::string binary = TIDEGATE_BINARY;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out_dir = argv[++i];
    } else if (!std::strcmp(argv[i], "--tidegate") && i + 1 < argc) {
      binary = argv[++i];
    } else {
      std::cerr << "usage: bench_listener [--quick] [--out DIR] [--tidegate PATH]\n";
      return 2;
    }
  }
  // A thousand clients, and the peers (children) inherit the limit.
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);

  testing::TempDir dir;
  const std::uint64_t messages = quick ? 20'000 : 200'000;
  struct Case {
    int clients;
    int window;
  };
  // One client with the window of a typical client library, and with one
  // that covers the commit window (the listener announces 1,024); fifty;
  // a thousand sensors with a few readings in flight each.
  const std::vector<Case> cases = {{1, 100}, {1, 1000}, {50, 20}, {1000, 5}};
  std::vector<Row> rows;
  for (const auto& c : cases) {
    rows.push_back(run_mosquitto(dir.path(), c.clients, messages, c.window));
    std::cerr << rows.back().path << " " << c.clients << " clients: " << fmt(rows.back().rate) << " msg/s "
              << rows.back().note << "\n";
    rows.push_back(run_tidegate(binary, dir.path(), c.clients, messages, c.window));
    std::cerr << rows.back().path << " " << c.clients << " clients: " << fmt(rows.back().rate) << " msg/s "
              << rows.back().note << "\n";
  }
  const auto [mosquitto_idle, tidegate_idle] = idle_rss(binary, dir.path(), 1000);

  std::ostringstream md;
  md << "# bench/listener results, " << bench::today_utc() << "\n\n"
     << bench::machine_lines() << "- " << bench::shell("mosquitto -h 2>/dev/null | head -1")
     << "; tidegate buffer crash-safe, 10 ms commit window (defaults)\n"
     << "- publisher: one load generator for both (Boost.Asio, MQTT 3.1.1, QoS 1, 100-byte payloads, W PUBLISHes "
        "in flight per client)\n"
     << "- command: `build/bench/listener/bench_listener" << (quick ? " --quick" : "") << " --out bench/results`\n\n"
     << "mosquitto: rate = messages / time until the publisher has every PUBACK and mosquitto_sub (QoS 1) every "
        "message; CPU = broker + subscriber. tidegate: rate = messages / time until the publisher has every PUBACK "
        "(each sent after the commit); CPU = the gateway process. Peak RSS = the broker's or the gateway's VmHWM.\n\n"
     << "| clients | W | path | messages | msg/s | ratio | CPU s | CPU µs/msg | peak RSS | note |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const double base = rows[i - i % 2].rate;
    md << "| " << r.clients << " | " << r.window << " | " << r.path << " | " << r.messages << " | " << fmt(r.rate)
       << " | " << (i % 2 ? fmt(r.rate / base, 2) : "1.00") << " | " << fmt(r.cpu, 2) << " | "
       << fmt(r.cpu * 1e6 / static_cast<double>(r.messages), 1) << " | " << fmt(static_cast<double>(r.peak_rss_kib) / 1024, 1)
       << " MiB | " << r.note << " |\n";
  }
  md << "\nIdle: 1,000 clients connected (MQTT 3.1.1, keep alive 120 s), RSS of the peer: mosquitto "
     << fmt(static_cast<double>(mosquitto_idle) / 1024, 1) << " MiB, tidegate "
     << fmt(static_cast<double>(tidegate_idle) / 1024, 1) << " MiB (target < 30 MiB).\n";
  std::cout << md.str();
  if (!out_dir.empty()) {
    const auto file = std::filesystem::path(out_dir) / ("listener-" + bench::today_utc() + "-" + bench::shell("hostname -s") + ".md");
    std::ofstream(file) << md.str();
    std::cerr << "wrote " << file << "\n";
  }
  return 0;
}
