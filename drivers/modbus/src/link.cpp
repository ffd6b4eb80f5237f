#include "tidegate/drivers/modbus/link.h"

#include <algorithm>

namespace tidegate::drivers::modbus {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Link::Link(asio::io_context& io, LinkOptions options)
    : io_(io), options_(std::move(options)), socket_(io), serial_(io), timer_(io), gap_(io) {}

std::string Link::describe() const {
  switch (options_.transport) {
    case Transport::kTcp: return options_.host + ":" + std::to_string(options_.port);
    case Transport::kRtuOverTcp: return "RTU over " + options_.host + ":" + std::to_string(options_.port);
    case Transport::kRtuSerial: return "RTU on " + options_.device;
  }
  return "?";
}

std::string Link::key(const LinkOptions& o) {
  if (o.transport == Transport::kRtuSerial) return "rtu:" + o.device;
  return (o.transport == Transport::kTcp ? "tcp:" : "rtu+tcp:") + o.host + ":" + std::to_string(o.port);
}

std::chrono::microseconds Link::frame_gap() const {
  if (options_.serial.frame_gap.count() > 0) return options_.serial.frame_gap;
  // 3.5 characters of 11 bits (start, 8 data, parity or second stop, stop).
  const auto micros = static_cast<std::int64_t>(3.5 * 11 * 1e6 / std::max(1u, options_.serial.baud));
  return std::chrono::microseconds(std::max<std::int64_t>(micros, 1750));
}

template <typename Buffers, typename Handler>
void Link::write(const Buffers& b, Handler&& h) {
  if (options_.transport == Transport::kRtuSerial) {
    asio::async_write(serial_, b, std::forward<Handler>(h));
  } else {
    asio::async_write(socket_, b, std::forward<Handler>(h));
  }
}

template <typename Buffers, typename Handler>
void Link::read_exactly(const Buffers& b, Handler&& h) {
  if (options_.transport == Transport::kRtuSerial) {
    asio::async_read(serial_, b, std::forward<Handler>(h));
  } else {
    asio::async_read(socket_, b, std::forward<Handler>(h));
  }
}

void Link::read(std::uint8_t unit, Table table, std::uint16_t address, std::uint16_t count,
                std::chrono::milliseconds timeout, Callback done) {
  queue_.push_back({unit, table, address, count, timeout, std::move(done)});
  if (!busy_) next();
}

void Link::close() {
  boost::system::error_code ignored;
  if (socket_.is_open()) {
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
  if (serial_.is_open()) serial_.close(ignored);
  connected_ = false;
}

void Link::arm(std::chrono::milliseconds timeout, bool connecting) {
  const auto gen = generation_;
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this(), gen, timeout, connecting](const boost::system::error_code& ec) {
    if (ec || gen != self->generation_) return;
    ReadOutcome o;
    o.kind = connecting ? ReadOutcome::Kind::kConnect : ReadOutcome::Kind::kTimeout;
    o.error = (connecting ? "connecting timed out after " : "no answer within ") + std::to_string(timeout.count()) +
              " ms";
    self->finish(std::move(o), true);
  });
}

void Link::next() {
  if (queue_.empty()) {
    busy_ = false;
    return;
  }
  busy_ = true;
  ++generation_;
  if (connected()) {
    send();
  } else {
    connect();
  }
}

bool Link::open_serial(std::string& error) {
  boost::system::error_code ec;
  serial_.open(options_.device, ec);
  if (ec) {
    error = "cannot open " + options_.device + ": " + ec.message();
    return false;
  }
  using sp = asio::serial_port_base;
  const auto parity = options_.serial.parity == 'E'   ? sp::parity::even
                      : options_.serial.parity == 'O' ? sp::parity::odd
                                                      : sp::parity::none;
  serial_.set_option(sp::baud_rate(options_.serial.baud), ec);
  if (!ec) serial_.set_option(sp::parity(parity), ec);
  if (!ec) serial_.set_option(sp::character_size(options_.serial.data_bits), ec);
  if (!ec) serial_.set_option(sp::stop_bits(options_.serial.stop_bits == 2 ? sp::stop_bits::two : sp::stop_bits::one), ec);
  if (!ec) serial_.set_option(sp::flow_control(sp::flow_control::none), ec);
  if (ec) {
    error = "cannot set up " + options_.device + ": " + ec.message();
    serial_.close(ec);
    return false;
  }
  return true;
}

void Link::connect() {
  close();
  if (options_.transport == Transport::kRtuSerial) {
    std::string error;
    if (!open_serial(error)) {
      finish({ReadOutcome::Kind::kConnect, {}, error}, true);
      return;
    }
    connected_ = true;
    connects_ += 1;
    send();
    return;
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.host, ec);
  if (ec) {
    finish({ReadOutcome::Kind::kConnect, {}, "'" + options_.host + "' is not an IP address"}, true);
    return;
  }
  arm(options_.connect_timeout, true);
  const auto gen = generation_;
  socket_.async_connect(tcp::endpoint(address, options_.port),
                        [self = shared_from_this(), gen](const boost::system::error_code& error) {
                          if (gen != self->generation_) return;
                          if (error) {
                            self->finish({ReadOutcome::Kind::kConnect, {}, "cannot connect: " + error.message()}, true);
                            return;
                          }
                          boost::system::error_code ignored;
                          self->socket_.set_option(tcp::no_delay(true), ignored);
                          self->connected_ = true;
                          self->connects_ += 1;
                          self->send();
                        });
}

