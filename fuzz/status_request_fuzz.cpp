// What reaches the status port is outside input: a browser, a scanner, a
// broken proxy. Each input is sent as it is over a real loopback connection
// to the real HttpServer (Beast's parser with the server's limits,
// keep-alive, pipelined requests) in front of the real status routes, and
// the connection is half-closed. Findings: a crash or sanitizer report; an
// answer that is not HTTP; a connection the server does not close after
// the client's end (it would hold one of the limited slots); an operation
// carried out for an input that does not hold the token.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "tidegate/status/collector.h"
#include "tidegate/status/http_server.h"
#include "tidegate/status/routes.h"

using namespace tidegate;

namespace {

constexpr std::string_view kToken = "fuzz-token";

// The server on its own io thread for the whole run, with a collector fed
// by figures that do not change and controls that only count their calls.
struct Server {
  boost::asio::io_context io;
  std::atomic<std::uint64_t> operations{0};
  std::unique_ptr<status::StatusCollector> collector;
  std::unique_ptr<status::HttpServer> server;
  std::thread thread;

  Server() {
    status::CollectorInputs in;
    in.gateway_id = "fuzz";
    in.version = "0";
    in.buffer_stats = [] {
      buffer::BufferStats s;
      s.records = 3;
      s.bytes = 300;
      return s;
    };
    in.sources = [] { return std::vector<drivers::SourceStats>(1); };
    in.sinks = [] { return std::vector<forward::ForwarderStats>(1); };
    in.cache_for = std::chrono::milliseconds(0);
    collector = std::make_unique<status::StatusCollector>(in);
    status::StatusControls c;
    auto op = [this] {
      operations += 1;
      return std::string();
    };
    c.pause_sink = [op](const std::string&) { return op(); };
    c.resume_sink = [op](const std::string&) { return op(); };
    c.forget_sink = [op](const std::string&) { return op(); };
    c.clear_dead_letters = [op](const buffer::DeadLetterSelection&) { return op(); };
    c.replay_dead_letters = [op](const buffer::DeadLetterSelection&, const std::string&) { return op(); };
    c.acknowledge_losses = [op] { return op(); };
    c.rewind_sink = [op](const std::string&, const forward::RewindTarget&) { return op(); };
    status::HttpServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.request_timeout = std::chrono::milliseconds(2'000);
    server = std::make_unique<status::HttpServer>(
        io, o, status::make_status_routes(*collector, std::move(c), std::string(kToken), nullptr), nullptr);
    thread = std::thread([this] { io.run(); });
  }
};

Server& the_server() {
  static Server* s = new Server();  // never destroyed: libFuzzer exits without unwinding
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Server& s = the_server();
  const std::uint64_t operations_before = s.operations.load();

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) __builtin_trap();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(s.server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) __builtin_trap();
  // Longer than the server's request timeout: a connection still open after
  // it is the server's fault, not a slow machine's.
  timeval tv{6, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // The server may answer and close before all is sent (a 400 on the first
  // line): a failed send is part of the game.
  // (EINTR: libFuzzer's timeout alarm interrupts a socket call that has a
  // timeout, SA_RESTART or not.)
  for (std::size_t sent = 0; sent < size;) {
    const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);

  std::string answer;
  char chunk[16384];
  bool closed = false;
  int error = 0;
  for (;;) {
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n == 0) {
      closed = true;
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {  // timed out, or reset by the server (also a close)
      error = errno;
      break;
    }
    answer.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!closed && error != ECONNRESET) {
    std::fprintf(stderr, "the server did not close the connection (%s)\n", std::strerror(error));
    __builtin_trap();
  }
  // An HTTP/1.0 request is answered in HTTP/1.0.
  if (!answer.empty() && answer.rfind("HTTP/1.1 ", 0) != 0 && answer.rfind("HTTP/1.0 ", 0) != 0) __builtin_trap();

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (s.operations.load() != operations_before && input.find(kToken) == std::string_view::npos) __builtin_trap();
  return 0;
}
