// One device's connection to the listener: reads its packets, turns its
// PUBLISHes into records, and acknowledges them once they are committed, in
// the order they came. Runs on the listener's io thread only.
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "listener_core.h"
#include "stream.h"

namespace tidegate::drivers::mqtt::listener {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ListenerCore> core, tcp::socket socket);

  void start();
  // Reading again after the listener was paused.
  void resume_reading();
  // Ends the connection: MQTT 5 clients get a DISCONNECT with the reason
  // first. `store_will`: whether the client's will (if any) counts this as
  // an abnormal end (3.1.2.5) — not for our own shutdown.
  void shut_down(std::uint8_t v5_reason, const std::string& why, bool store_will = true);
  // Enforces the connect, keep-alive and packet timeouts.
  void sweep(SteadyClock::time_point now);
  bool open() const { return open_; }
  const std::string& peer() const { return peer_; }

 private:
  struct Ack {
    PacketType type;
    std::uint16_t packet_id;
    bool qos2_resend;  // a PUBREC for a resend: only if the first one was stored
    std::uint8_t reason = 0;  // MQTT 5: 0x87 for a PUBLISH the ACL refused
  };
  // What one read brought in: committed together, acknowledged together.
  struct Batch {
    std::vector<buffer::NewRecord> records;
    std::vector<Ack> acks;
    std::vector<std::uint16_t> qos2_new;  // ids added to the session by this batch
    std::vector<buffer::StateChange> state;  // session state saved with the records
    std::uint64_t qos0 = 0;
    bool empty() const { return records.empty() && acks.empty() && state.empty(); }
  };

  void handshake();
  void read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void handle_packets();
  void on_connect(Connect connect, Batch& batch);
  void refuse_connect(Version version, std::uint8_t v5_reason, std::uint8_t v311_code, const std::string& why);
  void on_publish(Publish publish, Batch& batch);
  void on_pubrel(const Pubrel& pubrel, Batch& batch);
  void on_subscribe(const SubscribeRequest& request);
  void on_disconnect(const ClientDisconnect& disconnect);
  void submit(Batch batch);
  void on_committed(const Batch& batch, const buffer::AppendOutcome& outcome);

  void send(std::string bytes);
  void write_next();
  void close_socket();
  void end_session();

  // Whether a client with this CONNECT may connect; fills username_. The
  // refusal's reasons otherwise (MQTT 5, 3.1.1, text).
  struct Refusal {
    std::uint8_t v5;
    std::uint8_t v311;
    std::string why;
  };
  std::optional<Refusal> authenticate(const Connect& c);

  std::shared_ptr<ListenerCore> core_;
  std::shared_ptr<Stream> stream_;  // shared with pending handlers (an SSL stream must outlive them)
  std::string peer_;
  // Grows from 1 KiB while reads fill it, to 16 KiB: a thousand idle
  // clients cost a thousand small buffers.
  std::vector<char> read_buf_ = std::vector<char>(1024);
  std::string identity_;  // from the client certificate (mutual TLS)
  std::optional<std::string> username_;
  PacketReader reader_;
  std::deque<std::string> write_queue_;
  bool writing_ = false;
  bool reading_ = false;
  bool open_ = true;
  bool closing_ = false;  // no more reading; close once written

  // After CONNECT.
  bool connected_ = false;
  Version version_ = Version::kV311;
  std::string client_id_;
  std::shared_ptr<Session> session_;
  std::optional<Will> will_;
  bool store_will_ = true;
  std::chrono::seconds keepalive_{0};
  std::vector<std::string> aliases_;  // index: topic alias
  std::uint32_t inflight_ = 0;        // QoS 1/2 PUBLISHes not yet acknowledged

  SteadyClock::time_point accepted_at_;
  SteadyClock::time_point last_packet_at_;
  SteadyClock::time_point partial_since_{};  // when the unfinished packet began
  SteadyClock::time_point closing_since_{};
};

}  // namespace tidegate::drivers::mqtt::listener
