#include "listener_connection.h"

#include <openssl/x509v3.h>

#include <random>

#include "tidegate/common/exception_text.h"

namespace tidegate::drivers::mqtt::listener {

using buffer::LogLevel;

namespace {

// MQTT 5 reason codes the listener sends (section 2.4).
constexpr std::uint8_t kUnspecifiedError = 0x80;
constexpr std::uint8_t kProtocolError = 0x82;
constexpr std::uint8_t kBadUserNameOrPassword = 0x86;
constexpr std::uint8_t kNotAuthorized = 0x87;
constexpr std::uint8_t kKeepAliveTimeout = 0x8D;
constexpr std::uint8_t kSessionTakenOver = 0x8E;
constexpr std::uint8_t kPacketIdNotFound = 0x92;
constexpr std::uint8_t kReceiveMaximumExceeded = 0x93;
constexpr std::uint8_t kTopicAliasInvalid = 0x94;
constexpr std::uint8_t kPacketTooLarge = 0x95;
constexpr std::uint8_t kQuotaExceeded = 0x97;
constexpr std::uint8_t kMaximumConnectTime = 0xA0;

std::string assigned_client_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  char text[32];
  std::snprintf(text, sizeof text, "tidegate-auto-%016llx", static_cast<unsigned long long>(rng()));
  return text;
}

}  // namespace

Connection::Connection(std::shared_ptr<ListenerCore> core, tcp::socket socket)
    : core_(std::move(core)), reader_(core_->opts.max_packet_size) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  peer_ = ec ? "?" : remote.address().to_string() + ":" + std::to_string(remote.port());
  stream_ = std::make_shared<Stream>(std::move(socket), core_->tls ? &*core_->tls : nullptr);
  accepted_at_ = last_packet_at_ = SteadyClock::now();
}

void Connection::start() {
  boost::system::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  // Dead peers of 3.1.1 clients that chose no keep alive are found by TCP.
  stream_->socket().set_option(asio::socket_base::keep_alive(true), ignored);
  if (stream_->tls()) return handshake();
  read();
}

// The client's certificate's identity: its first DNS name, else its common name.
namespace {
std::string certificate_identity(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return {};
  std::string identity;
  if (auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && identity.empty(); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_DNS) {
        const auto* text = ASN1_STRING_get0_data(name->d.dNSName);
        identity.assign(reinterpret_cast<const char*>(text), static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName)));
      }
    }
    GENERAL_NAMES_free(names);
  }
  if (identity.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) identity = cn;
  }
  X509_free(cert);
  return identity;
}
}  // namespace

void Connection::handshake() {
  stream_->tls()->async_handshake(asio::ssl::stream_base::server,
                                  [self = shared_from_this()](const boost::system::error_code& ec) {
                                    if (!self->open_) return;
                                    if (ec) {
                                      self->core_->counters.tls_failures_total += 1;
                                      self->core_->log(LogLevel::kInfo,
                                                       self->peer_ + ": TLS handshake failed: " + ec.message());
                                      self->close_socket();
                                      return;
                                    }
                                    self->identity_ = certificate_identity(self->stream_->tls()->native_handle());
                                    self->read();
                                  });
}

void Connection::resume_reading() { read(); }

// ------------------------------------------------------------------ reading

void Connection::read() {
  if (reading_ || closing_ || !open_ || core_->paused || core_->stopping) return;
  // A 3.1.1 client has no Receive Maximum to obey: stop reading while its
  // window is full, and TCP holds it back.
  if (inflight_ >= core_->opts.receive_maximum) return;
  reading_ = true;
  stream_->async_read_some(asio::buffer(read_buf_.data(), read_buf_.size()),
                           [self = shared_from_this(), keep = stream_](const boost::system::error_code& ec,
                                                                       std::size_t n) {
                             self->reading_ = false;
                             self->on_read(ec, n);
                           });
}