void Link::send() {
  const Request& r = queue_.front();
  const std::string pdu = read_request_pdu(r.table, r.address, r.count);
  if (options_.transport == Transport::kTcp) {
    ++transaction_;
    out_ = tcp_frame(transaction_, r.unit, pdu);
    write_frame();
    return;
  }
  out_ = rtu_frame(r.unit, pdu);
  // RTU frames are delimited by silence: wait it out before each one.
  gap_.expires_after(frame_gap());
  const auto gen = generation_;
  gap_.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
    if (ec || gen != self->generation_) return;
    self->write_frame();
  });
}

void Link::write_frame() {
  arm(queue_.front().timeout, false);
  const auto gen = generation_;
  write(asio::buffer(out_), [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
    if (gen != self->generation_) return;
    if (error) {
      self->finish({ReadOutcome::Kind::kIo, {}, "sending: " + error.message()}, true);
      return;
    }
    if (self->options_.transport == Transport::kTcp) {
      self->read_header();
    } else {
      self->read_rtu_head();
    }
  });
}

void Link::read_header() {
  in_.resize(kMbapHeaderBytes);
  const auto gen = generation_;
  read_exactly(asio::buffer(in_), [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
    if (gen != self->generation_) return;
    if (error) {
      self->finish({ReadOutcome::Kind::kIo, {},
                    error == asio::error::eof ? "the device closed the connection" : "receiving: " + error.message()},
                   true);
      return;
    }
    std::string why;
    const auto header = parse_mbap_header(self->in_, why);
    if (!header) {
      self->finish({ReadOutcome::Kind::kMalformed, {}, why}, true);
      return;
    }
    if (header->transaction != self->transaction_ || header->unit != self->queue_.front().unit) {
      self->finish({ReadOutcome::Kind::kMalformed, {},
                    "answer to transaction " + std::to_string(header->transaction) + " of unit " +
                        std::to_string(header->unit) + ", asked " + std::to_string(self->transaction_) + " of unit " +
                        std::to_string(self->queue_.front().unit)},
                   true);
      return;
    }
    self->read_body(static_cast<std::uint16_t>(header->length - 1));
  });
}

void Link::read_body(std::uint16_t length) {
  in_.resize(length);
  const auto gen = generation_;
  read_exactly(asio::buffer(in_), [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
    if (gen != self->generation_) return;
    if (error) {
      self->finish({ReadOutcome::Kind::kIo, {}, "receiving: " + error.message()}, true);
      return;
    }
    self->answered(self->in_);
  });
}

// RTU: unit, function, and the byte count (or the exception code) say how
// long the frame is.
void Link::read_rtu_head() {
  in_.resize(3);
  const auto gen = generation_;
  read_exactly(asio::buffer(in_), [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
    if (gen != self->generation_) return;
    if (error) {
      self->finish({ReadOutcome::Kind::kIo, {}, "receiving: " + error.message()}, true);
      return;
    }
    self->read_rtu_rest(rtu_response_length(self->in_));
  });
}

void Link::read_rtu_rest(std::size_t total) {
  const std::size_t have = in_.size();
  in_.resize(total);
  const auto gen = generation_;
  read_exactly(asio::buffer(in_.data() + have, total - have),
               [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
                 if (gen != self->generation_) return;
                 if (error) {
                   self->finish({ReadOutcome::Kind::kIo, {}, "receiving: " + error.message()}, true);
                   return;
                 }
                 std::string why;
                 const auto pdu = rtu_pdu(self->in_, self->queue_.front().unit, why);
                 if (!pdu) {
                   self->finish({ReadOutcome::Kind::kMalformed, {}, why}, true);
                   return;
                 }
                 self->answered(*pdu);
               });
}

void Link::answered(std::string_view pdu) {
  const Request& r = queue_.front();
  ReadOutcome o;
  o.response = parse_read_response(r.table, r.count, pdu);
  switch (o.response.kind) {
    case ReadResponse::Kind::kData: o.kind = ReadOutcome::Kind::kOk; break;
    case ReadResponse::Kind::kException:
      o.kind = ReadOutcome::Kind::kException;
      o.error = exception_text(o.response.exception);
      break;
    case ReadResponse::Kind::kMalformed:
      o.kind = ReadOutcome::Kind::kMalformed;
      o.error = o.response.error;
      break;
  }
  const bool broken = o.kind == ReadOutcome::Kind::kMalformed;
  finish(std::move(o), broken);
}

void Link::finish(ReadOutcome outcome, bool close_link) {
  ++generation_;  // whatever of this request is still pending is ignored
  timer_.cancel();
  gap_.cancel();
  if (close_link) close();
  auto done = std::move(queue_.front().done);
  queue_.pop_front();
  // Next request first: the callback may queue more.
  asio::post(io_, [self = shared_from_this()] { self->next(); });
  done(outcome);
}

}  // namespace tidegate::drivers::modbus
