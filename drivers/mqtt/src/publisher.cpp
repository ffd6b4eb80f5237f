#include "tidegate/drivers/mqtt/publisher.h"

#include <algorithm>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "client_connect.h"
#include "client_tls.h"
#include "stream.h"

namespace tidegate::drivers::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::size_t PublishResult::acknowledged() const {
  return static_cast<std::size_t>(std::count_if(reasons.begin(), reasons.end(), [](auto r) { return r < 0x80; }));
}

class Publisher::Impl {
 public:
  explicit Impl(PublisherOptions options) : opts_(std::move(options)), resolver_(io_) {
    if (opts_.tls.enabled) tls_ctx_.emplace(make_client_tls_context(opts_.tls));
    if (opts_.qos > 1) throw std::invalid_argument("the MQTT publisher sends QoS 0 or 1");
    batch_ = std::make_shared<std::string>();
  }

  ~Impl() {
    if (state_ != State::kUp) return;
    control_ += encode_disconnect(opts_.version);
    pump_writes();
    run_until(Clock::now() + std::chrono::seconds(2), [&] { return !writing_ || state_ != State::kUp; });
    close();
  }

  std::string uri() const {
    return std::string(opts_.tls.enabled ? "mqtts://" : "mqtt://") + opts_.host + ":" + std::to_string(opts_.port);
  }
  bool connected() const { return state_ == State::kUp; }
  std::uint64_t connects() const { return connects_; }

  void add(std::string_view topic, std::string_view payload) {
    if (ends_.size() >= 65535) throw ProtocolError("more than 65,535 messages in one batch");
    // Packet ids 1..n per batch: a batch starts only when the one before is
    // completely acknowledged or its connection is gone, so none is in use.
    const auto id = static_cast<std::uint16_t>(ends_.size() + 1);
    append_publish(*batch_, opts_.version, topic, payload, opts_.qos, opts_.qos > 0 ? id : 0);
    ends_.push_back(batch_->size());
  }
  std::size_t batch_size() const { return ends_.size(); }

  PublishResult publish() {
    PublishResult result;
    result.reasons.assign(ends_.size(), kNoPuback);
    reasons_ = &result.reasons;
    batch_seq_ += 1;
    submitted_msgs_ = 0;
    written_msgs_ = 0;
    acked_ = 0;
    error_.clear();
    poll();
    // The broker drops a client silent for 1.5 x keep alive (3.1.2.10); after
    // a long pause without service() the link may be gone without a word.
    if (state_ == State::kUp && opts_.keepalive_s > 0 &&
        Clock::now() - last_sent_ > std::chrono::seconds(opts_.keepalive_s)) {
      close();
    }
    const auto deadline = Clock::now() + opts_.timeout;
    if (state_ != State::kUp) connect(deadline);
    if (state_ == State::kUp && !ends_.empty()) {
      pump_writes();
      run_until(deadline, [&] { return batch_done() || state_ != State::kUp; });
      if (!batch_done() && state_ == State::kUp) {
        fail("no PUBACK for " + std::to_string(ends_.size() - acked_) + " of " + std::to_string(ends_.size()) +
             " messages within " + std::to_string(opts_.timeout.count()) + " ms");
      }
    }
    if (opts_.qos == 0) {  // nothing to wait for: written is delivered
      std::fill_n(result.reasons.begin(), written_msgs_, std::uint16_t{0});
    }
    if (result.acknowledged() < ends_.size()) result.error = error_.empty() ? "not connected" : error_;
    reasons_ = nullptr;
    ends_.clear();
    // A write of an abandoned connection may still point into the old buffer.
    if (batch_.use_count() > 1) batch_ = std::make_shared<std::string>();
    batch_->clear();
    return result;
  }

  void service() {
    poll();
    if (state_ != State::kUp || opts_.keepalive_s == 0) return;
    const auto now = Clock::now();
    const auto keepalive = std::chrono::milliseconds(1000 * opts_.keepalive_s);
    // (From the PINGREQ, not from the last packet received: a QoS 0
    // publisher hears nothing else.)
    if (ping_sent_ && now - ping_sent_at_ > keepalive) {
      fail("no PINGRESP from the broker within the keep alive");
      return;
    }
    if (!ping_sent_ && now - last_sent_ >= keepalive / 2) {
      control_ += encode_pingreq();
      ping_sent_ = true;
      ping_sent_at_ = now;
      pump_writes();
      poll();
    }
  }

 private:
  enum class State { kDown, kConnecting, kUp };