void Connection::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (!open_) return;
  if (ec) {
    if (!closing_) {
      // 3.1.2.5: a connection that ends without DISCONNECT publishes the will.
      if (ec != asio::error::eof && ec != asio::error::connection_reset && ec != asio::error::operation_aborted) {
        core_->log(LogLevel::kDebug, peer_ + ": read: " + ec.message());
      }
    }
    close_socket();
    return;
  }
  // Stopping: what comes now is not taken (not acknowledged), so the
  // client sends it again to the next gateway.
  if (core_->stopping) return;
  const auto now = SteadyClock::now();
  last_packet_at_ = now;
  reader_.feed(read_buf_.data(), n);
  if (n == read_buf_.size() && read_buf_.size() < 16 * 1024) read_buf_.resize(read_buf_.size() * 2);
  try {
    handle_packets();
  } catch (const ConnectRefused& e) {
    core_->counters.protocol_errors_total += 1;
    refuse_connect(e.answer_in(), e.reason(), e.reason(), e.what());
    return;
  } catch (const PacketTooLarge& e) {
    core_->counters.protocol_errors_total += 1;
    shut_down(kPacketTooLarge, e.what());
    return;
  } catch (const ProtocolError& e) {
    core_->counters.protocol_errors_total += 1;
    shut_down(kProtocolError, e.what());
    return;
  } catch (...) {
    // A bug or exhausted memory must not end the gateway or other clients:
    // this client's unacknowledged PUBLISHes are resent after it reconnects.
    core_->counters.exceptions_total += 1;
    const std::string what = common::current_exception_text();
    core_->log(LogLevel::kError, peer_ + ": internal error (" + what + "); closing this connection");
    shut_down(kUnspecifiedError, "internal error");
    return;
  }
  partial_since_ = reader_.buffered() > 0 ? (partial_since_ == SteadyClock::time_point{} ? now : partial_since_)
                                          : SteadyClock::time_point{};
  read();
}

void Connection::handle_packets() {
  Batch batch;
  while (open_ && !closing_) {
    auto packet = reader_.next();
    if (!packet) break;
    if (!connected_ && packet->type != PacketType::kConnect) {
      throw ProtocolError("first packet is not CONNECT");  // 3.1.0
    }
    switch (packet->type) {
      case PacketType::kConnect:
        if (connected_) throw ProtocolError("second CONNECT");  // 3.1.0
        on_connect(parse_connect(*packet), batch);
        break;
      case PacketType::kPublish: on_publish(parse_publish(version_, *packet), batch); break;
      case PacketType::kPubrel: on_pubrel(parse_pubrel(version_, *packet), batch); break;
      case PacketType::kPingreq: send(encode_pingresp()); break;
      case PacketType::kSubscribe: on_subscribe(parse_subscribe(version_, *packet)); break;
      case PacketType::kUnsubscribe: {
        const auto request = parse_unsubscribe(version_, *packet);
        send(encode_unsuback(version_, request.packet_id, request.filters.size(), 0x11));  // no subscription existed
        break;
      }
      case PacketType::kDisconnect: on_disconnect(parse_client_disconnect(version_, *packet)); break;
      default:
        throw ProtocolError("unexpected packet type " + std::to_string(static_cast<int>(packet->type)) +
                            " from a client");
    }
  }
  if (!batch.empty()) submit(std::move(batch));
}

// ------------------------------------------------------------------ CONNECT

void Connection::refuse_connect(Version version, std::uint8_t v5_reason, std::uint8_t v311_code,
                                const std::string& why) {
  core_->counters.refused_connections_total += 1;
  core_->log(LogLevel::kInfo, peer_ + ": connection refused: " + why);
  ConnackProperties props;
  props.reason_string = why;
  send(encode_connack(version, false, version == Version::kV5 ? v5_reason : v311_code, props));
  closing_ = true;
  closing_since_ = SteadyClock::now();
  store_will_ = false;
  if (!writing_) close_socket();
}

std::optional<Connection::Refusal> Connection::authenticate(const Connect& c) {
  const auto& opts = core_->opts;
  if (opts.tls.identity_as_username) {
    // Mutual TLS: the certificate is the credential.
    if (identity_.empty()) return Refusal{kNotAuthorized, 0x05, "a client certificate is required"};
    username_ = identity_;
    return std::nullopt;
  }
  if (!c.username) {
    if (c.password) return Refusal{kBadUserNameOrPassword, 0x04, "a password without a user name"};
    if (!opts.allow_anonymous) return Refusal{kNotAuthorized, 0x05, "anonymous clients are not allowed"};
    return std::nullopt;
  }
  if (!core_->passwords) {
    // Nothing to check a name against: say so, rather than let the client
    // believe its credentials protect anything.
    return Refusal{kNotAuthorized, 0x05, "this listener has no password_file; connect without user name"};
  }
  if (!c.password || !core_->passwords->check(*c.username, *c.password)) {
    core_->log(LogLevel::kWarning, peer_ + ": bad user name or password for user '" + *c.username + "'");
    return Refusal{kBadUserNameOrPassword, 0x04, "bad user name or password"};
  }
  username_ = c.username;
  return std::nullopt;
}

