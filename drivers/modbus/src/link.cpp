#include "tidegate/drivers/modbus/link.h"

namespace tidegate::drivers::modbus {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Link::Link(asio::io_context& io, LinkOptions options)
    : io_(io), options_(std::move(options)), socket_(io), timer_(io) {}

void Link::read(std::uint8_t unit, Table table, std::uint16_t address, std::uint16_t count, Callback done) {
  queue_.push_back({unit, table, address, count, std::move(done)});
  if (!busy_) next();
}

void Link::close() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  connected_ = false;
}

void Link::arm(std::chrono::milliseconds timeout) {
  const auto gen = generation_;
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
    if (ec || gen != self->generation_) return;
    ReadOutcome o;
    o.kind = self->connected_ ? ReadOutcome::Kind::kTimeout : ReadOutcome::Kind::kConnect;
    o.error = self->connected_ ? "no answer within " + std::to_string(self->options_.timeout.count()) + " ms"
                               : "connecting timed out after " + std::to_string(self->options_.connect_timeout.count()) +
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

void Link::connect() {
  close();
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.host, ec);
  if (ec) {
    finish({ReadOutcome::Kind::kConnect, {}, "'" + options_.host + "' is not an IP address"}, true);
    return;
  }
  arm(options_.connect_timeout);
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
  ++transaction_;
  out_ = tcp_frame(transaction_, r.unit, read_request_pdu(r.table, r.address, r.count));
  arm(options_.timeout);
  const auto gen = generation_;
  asio::async_write(socket_, asio::buffer(out_),
                    [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
                      if (gen != self->generation_) return;
                      if (error) {
                        self->finish({ReadOutcome::Kind::kIo, {}, "sending: " + error.message()}, true);
                        return;
                      }
                      self->read_header();
                    });
}

void Link::read_header() {
  in_.resize(kMbapHeaderBytes);
  const auto gen = generation_;
  asio::async_read(socket_, asio::buffer(in_),
                   [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
                     if (gen != self->generation_) return;
                     if (error) {
                       self->finish({ReadOutcome::Kind::kIo, {},
                                     error == asio::error::eof ? "the device closed the connection"
                                                               : "receiving: " + error.message()},
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
                                         std::to_string(header->unit) + ", asked " +
                                         std::to_string(self->transaction_) + " of unit " +
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
  asio::async_read(socket_, asio::buffer(in_),
                   [self = shared_from_this(), gen](const boost::system::error_code& error, std::size_t) {
                     if (gen != self->generation_) return;
                     if (error) {
                       self->finish({ReadOutcome::Kind::kIo, {}, "receiving: " + error.message()}, true);
                       return;
                     }
                     const Request& r = self->queue_.front();
                     ReadOutcome o;
                     o.response = parse_read_response(r.table, r.count, self->in_);
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
                     self->finish(std::move(o), o.kind == ReadOutcome::Kind::kMalformed);
                   });
}

void Link::finish(ReadOutcome outcome, bool close_link) {
  ++generation_;  // whatever of this request is still pending is ignored
  timer_.cancel();
  if (close_link) close();
  auto done = std::move(queue_.front().done);
  queue_.pop_front();
  // Next request first: the callback may queue more.
  asio::post(io_, [self = shared_from_this()] { self->next(); });
  done(outcome);
}

}  // namespace tidegate::drivers::modbus
