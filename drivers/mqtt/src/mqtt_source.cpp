#include "tidegate/drivers/mqtt/mqtt_source.h"

#include <array>
#include <atomic>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "client_connect.h"
#include "client_tls.h"
#include "stream.h"
#include "tidegate/drivers/error_boundary.h"
#include "tidegate/drivers/ingest_support.h"

namespace tidegate::drivers::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using buffer::LogLevel;

class MqttSource::Impl : public std::enable_shared_from_this<MqttSource::Impl> {
 public:
  Impl(MqttSourceOptions options, buffer::Buffer& buffer, buffer::LogFn log)
      : opts_(std::move(options)),
        buffer_(buffer),
        log_(std::move(log)),
        resolver_(io_),
        timer_(io_),
        keepalive_timer_(io_),
        backoff_(opts_.reconnect_min, opts_.reconnect_max),
        mapper_(opts_.mapping) {
    if (opts_.client_id.empty()) opts_.client_id = "tidegate-" + opts_.name;
    if (opts_.tls.enabled) setup_tls();
  }

  void start() {
    work_.emplace(asio::make_work_guard(io_));
    thread_ = std::thread([this] {
      drivers::run_guarded([this] { io_.run(); }, [this](const std::string& what) { on_exception(what); },
                           [] { return false; }, std::chrono::milliseconds(0));
    });
    asio::post(io_, [this] { connect(); });
  }

  void stop() {
    if (!thread_.joinable()) return;
    // 1. Stop taking input. 2. Wait until what was taken in is committed
    // (its callbacks post the PUBACKs). 3. Send them, DISCONNECT, close.
    std::promise<void> stopped_reading;
    asio::post(io_, [&] {
      stopping_ = true;
      timer_.cancel();
      stopped_reading.set_value();
    });
    stopped_reading.get_future().wait();
    buffer_.flush();
    std::promise<void> closed;
    asio::post(io_, [&] {
      if (state_ == State::kConnected) queue_write(encode_disconnect(opts_.version));
      close_after_writes_ = true;
      if (!writing_) close_connection();
      closed_promise_ = &closed;
      if (!stream_) notify_closed();
    });
    if (closed.get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      log(LogLevel::kWarning, "DISCONNECT not written within 5 s; closing anyway");
    }
    work_.reset();
    io_.stop();
    thread_.join();
    set_state(State::kStopped);
  }

  void pause() {
    asio::post(io_, [this] { paused_ = true; });
  }
  void resume() {
    asio::post(io_, [this] {
      if (!paused_) return;
      paused_ = false;
      if (state_ == State::kConnected && !reading_) read();
    });
  }

  MqttSourceStats stats() const {
    MqttSourceStats s;
    s.common.name = opts_.name;
    s.common.connected = state_.load() == State::kConnected;
    s.common.received_total = received_.load();
    s.common.received_bytes_total = received_bytes_.load();
    s.common.committed_total = committed_.load();
    s.common.dead_lettered_total = dead_lettered_.load();
    s.common.errors_total = errors_.load();
    s.common.last_message_ns = last_message_ns_.load();
    {
      std::lock_guard lock(error_mu_);
      s.common.last_error = last_error_;
    }
    s.state = state_name(state_.load());
    s.connects_total = connects_.load();
    s.reconnects_total = connects_.load() > 0 ? connects_.load() - 1 : 0;
    s.redelivered_total = redelivered_.load();
    s.refused_total = refused_.load();
    s.qos0_lost_total = qos0_lost_.load();
    s.protocol_errors_total = protocol_errors_.load();
    s.session_present = session_present_.load();
    s.subscribed = subscribed_.load();
    s.exceptions_total = exceptions_.load();
    return s;
  }

  const MqttSourceOptions& options() const { return opts_; }

 private:
  enum class State { kDisconnected, kConnecting, kConnected, kStopped };

  static const char* state_name(State s) {
    switch (s) {
      case State::kDisconnected: return "disconnected";
      case State::kConnecting: return "connecting";
      case State::kConnected: return "connected";
      case State::kStopped: return "stopped";
    }
    return "?";
  }

  void log(LogLevel level, const std::string& message) {
    if (log_) log_(level, "mqtt source '" + opts_.name + "': " + message);
  }