void Connection::on_connect(Connect c, Batch& batch) {
  version_ = c.version;
  auto& core = *core_;
  const auto now = SteadyClock::now();
  if (now < core.refusing_until) {
    return refuse_connect(version_, kQuotaExceeded, 0x03,
                          "the gateway's buffer is refusing new readings (full or disk reserve); try again later");
  }
  if (auto refusal = authenticate(c)) {
    core.counters.auth_failures_total += 1;
    return refuse_connect(version_, refusal->v5, refusal->v311, refusal->why);
  }

  bool assigned = false;
  if (c.client_id.empty()) {
    c.client_id = assigned_client_id();
    assigned = true;
  }
  client_id_ = c.client_id;
  will_ = std::move(c.will);

  // Session: 3.1.1 CleanSession = 0 keeps it (as long as we allow), MQTT 5
  // keeps it for its Session Expiry Interval.
  const std::uint32_t wanted_expiry =
      version_ == Version::kV5 ? c.session_expiry_s : (c.clean_start ? 0 : core.opts.max_session_expiry_s);
  const std::uint32_t expiry = std::min(wanted_expiry, core.opts.max_session_expiry_s);
  bool session_present = false;
  auto found = core.sessions.find(client_id_);
  if (found != core.sessions.end()) {
    auto existing = found->second;
    if (auto owner = existing->owner.lock(); owner && owner.get() != this) {
      // 3.1.4-3: the new connection takes the client id over.
      owner->shut_down(kSessionTakenOver, "another connection took over client id '" + client_id_ + "'",
                       c.clean_start);
    }
    if (c.clean_start) {
      if (existing->pending_will) core.store_will(*existing->pending_will, client_id_);  // its session ends now
      for (auto& change : core.forget(*existing)) batch.state.push_back(std::move(change));
      core.sessions.erase(found);
    } else {
      session_ = existing;
      session_->pending_will.reset();  // 3.1.3.2.2: back before the delay ran out
      session_present = true;
    }
  }
  if (!session_) {
    core.make_room_for_a_session();
    session_ = std::make_shared<Session>();
    session_->client_id = client_id_;
    core.sessions[client_id_] = session_;
  }
  session_->owner = weak_from_this();
  if (expiry > 0 && (!session_->durable || session_->expiry_s != expiry)) {
    batch.state.push_back({core.session_key(client_id_), std::to_string(expiry)});
    session_->durable = true;
  } else if (expiry == 0 && session_->durable) {
    for (auto& change : core.forget(*session_)) batch.state.push_back(std::move(change));
    session_->durable = false;
  }
  session_->expiry_s = expiry;

  const std::uint16_t max_keepalive = core.opts.max_keepalive_s;
  std::optional<std::uint16_t> server_keepalive;
  std::uint16_t keepalive = c.keepalive_s;
  if (version_ == Version::kV5 && max_keepalive > 0 && (keepalive == 0 || keepalive > max_keepalive)) {
    keepalive = max_keepalive;
    server_keepalive = keepalive;  // 3.2.2.3.14: the client must use ours
  }
  keepalive_ = std::chrono::seconds(keepalive);
  aliases_.assign(version_ == Version::kV5 ? core.opts.topic_alias_maximum + 1u : 0u, std::string());

  ConnackProperties props;
  props.receive_maximum = core.opts.receive_maximum;
  props.maximum_packet_size = core.opts.max_packet_size;
  props.topic_alias_maximum = core.opts.topic_alias_maximum;
  props.server_keepalive = server_keepalive;
  if (version_ == Version::kV5 && expiry != c.session_expiry_s) props.session_expiry_s = expiry;
  if (assigned && version_ == Version::kV5) props.assigned_client_id = client_id_;
  send(encode_connack(version_, session_present, 0, props));
  connected_ = true;
  core.counters.connections_total += 1;
  core.counters.connected += 1;
  core.log(LogLevel::kDebug, peer_ + ": client '" + client_id_ + "' connected (MQTT " +
                                 (version_ == Version::kV5 ? "5" : "3.1.1") + ", session " +
                                 (session_present ? "resumed" : "new") + ")");
}

