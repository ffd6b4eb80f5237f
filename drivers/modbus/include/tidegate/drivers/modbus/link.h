// One connection to Modbus devices, shared by the devices configured on it:
// a Modbus TCP server (a device, or a gateway with several unit ids behind
// it), a serial server speaking RTU over TCP, or an RS-485 line (RTU on a
// serial port). Requests go one at a time, in the order asked (many devices
// and serial gateways do not take a second request before answering the
// first; on a serial line requests must never overlap), with the line's
// silent interval before each RTU frame. It connects (opens) when a request
// needs it and again after a failure; a timeout closes it, so an answer
// that comes late is never taken for the next request's. Runs on the
// io_context of the source that owns it.
#pragma once

#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "tidegate/drivers/modbus/protocol.h"

namespace tidegate::drivers::modbus {

struct ReadOutcome {
  enum class Kind {
    kOk,         // response holds the data
    kException,  // the device answered with an exception (response.exception)
    kTimeout,    // no (whole) answer in time
    kConnect,    // could not connect
    kIo,         // the connection broke
    kMalformed,  // an answer that is not Modbus (response.error)
  };
  Kind kind = Kind::kIo;
  ReadResponse response;
  std::string error;  // for the log: what happened, with the OS's words
};

enum class Transport { kTcp, kRtuOverTcp, kRtuSerial };

struct SerialOptions {
  unsigned baud = 9600;
  char parity = 'E';  // 'N', 'E', 'O' (Modbus over serial line: even by default)
  unsigned data_bits = 8;
  unsigned stop_bits = 1;
  // Silence before each frame; 0: 3.5 character times at `baud` (at least
  // 1.75 ms, as the specification sets above 19,200 baud).
  std::chrono::microseconds frame_gap{0};
};

struct LinkOptions {
  Transport transport = Transport::kTcp;
  std::string host;  // kTcp, kRtuOverTcp
  std::uint16_t port = 502;
  std::string device;  // kRtuSerial: /dev/ttyUSB0, /dev/ttyAMA0, ...
  SerialOptions serial;
  std::chrono::milliseconds connect_timeout{3000};
};

class Link : public std::enable_shared_from_this<Link> {
 public:
  using Callback = std::function<void(const ReadOutcome&)>;

  Link(boost::asio::io_context& io, LinkOptions options);
  const LinkOptions& options() const { return options_; }
  std::string describe() const;
  // Devices with the same key share one link.
  static std::string key(const LinkOptions& o);

  // Queues a read; `done` runs on the io_context once it is answered or
  // failed. `timeout` counts from the request's write.
  void read(std::uint8_t unit, Table table, std::uint16_t address, std::uint16_t count,
            std::chrono::milliseconds timeout, Callback done);
  void close();
  bool connected() const { return connected_; }
  // Any thread: connections made after the first (a device that power-cycled).
  std::uint64_t reconnects() const {
    const auto n = connects_.load();
    return n > 0 ? n - 1 : 0;
  }

 private:
  struct Request {
    std::uint8_t unit;
    Table table;
    std::uint16_t address, count;
    std::chrono::milliseconds timeout;
    Callback done;
  };
  void next();
  void connect();
  void send();
  void write_frame();
  void read_header();
  void read_body(std::uint16_t length);
  void read_rtu_head();
  void read_rtu_rest(std::size_t total);
  void answered(std::string_view pdu);
  bool open_serial(std::string& error);
  std::chrono::microseconds frame_gap() const;
  template <typename Buffers, typename Handler>
  void write(const Buffers& b, Handler&& h);
  template <typename Buffers, typename Handler>
  void read_exactly(const Buffers& b, Handler&& h);
  void finish(ReadOutcome outcome, bool close_link);
  void arm(std::chrono::milliseconds timeout, bool connecting);

  boost::asio::io_context& io_;
  LinkOptions options_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::serial_port serial_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer gap_;  // the silent interval before an RTU frame
  std::deque<Request> queue_;
  bool busy_ = false;
  bool connected_ = false;
  std::atomic<std::uint64_t> connects_{0};
  std::uint16_t transaction_ = 0;
  std::uint64_t generation_ = 0;  // a completion of an earlier request is ignored
  std::string out_;
  std::string in_;
};

}  // namespace tidegate::drivers::modbus
