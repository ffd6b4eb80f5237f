#include "tidegate/drivers/mqtt/mqtt_listener.h"

#include <sys/resource.h>

#include <future>
#include <thread>

#include "listener_connection.h"
#include "tidegate/drivers/error_boundary.h"

namespace tidegate::drivers::mqtt {

using buffer::LogLevel;
using listener::Connection;
using listener::ListenerCore;
using listener::SteadyClock;
namespace asio = listener::asio;
using listener::tcp;

// ------------------------------------------------------------------ ListenerCore

namespace listener {

void ListenerCore::note_error(const std::string& message) {
  counters.errors_total += 1;
  std::lock_guard lock(error_mu);
  last_error_text = message;
}

std::string ListenerCore::last_error() const {
  std::lock_guard lock(error_mu);
  return last_error_text;
}

void ListenerCore::store_will(const Will& will, const std::string& client_id) {
  buffer::NewRecord r;
  r.ingest_ns = wall_now_ns();
  r.clock_synced = clock_sync.synchronized();
  r.source = opts.name;
  r.topic = will.topic;
  r.payload = will.payload;
  r.content_type = will.content_type;
  const std::string problem = mapper.map(r, key_fallback(client_id, std::nullopt));
  if (!problem.empty()) {
    if (buffer.add_dead_letter("", std::nullopt, r, "will of '" + client_id + "': " + problem) == buffer::Status::kOk) {
      counters.dead_lettered_total += 1;
    }
    return;
  }
  log(buffer::LogLevel::kInfo, "client '" + client_id + "' went away without DISCONNECT: storing its will on '" +
                                   will.topic + "'");
  std::vector<buffer::NewRecord> records;
  records.push_back(std::move(r));
  buffer.append(std::move(records), [this, client_id](const buffer::AppendOutcome& out) {
    if (out.ok()) {
      counters.wills_stored_total += 1;
    } else {
      note_error("the will of '" + client_id + "' was refused: " + buffer::to_string(out.status));
    }
  });
}

std::string ListenerCore::session_key(const std::string& client_id) const {
  return "mqtt_listener/" + opts.name + "/s/" + client_id;
}

std::string ListenerCore::qos2_key(const std::string& client_id, std::uint16_t packet_id) const {
  return "mqtt_listener/" + opts.name + "/q2/" + client_id + "/" + std::to_string(packet_id);
}

std::vector<buffer::StateChange> ListenerCore::forget(const Session& session) const {
  std::vector<buffer::StateChange> out;
  if (!session.durable) return out;
  out.push_back({session_key(session.client_id), std::nullopt});
  for (auto id : session.qos2_received) out.push_back({qos2_key(session.client_id, id), std::nullopt});
  return out;
}

void ListenerCore::write_state(std::vector<buffer::StateChange> changes) {
  if (changes.empty()) return;
  buffer.append({}, std::move(changes), [this](const buffer::AppendOutcome& out) {
    if (!out.ok()) note_error(std::string("could not save session state: ") + buffer::to_string(out.status));
  });
}

void ListenerCore::load_sessions() {
  const std::string prefix = "mqtt_listener/" + opts.name + "/";
  const auto now = SteadyClock::now();
  std::size_t ids = 0;
  for (const auto& [key, value] : buffer.source_state(prefix)) {
    const std::string rest = key.substr(prefix.size());
    if (rest.rfind("s/", 0) == 0) {
      auto& s = sessions[rest.substr(2)];
      if (!s) s = std::make_shared<Session>();
      s->client_id = rest.substr(2);
      s->durable = true;
      s->expiry_s = std::min<std::uint32_t>(static_cast<std::uint32_t>(std::strtoul(value.c_str(), nullptr, 10)),
                                            opts.max_session_expiry_s);
      // When the gateway stopped is not known: count from now.
      s->expires_at = now + std::chrono::seconds(s->expiry_s);
    } else if (rest.rfind("q2/", 0) == 0) {
      const auto slash = rest.rfind('/');
      const std::string client = rest.substr(3, slash - 3);
      auto& s = sessions[client];
      if (!s) {
        s = std::make_shared<Session>();
        s->client_id = client;
        s->durable = true;
        s->expires_at = now;  // ids without their session: dropped at the first sweep
      }
      s->qos2_received.insert(static_cast<std::uint16_t>(std::strtoul(rest.c_str() + slash + 1, nullptr, 10)));
      ids += 1;
    }
  }
  if (!sessions.empty()) {
    log(buffer::LogLevel::kInfo, "restored " + std::to_string(sessions.size()) + " persistent session(s) with " +
                                     std::to_string(ids) + " QoS 2 packet id(s) awaiting release");
  }
}

void ListenerCore::make_room_for_a_session() {
  if (sessions.size() < opts.max_connections * 4) return;
  auto oldest = sessions.end();
  for (auto it = sessions.begin(); it != sessions.end(); ++it) {
    if (!it->second->owner.expired()) continue;
    if (oldest == sessions.end() || it->second->expires_at < oldest->second->expires_at) oldest = it;
  }
  if (oldest == sessions.end()) return;
  auto& s = *oldest->second;
  counters.sessions_ended_early_total += 1;
  if (counters.sessions_ended_early_total.load() % 100 == 1) {
    log(buffer::LogLevel::kWarning, "more sessions than 4 x max_connections: ended the session of '" + s.client_id +
                                        "' early (" + std::to_string(counters.sessions_ended_early_total.load()) +
                                        " so far)");
  }
  if (s.pending_will) store_will(*s.pending_will, s.client_id);
  write_state(forget(s));
  sessions.erase(oldest);
}

void ListenerCore::sweep_sessions(SteadyClock::time_point now) {
  for (auto it = sessions.begin(); it != sessions.end();) {
    auto& s = *it->second;
    if (!s.owner.expired()) {
      ++it;
      continue;
    }
    if (s.pending_will && now >= s.will_due) {
      store_will(*s.pending_will, s.client_id);
      s.pending_will.reset();
    }
    if (now >= s.expires_at) {
      if (s.pending_will) store_will(*s.pending_will, s.client_id);  // 3.1.3.2.2: at the latest when it ends
      write_state(forget(s));
      it = sessions.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace listener

// ------------------------------------------------------------------ MqttListener::Impl

class MqttListener::Impl {
 public:
  Impl(MqttListenerOptions options, buffer::Buffer& buffer, buffer::LogFn log)
      : core_(std::make_shared<ListenerCore>(std::move(options), buffer, std::move(log))),
        acceptor_(core_->io),
        accept_pause_(core_->io),
        sweep_timer_(core_->io) {}

  const MqttListenerOptions& options() const { return core_->opts; }
  std::uint16_t port() const { return port_.load(); }

  void start() {
    const auto& o = core_->opts;
    load_security();
    raise_descriptor_limit();
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(o.bind_address, ec);
    if (ec) throw std::runtime_error("listen address '" + o.bind_address + "': " + ec.message());
    const tcp::endpoint endpoint(address, o.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + o.bind_address + ":" + std::to_string(o.port) + ": " +
                               ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    listening_ = true;
    core_->load_sessions();
    core_->log(LogLevel::kInfo, "listening for MQTT 3.1.1 and 5 clients on " + o.bind_address + ":" +
                                    std::to_string(port_.load()));
    accept();
    arm_sweep();
    // The io thread runs until stop() says so, not until it is idle: stop()
    // posts work to it after the acceptor and timer are gone.
    work_.emplace(asio::make_work_guard(core_->io));
    thread_ = std::thread([this] {
      drivers::run_guarded([this] { core_->io.run(); },
                           [this](const std::string& what) {
                             core_->counters.exceptions_total += 1;
                             core_->log(LogLevel::kError, "internal error on the listener's thread (" + what +
                                                              "); carrying on");
                           },
                           [] { return false; }, std::chrono::milliseconds(0));
    });
  }

  void stop() {
    if (!thread_.joinable()) return;
    // 1. No new connections, no more reading.
    run_on_io([this] {
      core_->stopping = true;
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      sweep_timer_.cancel();
      accept_pause_.cancel();
    });
    // 2. What was taken in is committed; its acknowledgements are queued.
    core_->buffer.flush();
    run_on_io([] {});
    // 3. Tell each client and close (it resends nothing: all is acknowledged).
    run_on_io([this] {
      const auto all = core_->connections;
      for (const auto& c : all) c->shut_down(0x8B, "the gateway is shutting down", false);
    });
    const auto deadline = SteadyClock::now() + std::chrono::seconds(3);
    while (SteadyClock::now() < deadline) {
      std::promise<bool> empty;
      auto answer = empty.get_future();
      asio::post(core_->io, [&] { empty.set_value(core_->connections.empty()); });
      if (answer.get()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    work_.reset();
    core_->io.stop();
    thread_.join();
    listening_ = false;
    // Run out what is left (completions of closed sockets), so no handler
    // keeps a connection, and through it the core, alive.
    core_->connections.clear();
    core_->io.restart();
    core_->io.poll();
    core_->log(LogLevel::kInfo, "stopped");
  }

  void pause() {
    asio::post(core_->io, [this] { core_->paused = true; });
  }
  void resume() {
    asio::post(core_->io, [this] {
      if (!core_->paused) return;
      core_->paused = false;
      const auto all = core_->connections;
      for (const auto& c : all) c->resume_reading();
    });
  }

  SourceStats stats() const {
    const auto& c = core_->counters;
    SourceStats s;
    s.name = core_->opts.name;
    s.connected = listening_.load();
    s.received_total = c.received_total.load();
    s.received_bytes_total = c.bytes_received_total.load();
    s.committed_total = c.committed_total.load();
    s.dead_lettered_total = c.dead_lettered_total.load();
    s.errors_total = c.errors_total.load();
    s.last_message_ns = c.last_message_ns.load();
    s.last_error = core_->last_error();
    using common::Counter;
    auto add = [&](const char* name, double value, const char* help, bool loss = false,
                   Counter::Type type = Counter::Type::kCounter) {
      s.counters.push_back({name, help, value, type, loss});
    };
    add("clients_connected", static_cast<double>(c.connected.load()), "Devices connected now.", false,
        Counter::Type::kGauge);
    add("connections_total", static_cast<double>(c.connections_total.load()), "Connections accepted (CONNACK sent).");
    add("refused_connections_total", static_cast<double>(c.refused_connections_total.load()),
        "Connections refused: over max_connections or the connect rate, a bad CONNECT, or while the buffer refuses.");
    add("refused_total", static_cast<double>(c.refused_total.load()),
        "QoS 1/2 readings the buffer refused (full or disk reserve): not acknowledged, the device sends them again.",
        true);
    add("qos0_total", static_cast<double>(c.qos0_total.load()),
        "QoS 0 readings taken in: stored best effort, a device never resends them.");
    add("qos0_lost_total", static_cast<double>(c.qos0_lost_total.load()),
        "QoS 0 readings the buffer refused: QoS 0 has no resend, so these are lost.", true);
    add("redelivered_total", static_cast<double>(c.redelivered_total.load()),
        "PUBLISHes sent again by a device (DUP set): possible duplicates, QoS 1 ones kept again.");
    add("qos2_duplicates_total", static_cast<double>(c.qos2_duplicates_total.load()),
        "QoS 2 resends recognised and not stored twice.");
    add("wills_stored_total", static_cast<double>(c.wills_stored_total.load()),
        "Will messages stored because a device went away without DISCONNECT.");
    add("protocol_errors_total", static_cast<double>(c.protocol_errors_total.load()),
        "Connections closed for a malformed packet or a protocol violation (see the log for the client).", true);
    add("timeouts_total", static_cast<double>(c.timeouts_total.load()),
        "Connections closed for silence: no CONNECT, keep alive expired, or a packet left unfinished.");
    add("subscribes_refused_total", static_cast<double>(c.subscribes_refused_total.load()),
        "SUBSCRIBE requests refused: the listener takes readings in and delivers none.");
    add("auth_failures_total", static_cast<double>(c.auth_failures_total.load()),
        "Connections refused for their credentials: bad user name or password, anonymous not allowed, no client "
        "certificate.", true);
    add("acl_denied_total", static_cast<double>(c.acl_denied_total.load()),
        "PUBLISHes to a topic the acl_file does not allow the client: not stored (MQTT 5 clients are told).", true);
    add("tls_failures_total", static_cast<double>(c.tls_failures_total.load()),
        "TLS handshakes that failed (unknown CA, expired certificate, no certificate, not TLS at all).", true);
    add("sessions_ended_early_total", static_cast<double>(c.sessions_ended_early_total.load()),
        "Sessions of clients that were away, ended before their expiry because there were more than 4 x "
        "max_connections.");
    add("exceptions_total", static_cast<double>(c.exceptions_total.load()),
        "Internal errors on the listener's thread (a bug or exhausted memory): that connection was closed.");
    return s;
  }

 private:
  // Each connection is a descriptor, and the usual soft limit (1024) is
  // below max_connections' default with the buffer's and sinks' own: raise
  // the soft limit towards the hard one (systemd's is 512K).
  void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t wanted = static_cast<rlim_t>(core_->opts.max_connections) + 256;
    if (limit.rlim_cur >= wanted) return;
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < wanted) {
      core_->log(LogLevel::kWarning, "open files limited to " + std::to_string(limit.rlim_cur) +
                                         "; max_connections = " + std::to_string(core_->opts.max_connections) +
                                         " needs about " + std::to_string(wanted) + " (LimitNOFILE in the unit)");
    } else {
      core_->log(LogLevel::kDebug, "open files limit raised from " + std::to_string(before) + " to " +
                                       std::to_string(limit.rlim_cur));
    }
  }

  // TLS material, password and ACL files: read at start (check-config has
  // read them too); a file that cannot be used stops the start.
  void load_security() {
    const auto& o = core_->opts;
    if (o.tls.enabled()) {
      namespace ssl = asio::ssl;
      auto& ctx = core_->tls.emplace(ssl::context::tls_server);
      ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      ctx.use_certificate_chain_file(o.tls.cert_file);
      ctx.use_private_key_file(o.tls.key_file.empty() ? o.tls.cert_file : o.tls.key_file, ssl::context::pem);
      if (!o.tls.ca_file.empty()) ctx.load_verify_file(o.tls.ca_file);
      const bool verify = !o.tls.ca_file.empty() || o.tls.require_client_certificate;
      ctx.set_verify_mode(verify ? ssl::verify_peer | (o.tls.require_client_certificate || o.tls.identity_as_username
                                                            ? ssl::verify_fail_if_no_peer_cert
                                                            : 0)
                                 : ssl::verify_none);
      // Idle connections give their TLS buffers back (a thousand sensors).
      SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    }
    if (!o.password_file.empty()) {
      core_->passwords = PasswordFile::load(o.password_file);
      core_->log(LogLevel::kInfo, std::to_string(core_->passwords->users()) + " user(s) in " + o.password_file);
    }
    if (!o.acl_file.empty()) core_->acl = AclFile::load(o.acl_file);
  }

  void run_on_io(std::function<void()> work) {
    std::promise<void> done;
    asio::post(core_->io, [&] {
      work();
      done.set_value();
    });
    done.get_future().wait();
  }

  void accept() {
    // `this`, not a shared pointer: the handlers live in the io_context that
    // Impl owns (through core_), and stop() runs them out before Impl goes.
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (core_->stopping) return;
      if (!ec) admit(std::move(socket));
      if (ec == asio::error::no_descriptors) {
        // Out of file descriptors: accepting again at once would spin. The
        // waiting connection stays in the kernel's backlog meanwhile.
        core_->note_error("accept: " + ec.message() + " (raise LimitNOFILE or lower max_connections)");
        accept_pause_.expires_after(std::chrono::milliseconds(100));
        accept_pause_.async_wait([this](const boost::system::error_code& wait_ec) {
          if (!wait_ec && !core_->stopping) accept();
        });
        return;
      }
      accept();
    });
  }

  void admit(tcp::socket socket) {
    auto& core = *core_;
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;
    const std::string address = remote.address().to_string();
    const char* refusal = nullptr;
    if (core.connections.size() >= core.opts.max_connections) {
      refusal = "max_connections reached";
    } else if (!take_connect_token(address)) {
      refusal = "connect rate of this address over max_connect_rate";
    }
    if (refusal) {
      core.counters.refused_connections_total += 1;
      if (core.counters.refused_connections_total.load() % 100 == 1) {
        core.log(LogLevel::kWarning, "connection from " + address + " refused: " + refusal);
      }
      socket.close(ec);
      return;
    }
    auto connection = std::make_shared<Connection>(core_, std::move(socket));
    core.connections.insert(connection);
    connection->start();
  }

  // Token bucket per address: max_connects_per_second_per_address, with a
  // burst of the same size.
  bool take_connect_token(const std::string& address) {
    const double rate = core_->opts.max_connects_per_second_per_address;
    if (rate <= 0) return true;
    const auto now = SteadyClock::now();
    auto [it, inserted] = connect_buckets_.try_emplace(address, Bucket{rate, now});
    auto& b = it->second;
    if (!inserted) {
      b.tokens = std::min(rate, b.tokens + rate * std::chrono::duration<double>(now - b.refilled).count());
      b.refilled = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  void arm_sweep() {
    sweep_timer_.expires_after(std::chrono::seconds(1));
    sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || core_->stopping) return;
      const auto now = SteadyClock::now();
      const auto all = core_->connections;
      for (const auto& c : all) c->sweep(now);
      core_->sweep_sessions(now);
      // Buckets that are full again hold nothing worth keeping.
      for (auto it = connect_buckets_.begin(); it != connect_buckets_.end();) {
        it = now - it->second.refilled > std::chrono::seconds(60) ? connect_buckets_.erase(it) : std::next(it);
      }
      arm_sweep();
    });
  }

  struct Bucket {
    double tokens;
    SteadyClock::time_point refilled;
  };

  std::shared_ptr<ListenerCore> core_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_pause_;
  asio::steady_timer sweep_timer_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> listening_{false};
  std::unordered_map<std::string, Bucket> connect_buckets_;
};

MqttListener::MqttListener(MqttListenerOptions options, buffer::Buffer& buffer, buffer::LogFn log)
    : impl_(std::make_shared<Impl>(std::move(options), buffer, std::move(log))) {}
MqttListener::~MqttListener() { stop(); }
const std::string& MqttListener::name() const { return impl_->options().name; }
void MqttListener::start() { impl_->start(); }
void MqttListener::stop() { impl_->stop(); }
void MqttListener::pause() { impl_->pause(); }
void MqttListener::resume() { impl_->resume(); }
SourceStats MqttListener::stats() const { return impl_->stats(); }
std::uint16_t MqttListener::port() const { return impl_->port(); }

}  // namespace tidegate::drivers::mqtt