// ------------------------------------------------------------------ PUBLISH

void Connection::on_publish(Publish pub, Batch& batch) {
  auto& core = *core_;
  auto& counters = core.counters;
  // Topic aliases (3.3.2.3.4): learn or look up.
  if (pub.topic_alias) {
    const auto alias = *pub.topic_alias;
    if (alias >= aliases_.size()) {
      core.counters.protocol_errors_total += 1;
      return shut_down(kTopicAliasInvalid, "topic alias " + std::to_string(alias) + " is over the maximum of " +
                                               std::to_string(core.opts.topic_alias_maximum));
    }
    if (pub.topic.empty()) {
      if (aliases_[alias].empty()) {
        core.counters.protocol_errors_total += 1;
        return shut_down(kProtocolError, "topic alias " + std::to_string(alias) + " was never set");
      }
      pub.topic = aliases_[alias];
    } else {
      aliases_[alias] = pub.topic;
    }
  }
  if (core.acl && !core.acl->may_publish(username_, client_id_, pub.topic)) {
    // Policy, not input to keep: counted, logged now and then, and MQTT 5
    // clients are told (3.1.1 has no way to say it: acknowledged, dropped).
    counters.acl_denied_total += 1;
    if (counters.acl_denied_total.load() % 1000 == 1) {
      core.log(LogLevel::kWarning, "client '" + client_id_ + "'" + (username_ ? " (user '" + *username_ + "')" : "") +
                                       " may not publish to '" + pub.topic + "' (acl_file); " +
                                       std::to_string(counters.acl_denied_total.load()) + " refused so far");
    }
    if (pub.qos > 0) {
      batch.acks.push_back({pub.qos == 2 ? PacketType::kPubrec : PacketType::kPuback, pub.packet_id, false,
                            kNotAuthorized});
      inflight_ += 1;
    }
    return;
  }
  if (pub.qos > 0) {
    if (version_ == Version::kV5 && inflight_ >= core.opts.receive_maximum) {
      core.counters.protocol_errors_total += 1;
      return shut_down(kReceiveMaximumExceeded, "more than " + std::to_string(core.opts.receive_maximum) +
                                                    " unacknowledged QoS 1/2 PUBLISHes (Receive Maximum)");
    }
    inflight_ += 1;
  }
  counters.received_total += 1;
  counters.bytes_received_total += pub.payload.size();
  counters.last_message_ns = wall_now_ns();
  if (pub.dup) counters.redelivered_total += 1;

  if (pub.qos == 2) {
    if (!session_->qos2_received.insert(pub.packet_id).second) {
      // Already taken: acknowledge again, do not store again (4.3.3).
      counters.qos2_duplicates_total += 1;
      batch.acks.push_back({PacketType::kPubrec, pub.packet_id, true});
      return;
    }
    batch.qos2_new.push_back(pub.packet_id);
    // Saved with the record: after a crash the resend is still known.
    if (session_->durable) batch.state.push_back({core.qos2_key(client_id_, pub.packet_id), std::string()});
  }

  buffer::NewRecord r;
  r.ingest_ns = counters.last_message_ns.load();
  r.clock_synced = core.clock_sync.synchronized();
  r.source = core.opts.name;
  r.topic = std::move(pub.topic);
  r.content_type = std::move(pub.content_type);
  r.payload = std::move(pub.payload);
  const std::string problem = core.mapper.map(r, core.key_fallback(client_id_, username_));
  const PacketType ack_type = pub.qos == 2 ? PacketType::kPubrec : PacketType::kPuback;
  if (!problem.empty()) {
    // Bad input is kept apart and acknowledged: a resend would fail again.
    if (core.buffer.add_dead_letter("", std::nullopt, r, problem) == buffer::Status::kOk) {
      counters.dead_lettered_total += 1;
      if (counters.dead_lettered_total.load() == 1 || counters.dead_lettered_total.load() % 1000 == 0) {
        core.log(LogLevel::kWarning, "dead letter from '" + client_id_ + "' on '" + r.topic + "': " + problem +
                                         " (" + std::to_string(counters.dead_lettered_total.load()) + " so far)");
      }
      if (pub.qos > 0) batch.acks.push_back({ack_type, pub.packet_id, false});
    } else {
      core.note_error("could not store a dead letter: " + problem);
      if (pub.qos == 2) session_->qos2_received.erase(pub.packet_id);
      if (pub.qos > 0) inflight_ -= 1;  // not acknowledged: the client resends it
    }
    return;
  }
  if (pub.qos == 0) {
    batch.qos0 += 1;
    counters.qos0_total += 1;
  } else {
    batch.acks.push_back({ack_type, pub.packet_id, false});
  }
  batch.records.push_back(std::move(r));
}