  void note_error(const std::string& message) {
    errors_ += 1;
    {
      std::lock_guard lock(error_mu_);
      last_error_ = message;
    }
  }

  void set_state(State s) { state_ = s; }

  void setup_tls() { tls_ctx_.emplace(make_client_tls_context(opts_.tls)); }

  // ---------------------------------------------------------- connecting

  void connect() {
    if (stopping_) return;
    set_state(State::kConnecting);
    generation_ += 1;
    stream_ = std::make_shared<Stream>(io_, tls_ctx_ ? &*tls_ctx_ : nullptr);
    stream_->read_buf.resize(64 * 1024);
    reader_ = PacketReader();
    write_queue_.clear();
    writing_ = false;
    reading_ = false;
    subscribed_ = false;
    const auto gen = generation_;
    timer_.expires_after(opts_.connect_timeout);
    timer_.async_wait([this, gen](boost::system::error_code ec) {
      if (!ec && gen == generation_ && state_ == State::kConnecting) fail("no CONNACK within the connect timeout");
    });
    if (tls_ctx_ && opts_.tls.insecure_skip_verify) {
      log(LogLevel::kWarning, "TLS certificate verification is OFF (tls.insecure_skip_verify): anyone on the path "
                              "can impersonate the broker");
    }
    open_client_stream(
        resolver_, stream_, opts_.host, opts_.port, [this, gen] { return gen == generation_; },
        [this](const std::string& error) { return error.empty() ? send_connect() : fail(error); });
  }

  void send_connect() {
    ConnectOptions c;
    c.version = opts_.version;
    c.client_id = opts_.client_id;
    c.clean_start = false;
    c.keepalive_s = opts_.keepalive_s;
    c.session_expiry_s = opts_.session_expiry_s;
    c.receive_maximum = opts_.receive_maximum;
    c.username = opts_.username;
    c.password = opts_.password;
    queue_write(encode_connect(c));
    read();
  }

  void on_connack(const Connack& ack) {
    if (ack.reason != 0) {
      return fail(connack_refusal_text(opts_.version, ack));
    }
    timer_.cancel();
    set_state(State::kConnected);
    connects_ += 1;
    session_present_ = ack.session_present;
    backoff_.reset();
    keepalive_s_ = ack.server_keepalive.value_or(opts_.keepalive_s);
    log(LogLevel::kInfo, "connected to " + opts_.host + ":" + std::to_string(opts_.port) + " as '" +
                             opts_.client_id + "' (MQTT " + (opts_.version == Version::kV5 ? "5" : "3.1.1") +
                             ", session " + (ack.session_present ? "resumed" : "new") + ")");
    if (opts_.version == Version::kV311) {
      log(LogLevel::kInfo, "MQTT 3.1.1: the broker's max_inflight_messages limits throughput while PUBACKs wait "
                           "for commits; MQTT 5 avoids that");
    }
    if (!opts_.subscriptions.empty()) queue_write(encode_subscribe(opts_.version, kSubscribeId, opts_.subscriptions));
    arm_keepalive();
  }

  void on_suback(const Suback& ack) {
    subscribed_ = true;
    log(LogLevel::kInfo, "subscribed to " + std::to_string(opts_.subscriptions.size()) + " topic filter(s)");
    for (std::size_t i = 0; i < ack.reasons.size() && i < opts_.subscriptions.size(); ++i) {
      const auto& sub = opts_.subscriptions[i];
      if (ack.reasons[i] >= 0x80) {
        note_error("subscription '" + sub.filter + "' refused by the broker (reason " +
                   std::to_string(ack.reasons[i]) + ")");
        log(LogLevel::kError, "subscription '" + sub.filter + "' refused by the broker (reason " +
                                  std::to_string(ack.reasons[i]) + ")");
      } else if (ack.reasons[i] < sub.qos) {
        log(LogLevel::kWarning, "subscription '" + sub.filter + "' granted QoS " + std::to_string(ack.reasons[i]) +
                                    " instead of " + std::to_string(sub.qos));
      }
    }
  }

  // ---------------------------------------------------------- keepalive

