// One connection to a Modbus TCP server (a device, or a gateway with several
// unit ids behind it), shared by the devices configured on it. Requests go
// one at a time, in the order asked (many devices and serial gateways do
// not take a second request before answering the first). It connects when a
// request needs it and again after a failure; a timeout closes the
// connection, so an answer that comes late is never taken for the next
// request's. Runs on the io_context of the source that owns it.
#pragma once

#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>

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

struct LinkOptions {
  std::string host;
  std::uint16_t port = 502;
  std::chrono::milliseconds timeout{1000};          // per request, from its write
  std::chrono::milliseconds connect_timeout{3000};
};

class Link : public std::enable_shared_from_this<Link> {
 public:
  using Callback = std::function<void(const ReadOutcome&)>;

  Link(boost::asio::io_context& io, LinkOptions options);
  const LinkOptions& options() const { return options_; }
  std::string describe() const { return options_.host + ":" + std::to_string(options_.port); }

  // Queues a read; `done` runs on the io_context once it is answered or failed.
  void read(std::uint8_t unit, Table table, std::uint16_t address, std::uint16_t count, Callback done);
  void close();
  bool connected() const { return socket_.is_open() && connected_; }
  std::uint64_t reconnects() const { return connects_ > 0 ? connects_ - 1 : 0; }

 private:
  struct Request {
    std::uint8_t unit;
    Table table;
    std::uint16_t address, count;
    Callback done;
  };
  void next();
  void connect();
  void send();
  void read_header();
  void read_body(std::uint16_t length);
  void finish(ReadOutcome outcome, bool close_link);
  void arm(std::chrono::milliseconds timeout);

  boost::asio::io_context& io_;
  LinkOptions options_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  std::deque<Request> queue_;
  bool busy_ = false;
  bool connected_ = false;
  std::uint64_t connects_ = 0;
  std::uint16_t transaction_ = 0;
  std::uint64_t generation_ = 0;  // a completion of an earlier request is ignored
  std::string out_;
  std::string in_;
};

}  // namespace tidegate::drivers::modbus