// QoS 2, second half: the client releases the packet id; from now on a
// PUBLISH with it is a new message.
void Connection::on_pubrel(const Pubrel& pubrel, Batch& batch) {
  const bool known = session_->qos2_received.erase(pubrel.packet_id) > 0;
  if (!known) {
    send(encode_publish_ack(version_, PacketType::kPubcomp, pubrel.packet_id, kPacketIdNotFound));
    return;
  }
  // The PUBCOMP follows the acknowledgements before it, and, for a saved
  // session, the id's removal: a PUBCOMP before it, then a crash, and the
  // id would swallow the client's next message with it.
  if (session_->durable) batch.state.push_back({core_->qos2_key(client_id_, pubrel.packet_id), std::nullopt});
  batch.acks.push_back({PacketType::kPubcomp, pubrel.packet_id, false});
}

void Connection::on_subscribe(const SubscribeRequest& request) {
  core_->counters.subscribes_refused_total += 1;
  core_->log(LogLevel::kInfo, "client '" + client_id_ + "' tried to subscribe to '" + request.filters.front() +
                                  "': refused (this listener takes readings in; it delivers none)");
  send(encode_suback(version_, request.packet_id, std::vector<std::uint8_t>(request.filters.size(), kNotAuthorized),
                     "tidegate's listener takes readings in and delivers none; subscribe at a broker"));
}

void Connection::on_disconnect(const ClientDisconnect& d) {
  // 3.14.4: a normal DISCONNECT discards the will; reason 0x04 asks for it.
  store_will_ = d.reason == 0x04;
  if (d.session_expiry_s && session_) session_->expiry_s = std::min(*d.session_expiry_s, core_->opts.max_session_expiry_s);
  closing_ = true;
  closing_since_ = SteadyClock::now();
  if (!writing_) close_socket();
}

// ------------------------------------------------------------------ commits

void Connection::submit(Batch batch) {
  auto self = shared_from_this();
  auto shared = std::make_shared<Batch>(std::move(batch));
  auto records = std::move(shared->records);
  const auto count = records.size();
  auto state = std::move(shared->state);
  core_->buffer.append(std::move(records), std::move(state), [self, shared, count](const buffer::AppendOutcome& out) {
    // On the buffer's writer thread: hand over to the io thread.
    asio::post(self->core_->io, [self, shared, count, out] {
      self->core_->counters.committed_total += out.ok() ? count : 0;
      self->on_committed(*shared, out);
    });
  });
}

void Connection::on_committed(const Batch& batch, const buffer::AppendOutcome& out) {
  auto& counters = core_->counters;
  for (const auto& ack : batch.acks) inflight_ -= ack.type == PacketType::kPubcomp ? 0 : 1;
  if (out.ok()) {
    if (!open_) return;  // the client resends, as it got no acknowledgement
    std::string packets;
    for (const auto& ack : batch.acks) {
      // A resend's PUBREC confirms the first copy; if that one was refused
      // (its id left the session), stay silent and let the client resend.
      if (ack.qos2_resend && session_->qos2_received.count(ack.packet_id) == 0) continue;
      packets += encode_publish_ack(version_, ack.type, ack.packet_id, ack.reason);
    }
    if (!packets.empty()) send(std::move(packets));
    if (!reading_) read();  // the window may have been full
    return;
  }
  for (const auto& ack : batch.acks) counters.refused_total += ack.type == PacketType::kPubcomp ? 0 : 1;
  counters.qos0_lost_total += batch.qos0;
  for (auto id : batch.qos2_new) session_->qos2_received.erase(id);
  // A PUBREL whose removal was refused stays pending: the client sends it again.
  for (const auto& ack : batch.acks) {
    if (ack.type == PacketType::kPubcomp) session_->qos2_received.insert(ack.packet_id);
  }
  const std::string why = std::string("the buffer refused readings (") + buffer::to_string(out.status) + ")";
  core_->note_error(why + ": " + out.error);
  // Turn new connections away for a moment instead of taking readings only
  // to refuse them; the clients resend what was not acknowledged.
  core_->refusing_until = SteadyClock::now() + std::chrono::seconds(1);
  if (open_ && !closing_) shut_down(kQuotaExceeded, why + "; resend later");
}