  void arm_keepalive() {
    if (keepalive_s_ == 0) return;
    const auto gen = generation_;
    keepalive_timer_.expires_after(std::chrono::milliseconds(keepalive_s_ * 500));
    keepalive_timer_.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation_ || state_ != State::kConnected) return;
      const auto now = SteadyClock::now();
      // 3.1.2.10: the broker drops us after 1.5 x keep alive of silence; we
      // give up on it after the same.
      if (now - last_received_ > std::chrono::milliseconds(keepalive_s_ * 1500)) {
        return fail("no packet from the broker for 1.5 x keep alive");
      }
      if (now - last_sent_ >= std::chrono::milliseconds(keepalive_s_ * 500)) queue_write(encode_pingreq());
      arm_keepalive();
    });
  }

  // ---------------------------------------------------------- reading

  void read() {
    if (paused_ || stopping_ || reading_ || !stream_) return;
    reading_ = true;
    const auto gen = generation_;
    stream_->async_read_some(asio::buffer(stream_->read_buf), [this, gen, keep = stream_](boost::system::error_code ec,
                                                                                          std::size_t n) {
      if (gen != generation_) return;
      reading_ = false;
      if (ec) return fail(ec == asio::error::eof ? "broker closed the connection" : "read: " + ec.message());
      last_received_ = SteadyClock::now();
      reader_.feed(keep->read_buf.data(), n);
      try {
        handle_packets();
      } catch (const ProtocolError& e) {
        protocol_errors_ += 1;
        return fail(std::string("protocol error: ") + e.what());
      }
      if (state_ != State::kDisconnected) read();
    });
  }

  // Everything one read brought in becomes one append call: one commit for
  // many messages, and the PUBACKs of the call go out together after it.
  void handle_packets() {
    std::vector<buffer::NewRecord> records;
    std::vector<std::uint16_t> acks;
    std::uint64_t qos0 = 0;
    while (auto packet = reader_.next()) {
      switch (packet->type) {
        case PacketType::kConnack: on_connack(parse_connack(opts_.version, *packet)); break;
        case PacketType::kSuback: on_suback(parse_suback(opts_.version, *packet)); break;
        case PacketType::kPingresp: break;
        case PacketType::kPublish: {
          auto pub = parse_publish(opts_.version, *packet);
          if (pub.qos == 2) throw ProtocolError("QoS 2 PUBLISH although we subscribed with QoS <= 1");
          // A broker sends aliases only to clients that announce a Topic
          // Alias Maximum (3.1.2.11.5); this client announces none.
          if (pub.topic_alias) throw ProtocolError("PUBLISH with a topic alias we did not allow");
          take(std::move(pub), records, acks, qos0);
          break;
        }
        case PacketType::kDisconnect: {
          auto d = parse_disconnect(opts_.version, *packet);
          return fail("broker disconnected us (reason " + std::to_string(d.reason) +
                      (d.reason_string.empty() ? "" : ": " + d.reason_string) + ")");
        }
        default:
          throw ProtocolError("unexpected packet type " + std::to_string(static_cast<int>(packet->type)));
      }
      if (state_ == State::kDisconnected) return;
    }
    if (records.empty() && acks.empty()) return;
    submit(std::move(records), std::move(acks), qos0);
  }

  void take(Publish pub, std::vector<buffer::NewRecord>& records, std::vector<std::uint16_t>& acks,
            std::uint64_t& qos0) {
    received_ += 1;
    received_bytes_ += pub.payload.size();
    last_message_ns_ = wall_now_ns();
    if (pub.dup) redelivered_ += 1;
    if (pub.qos == 1) acks.push_back(pub.packet_id);
    if (pub.qos == 0) qos0 += 1;

    buffer::NewRecord r;
    r.ingest_ns = last_message_ns_.load();
    r.clock_synced = clock_sync_.synchronized();
    r.source = opts_.name;
    r.topic = std::move(pub.topic);
    r.content_type = std::move(pub.content_type);
    r.payload = std::move(pub.payload);
    const std::string problem = mapper_.map(r);
    if (!problem.empty()) {
      if (buffer_.add_dead_letter("", std::nullopt, r, problem) == buffer::Status::kOk) {
        dead_lettered_ += 1;
        if (dead_lettered_.load() == 1 || dead_lettered_.load() % 1000 == 0) {
          log(LogLevel::kWarning, "dead letter from '" + r.topic + "': " + problem + " (" +
                                      std::to_string(dead_lettered_.load()) + " so far)");
        }
      } else {
        // Could not even store the dead letter: do not acknowledge.
        note_error("could not store a dead letter: " + problem);
        if (pub.qos == 1) acks.pop_back();
        dead_letter_failed_ = true;
      }
      return;
    }
    records.push_back(std::move(r));
  }

  void submit(std::vector<buffer::NewRecord> records, std::vector<std::uint16_t> acks, std::uint64_t qos0) {
    const auto gen = generation_;
    const std::uint64_t n = records.size();
    auto self = shared_from_this();
    buffer_.append(std::move(records), [self, gen, n, qos0, acks = std::move(acks)](const buffer::AppendOutcome& out) {
      // Runs on the buffer's writer thread: hand over to our own thread.
      asio::post(self->io_, [self, gen, n, qos0, acks, out] { self->on_committed(gen, n, qos0, acks, out); });
    });
  }

  void on_committed(std::uint64_t gen, std::uint64_t n, std::uint64_t qos0, const std::vector<std::uint16_t>& acks,
                    const buffer::AppendOutcome& out) {
    if (out.ok()) {
      committed_ += n;
      // A PUBACK on a newer connection would name a packet id of the old
      // one: after a reconnect the broker redelivers instead.
      if (gen != generation_ || state_ != State::kConnected || acks.empty()) return;
      std::string packets;
      for (auto id : acks) packets += encode_puback(opts_.version, id);
      queue_write(std::move(packets));
      return;
    }
    refused_ += n;
    qos0_lost_ += qos0;
    note_error(std::string("buffer refused ") + std::to_string(n) + " messages: " + buffer::to_string(out.status) +
               ": " + out.error);
    // Not acknowledged, so the broker keeps them; reconnecting later makes it
    // redeliver them (MQTT 5 section 4.4) once the buffer takes input again.
    if (gen == generation_ && state_ != State::kDisconnected) {
      fail("buffer refused messages (" + std::string(buffer::to_string(out.status)) + "); backing off");
    }
  }

  // ---------------------------------------------------------- writing

  void queue_write(std::string bytes) {
    write_queue_.push_back(std::move(bytes));
    if (!writing_) write_next();
  }

  void write_next() {
    if (write_queue_.empty() || !stream_) {
      writing_ = false;
      if (close_after_writes_) close_connection();
      return;
    }
    writing_ = true;
    last_sent_ = SteadyClock::now();
    const auto gen = generation_;
    // The bytes live with the handler: a reconnect may clear the queue while
    // an old write is still completing.
    auto bytes = std::make_shared<std::string>(std::move(write_queue_.front()));
    write_queue_.pop_front();
    stream_->async_write(asio::buffer(*bytes), [this, gen, bytes, keep = stream_](boost::system::error_code ec,
                                                                                  std::size_t) {
      if (gen != generation_) return;
      if (ec) {
        writing_ = false;
        return fail("write: " + ec.message());
      }
      write_next();
    });
  }

  // ---------------------------------------------------------- failing

  void close_connection() {
    if (stream_) stream_->close();
    stream_.reset();
    keepalive_timer_.cancel();
    notify_closed();
  }

  void notify_closed() {
    if (closed_promise_) {
      closed_promise_->set_value();
      closed_promise_ = nullptr;
    }
  }

  // A handler threw (a bug, std::bad_alloc): counted and logged; the
  // connection is dropped and made again, which resends what was not
  // acknowledged (the broker redelivers it), so nothing is lost.
  void on_exception(const std::string& what) {
    exceptions_ += 1;
    log(LogLevel::kError, "internal error on the source's thread (" + what + "); reconnecting");
    asio::post(io_, [this, what] { fail("internal error: " + what); });
  }

  void fail(const std::string& reason) {
    if (state_ == State::kDisconnected && !stream_) return;
    const bool was_connected = state_ == State::kConnected;
    set_state(State::kDisconnected);
    generation_ += 1;  // late handlers of this connection see a new generation
    close_connection();
    timer_.cancel();
    note_error(reason);
    if (stopping_) return;
    const auto delay = backoff_.next();
    log(was_connected ? LogLevel::kWarning : LogLevel::kInfo,
        reason + "; reconnecting in " + std::to_string(delay.count()) + " ms (attempt " +
            std::to_string(backoff_.attempts()) + ")");
    timer_.expires_after(delay);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) connect();
    });
  }

  static constexpr std::uint16_t kSubscribeId = 1;

  MqttSourceOptions opts_;
  buffer::Buffer& buffer_;
  buffer::LogFn log_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::optional<asio::ssl::context> tls_ctx_;
  // Shared with the handlers of its pending operations: an SSL stream must
  // outlive them, so closing a connection drops only our reference.
  std::shared_ptr<Stream> stream_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  asio::steady_timer keepalive_timer_;
  Backoff backoff_;
  MessageMapper mapper_;
  ClockSyncProbe clock_sync_;
  PacketReader reader_;
  std::deque<std::string> write_queue_;
  bool writing_ = false;
  bool reading_ = false;
  std::atomic<bool> subscribed_{false};  // SUBACK seen on this connection
  std::atomic<std::uint64_t> exceptions_{0};
  bool paused_ = false;
  bool stopping_ = false;
  bool close_after_writes_ = false;
  bool dead_letter_failed_ = false;
  std::promise<void>* closed_promise_ = nullptr;
  std::uint64_t generation_ = 0;
  std::uint16_t keepalive_s_ = 30;
  SteadyClock::time_point last_received_{};
  SteadyClock::time_point last_sent_{};

  std::atomic<State> state_{State::kDisconnected};
  std::atomic<std::uint64_t> received_bytes_{0};
  std::atomic<std::uint64_t> received_{0}, committed_{0}, dead_lettered_{0}, errors_{0}, connects_{0},
      redelivered_{0}, refused_{0}, qos0_lost_{0}, protocol_errors_{0};
  std::atomic<std::int64_t> last_message_ns_{0};
  std::atomic<bool> session_present_{false};
  mutable std::mutex error_mu_;
  std::string last_error_;
};