  // Runs handlers on this thread until `done` or the deadline.
  template <typename Pred>
  void run_until(Clock::time_point deadline, Pred done) {
    while (!done()) {
      const auto now = Clock::now();
      if (now >= deadline) return;
      if (io_.stopped()) io_.restart();
      if (io_.run_one_for(deadline - now) == 0 && io_.stopped()) return;  // nothing left to wait for
    }
  }
  void poll() {
    if (io_.stopped()) io_.restart();
    io_.poll();
  }

  bool batch_done() const { return opts_.qos == 0 ? written_msgs_ == ends_.size() && !writing_ : acked_ == ends_.size(); }

  // ------------------------------------------------------------ connecting

  void connect(Clock::time_point deadline) {
    close();
    state_ = State::kConnecting;
    generation_ += 1;
    const auto gen = generation_;
    stream_ = std::make_shared<Stream>(io_, tls_ctx_ ? &*tls_ctx_ : nullptr);
    stream_->read_buf.resize(16 * 1024);
    reader_ = PacketReader();
    control_.clear();
    writing_ = false;
    ping_sent_ = false;
    open_client_stream(
        resolver_, stream_, opts_.host, opts_.port, [this, gen] { return gen == generation_; },
        [this](const std::string& error) { return error.empty() ? send_connect() : fail(error); });
    run_until(deadline, [&] { return state_ != State::kConnecting; });
    if (state_ == State::kConnecting) fail("no CONNACK within " + std::to_string(opts_.timeout.count()) + " ms");
    if (state_ != State::kUp) error_ = "connect to " + uri() + ": " + error_;
  }

  void send_connect() {
    ConnectOptions c;
    c.version = opts_.version;
    c.client_id = opts_.client_id;
    // A publisher has no subscriptions to keep, and in-flight ids are per
    // batch: a clean session every time.
    c.clean_start = true;
    c.keepalive_s = opts_.keepalive_s;
    c.username = opts_.username;
    c.password = opts_.password;
    control_ += encode_connect(c);
    pump_writes();
    read();
  }

  void on_connack(const Connack& ack) {
    if (state_ != State::kConnecting) throw ProtocolError("a second CONNACK");
    if (ack.reason != 0) {
      return fail(connack_refusal_text(opts_.version, ack));
    }
    if (ack.maximum_qos && *ack.maximum_qos < opts_.qos) {
      return fail("the broker accepts at most QoS " + std::to_string(*ack.maximum_qos));
    }
    window_ = std::max<std::uint16_t>(1, std::min(opts_.max_inflight, ack.receive_maximum.value_or(65535)));
    if (ack.server_keepalive) opts_.keepalive_s = *ack.server_keepalive;  // 3.2.2.3.14
    state_ = State::kUp;
    connects_ += 1;
  }

  // ------------------------------------------------------------ reading

  void read() {
    const auto gen = generation_;
    stream_->async_read_some(asio::buffer(stream_->read_buf), [this, gen, keep = stream_](boost::system::error_code ec,
                                                                                          std::size_t n) {
      if (gen != generation_) return;
      if (ec) return fail(ec == asio::error::eof ? "broker closed the connection" : "read: " + ec.message());
      reader_.feed(keep->read_buf.data(), n);
      try {
        while (auto packet = reader_.next()) {
          handle(*packet);
          if (gen != generation_) return;  // failed (a refusal, a DISCONNECT)
        }
      } catch (const ProtocolError& e) {
        return fail(std::string("protocol error: ") + e.what());
      }
      pump_writes();  // PUBACKs open the window
      // Waiting for PUBACKs with nothing to write: our ACK of what came
      // cannot ride on data, and the broker's next PUBACKs must not wait
      // for the kernel's delayed ACK.
      if (!writing_ && reasons_ && !batch_done()) keep->quick_ack();
      read();
    });
  }

  void handle(const Packet& packet) {
    switch (packet.type) {
      case PacketType::kConnack: on_connack(parse_connack(opts_.version, packet)); break;
      case PacketType::kPuback: on_puback(parse_puback(opts_.version, packet)); break;
      case PacketType::kPingresp: ping_sent_ = false; break;
      case PacketType::kDisconnect: {
        const auto d = parse_disconnect(opts_.version, packet);
        fail("broker disconnected: reason " + std::to_string(d.reason) +
             (d.reason_string.empty() ? "" : " (" + d.reason_string + ")"));
        break;
      }
      default: throw ProtocolError("unexpected packet type " + std::to_string(static_cast<int>(packet.type)));
    }
  }

