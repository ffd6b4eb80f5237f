// What the listener's connections share: the io_context they run on, the
// buffer, the sessions by client id, the counters. Internal to the listener.
#pragma once

#include <atomic>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/ingest_support.h"
#include "tidegate/drivers/mqtt/codec.h"
#include "tidegate/drivers/mqtt/listener_auth.h"
#include "tidegate/drivers/mqtt/message_mapping.h"
#include "tidegate/drivers/mqtt/mqtt_listener.h"

namespace tidegate::drivers::mqtt::listener {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

class Connection;

struct Counters {
  std::atomic<std::uint64_t> connections_total{0};      // CONNECT accepted
  std::atomic<std::uint64_t> connected{0};              // gauge
  std::atomic<std::uint64_t> refused_connections_total{0};  // limit, rate, buffer refusing, bad CONNECT
  std::atomic<std::uint64_t> received_total{0};         // PUBLISH packets
  std::atomic<std::uint64_t> bytes_received_total{0};   // payload bytes of those
  std::atomic<std::uint64_t> committed_total{0};
  std::atomic<std::uint64_t> dead_lettered_total{0};
  std::atomic<std::uint64_t> refused_total{0};          // QoS 1/2 not acknowledged: the client resends
  std::atomic<std::uint64_t> qos0_total{0};
  std::atomic<std::uint64_t> qos0_lost_total{0};        // QoS 0 the buffer refused
  std::atomic<std::uint64_t> redelivered_total{0};      // DUP set
  std::atomic<std::uint64_t> qos2_duplicates_total{0};  // QoS 2 resends not stored twice
  std::atomic<std::uint64_t> wills_stored_total{0};
  std::atomic<std::uint64_t> protocol_errors_total{0};
  std::atomic<std::uint64_t> timeouts_total{0};         // connect, keep-alive or packet timeout
  std::atomic<std::uint64_t> subscribes_refused_total{0};
  std::atomic<std::uint64_t> auth_failures_total{0};    // bad password, no certificate, anonymous refused
  std::atomic<std::uint64_t> acl_denied_total{0};       // PUBLISH to a topic the ACL does not allow
  std::atomic<std::uint64_t> tls_failures_total{0};     // handshakes that failed
  std::atomic<std::uint64_t> sessions_ended_early_total{0};  // over the session cap
  std::atomic<std::uint64_t> exceptions_total{0};
  std::atomic<std::uint64_t> errors_total{0};
  std::atomic<std::int64_t> last_message_ns{0};
};

// What a client id keeps between its connections.
struct Session {
  std::string client_id;
  // QoS 2 packet ids whose PUBLISH was taken (or is being committed) and
  // whose PUBREL has not come: a resend of one of them is not stored again
  // (MQTT 5 section 4.3.3, method B).
  std::set<std::uint16_t> qos2_received;
  std::uint32_t expiry_s = 0;          // 0: ends with the connection
  bool durable = false;                // saved in the buffer (expiry > 0): so are its QoS 2 ids
  SteadyClock::time_point expires_at;  // while no connection holds it
  std::weak_ptr<Connection> owner;
  // A will waiting out its delay (3.1.3.2.2); dropped if the client comes back.
  std::optional<Will> pending_will;
  SteadyClock::time_point will_due;
};

struct ListenerCore {
  ListenerCore(MqttListenerOptions o, buffer::Buffer& b, buffer::LogFn l)
      : opts(std::move(o)), buffer(b), log_fn(std::move(l)), mapper(opts.mapping) {}

  void log(buffer::LogLevel level, const std::string& message) const {
    if (log_fn) log_fn(level, "mqtt listener '" + opts.name + "': " + message);
  }
  void note_error(const std::string& message);
  // The partition key's last resort for a client (opts.key_fallback); empty: the topic.
  std::string key_fallback(const std::string& client_id, const std::optional<std::string>& username) const {
    switch (opts.key_fallback) {
      case KeyFallback::kClientId: return client_id;
      case KeyFallback::kUsername: return username.value_or(std::string());
      case KeyFallback::kTopic: break;
    }
    return {};
  }
  std::string last_error() const;

  // Stores a will (or any message the listener makes itself) without an
  // acknowledgement to wait for; failures are counted and logged.
  void store_will(const Will& will, const std::string& client_id);
  // Ends the sessions that no connection holds and whose expiry has passed,
  // storing due wills first.
  void sweep_sessions(SteadyClock::time_point now);

  // Persistent sessions live in the buffer's source state, so that after a
  // crash a client is told its session is present (and resends what it had
  // in flight) and a QoS 2 resend is still recognised. Keys:
  //   mqtt_listener/<name>/s/<client id>              = session expiry (s)
  //   mqtt_listener/<name>/q2/<client id>/<packet id> = ""
  std::string session_key(const std::string& client_id) const;
  std::string qos2_key(const std::string& client_id, std::uint16_t packet_id) const;
  // The changes that forget a session entirely.
  std::vector<buffer::StateChange> forget(const Session& session) const;
  // Writes state changes that go with no record (never refused for room).
  void write_state(std::vector<buffer::StateChange> changes);
  // Rebuilds the persistent sessions from the buffer at start.
  void load_sessions();
  // Sessions are kept for clients that are away, up to four per allowed
  // connection: a client inventing ids cannot fill memory and the buffer.
  // Makes room for one more by ending the away session that expires first.
  void make_room_for_a_session();

  MqttListenerOptions opts;
  buffer::Buffer& buffer;
  buffer::LogFn log_fn;
  MessageMapper mapper;
  ClockSyncProbe clock_sync;
  // Loaded by start(); absent when not configured.
  std::optional<asio::ssl::context> tls;
  std::optional<PasswordFile> passwords;
  std::optional<AclFile> acl;
  asio::io_context io;
  Counters counters;

  // Only touched on the io thread.
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions;
  std::unordered_set<std::shared_ptr<Connection>> connections;
  bool paused = false;    // backpressure from the daemon: no reading
  bool stopping = false;  // no new work at all
  // After the buffer refused, new connections are turned away for a while
  // (CONNACK "server unavailable" / "quota exceeded") instead of being
  // accepted only to be refused again.
  SteadyClock::time_point refusing_until{};

  mutable std::mutex error_mu;
  std::string last_error_text;
};

}  // namespace tidegate::drivers::mqtt::listener