MqttSource::MqttSource(MqttSourceOptions options, buffer::Buffer& buffer, buffer::LogFn log)
    : impl_(std::make_shared<Impl>(std::move(options), buffer, std::move(log))) {}

MqttSource::~MqttSource() { stop(); }

const std::string& MqttSource::name() const { return impl_->options().name; }
void MqttSource::start() { impl_->start(); }
void MqttSource::stop() { impl_->stop(); }
void MqttSource::pause() { impl_->pause(); }
void MqttSource::resume() { impl_->resume(); }
SourceStats MqttSource::stats() const {
  const auto s = impl_->stats();
  auto out = s.common;
  using common::Counter;
  auto add = [&](const char* name, std::uint64_t value, const char* help, bool loss = false,
                 Counter::Type type = Counter::Type::kCounter) {
    out.counters.push_back({name, help, static_cast<double>(value), type, loss});
  };
  add("refused_total", s.refused_total,
      "QoS 1 messages the buffer refused (full or disk full): not acknowledged, the broker sends them again.", true);
  add("qos0_lost_total", s.qos0_lost_total,
      "QoS 0 messages the buffer refused: QoS 0 has no redelivery, so these are lost.", true);
  add("protocol_errors_total", s.protocol_errors_total,
      "Malformed packets or protocol violations from the broker (the connection is dropped and made again).", true);
  add("redelivered_total", s.redelivered_total,
      "Messages the broker sent again (DUP set): possible duplicates, kept once each time.");
  add("exceptions_total", s.exceptions_total,
      "Internal errors on the source's thread (a bug or exhausted memory): the connection was made again.");
  add("connects_total", s.connects_total, "Successful connections to the broker.");
  add("reconnects_total", s.reconnects_total, "Connections after the first one.");
  add("session_present", s.session_present ? 1 : 0,
      "1 when the broker kept the session from before (no messages lost while away).", false, Counter::Type::kGauge);
  return out;
}
MqttSourceStats MqttSource::mqtt_stats() const { return impl_->stats(); }

}  // namespace tidegate::drivers::mqtt