// ------------------------------------------------------------------ writing and closing

void Connection::send(std::string bytes) {
  if (!open_) return;
  write_queue_.push_back(std::move(bytes));
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (!open_) return;
  if (write_queue_.empty()) {
    writing_ = false;
    if (closing_) close_socket();
    return;
  }
  writing_ = true;
  auto bytes = std::make_shared<std::string>(std::move(write_queue_.front()));
  write_queue_.pop_front();
  stream_->async_write(asio::buffer(*bytes), [self = shared_from_this(), bytes, keep = stream_](
                                                 const boost::system::error_code& ec, std::size_t) {
    if (ec) {
      self->writing_ = false;
      self->close_socket();
      return;
    }
    self->write_next();
  });
}

void Connection::shut_down(std::uint8_t v5_reason, const std::string& why, bool store_will) {
  if (!open_ || closing_) return;
  store_will_ = store_will;
  if (v5_reason != kSessionTakenOver && v5_reason != 0x8B) {
    core_->note_error("client '" + (client_id_.empty() ? peer_ : client_id_) + "': " + why);
  }
  core_->log(v5_reason == 0x8B || v5_reason == kSessionTakenOver ? LogLevel::kDebug : LogLevel::kInfo,
             peer_ + (client_id_.empty() ? "" : " ('" + client_id_ + "')") + ": closing: " + why);
  // 3.1.1 has no server DISCONNECT; MQTT 5 gets the reason (4.13).
  if (connected_ && version_ == Version::kV5) send(encode_server_disconnect(v5_reason, why));
  closing_ = true;
  closing_since_ = SteadyClock::now();
  if (!writing_) close_socket();
}

void Connection::close_socket() {
  if (!open_) return;
  open_ = false;
  stream_->close();
  write_queue_.clear();
  if (connected_) {
    core_->counters.connected -= 1;
    end_session();
  }
  core_->connections.erase(shared_from_this());
}

// The connection is gone: its will and its session as the client asked.
void Connection::end_session() {
  if (!session_) return;
  auto& sessions = core_->sessions;
  const auto it = sessions.find(client_id_);
  // Still this connection's session (not taken over, not replaced by a
  // clean start)?
  const bool current = it != sessions.end() && it->second == session_ &&
                       (session_->owner.expired() || session_->owner.lock().get() == this);
  const auto now = SteadyClock::now();
  if (will_ && store_will_ && !core_->stopping) {
    const auto delay = current ? std::min(will_->delay_s, session_->expiry_s) : 0u;
    if (delay == 0) {
      core_->store_will(*will_, client_id_);
    } else {
      session_->pending_will = *will_;
      session_->will_due = now + std::chrono::seconds(delay);
    }
  }
  if (!current) return;
  session_->owner.reset();
  if (session_->expiry_s == 0) {
    core_->write_state(core_->forget(*session_));
    sessions.erase(it);
  } else {
    session_->expires_at = now + std::chrono::seconds(session_->expiry_s);
  }
}

void Connection::sweep(SteadyClock::time_point now) {
  if (!open_) return;
  if (closing_) {
    // A client that does not read its DISCONNECT is not waited for.
    if (now - closing_since_ > std::chrono::seconds(5)) close_socket();
    return;
  }
  auto& opts = core_->opts;
  const char* timeout = nullptr;
  std::uint8_t reason = kKeepAliveTimeout;
  if (!connected_ && now - accepted_at_ > opts.connect_timeout) {
    timeout = "no CONNECT within the connect timeout";
    reason = kMaximumConnectTime;
  } else if (partial_since_ != SteadyClock::time_point{} && now - partial_since_ > opts.packet_timeout) {
    timeout = "a packet begun and not finished within the packet timeout";
    reason = kMaximumConnectTime;
  } else if (connected_ && keepalive_.count() > 0 && now - last_packet_at_ > std::chrono::duration_cast<std::chrono::milliseconds>(keepalive_) * 3 / 2) {
    timeout = "nothing received for 1.5 x keep alive";  // 3.1.2.10
  }
  if (!timeout) return;
  core_->counters.timeouts_total += 1;
  shut_down(reason, timeout);
}

}  // namespace tidegate::drivers::mqtt::listener