  void on_puback(const Puback& ack) {
    if (state_ != State::kUp || !reasons_ || ack.packet_id == 0 || ack.packet_id > submitted_msgs_) {
      throw ProtocolError("PUBACK for packet id " + std::to_string(ack.packet_id) + ", which is not in flight");
    }
    auto& reason = (*reasons_)[ack.packet_id - 1];
    if (reason != kNoPuback) throw ProtocolError("a second PUBACK for packet id " + std::to_string(ack.packet_id));
    reason = ack.reason;
    acked_ += 1;
    if (ack.reason >= 0x80 && error_.empty()) {
      error_ = "broker refused a message: reason " + std::to_string(ack.reason);
    }
  }

  // ------------------------------------------------------------ writing

  // One write at a time: control packets first, then as much of the batch
  // as the window allows (usually all of it, in one write).
  void pump_writes() {
    if (writing_ || !stream_ || state_ == State::kDown) return;
    const auto gen = generation_;
    if (!control_.empty()) {
      auto packet = std::make_shared<std::string>(std::move(control_));
      control_.clear();
      return write(asio::buffer(*packet), [packet](std::size_t) {});
    }
    if (state_ != State::kUp || !reasons_ || submitted_msgs_ == ends_.size()) return;
    const std::size_t limit = opts_.qos == 0 ? ends_.size() : std::min(ends_.size(), acked_ + window_);
    if (limit <= submitted_msgs_) return;
    const std::size_t from = submitted_msgs_ == 0 ? 0 : ends_[submitted_msgs_ - 1];
    const std::size_t end = ends_[limit - 1];
    // Submitted, not yet written: a PUBACK may come before the write's
    // completion handler runs.
    submitted_msgs_ = limit;
    auto batch = batch_;
    write(asio::buffer(batch->data() + from, end - from), [this, gen, seq = batch_seq_, batch, limit](std::size_t) {
      if (gen == generation_ && seq == batch_seq_) written_msgs_ = limit;
    });
  }

  template <typename Done>
  void write(asio::const_buffer buffer, Done done) {
    writing_ = true;
    const auto gen = generation_;
    last_sent_ = Clock::now();
    stream_->async_write(buffer, [this, gen, done, keep = stream_](boost::system::error_code ec, std::size_t n) {
      done(n);
      if (gen != generation_) return;
      writing_ = false;
      if (ec) return fail("write: " + ec.message());
      pump_writes();
    });
  }

  void fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    close();
  }

  void close() {
    generation_ += 1;  // completions of this connection are ignored from now on
    resolver_.cancel();
    if (stream_) stream_->close();
    stream_.reset();
    state_ = State::kDown;
    writing_ = false;
    ping_sent_ = false;
  }

  PublisherOptions opts_;
  asio::io_context io_;
  tcp::resolver resolver_;
  std::optional<asio::ssl::context> tls_ctx_;
  std::shared_ptr<Stream> stream_;
  PacketReader reader_;
  State state_ = State::kDown;
  std::uint64_t generation_ = 0;
  std::uint64_t connects_ = 0;
  std::string error_;

  std::string control_;  // CONNECT, PINGREQ, DISCONNECT waiting to be written
  bool writing_ = false;
  bool ping_sent_ = false;
  Clock::time_point last_sent_{};
  Clock::time_point ping_sent_at_{};
  std::uint16_t window_ = 1;

  // The batch: PUBLISH packets back to back, and where each one ends.
  std::shared_ptr<std::string> batch_;
  std::vector<std::size_t> ends_;
  std::vector<std::uint16_t>* reasons_ = nullptr;  // while publish() runs
  std::uint64_t batch_seq_ = 0;      // completions of an earlier batch's write change nothing
  std::size_t submitted_msgs_ = 0;  // handed to a write
  std::size_t written_msgs_ = 0;    // written (QoS 0: delivered)
  std::size_t acked_ = 0;
};

Publisher::Publisher(PublisherOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Publisher::~Publisher() = default;
void Publisher::add(std::string_view topic, std::string_view payload) { impl_->add(topic, payload); }
std::size_t Publisher::batch_size() const { return impl_->batch_size(); }
PublishResult Publisher::publish() { return impl_->publish(); }
void Publisher::service() { impl_->service(); }
bool Publisher::connected() const { return impl_->connected(); }
std::uint64_t Publisher::connects() const { return impl_->connects(); }
std::string Publisher::uri() const { return impl_->uri(); }

}  // namespace tidegate::drivers::mqtt
