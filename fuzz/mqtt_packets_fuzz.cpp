// The MQTT codec on bytes from the network, both directions: what the
// listener reads from devices (CONNECT, PUBLISH, PUBREL, SUBSCRIBE, ...) and
// what the MQTT source reads from a broker (CONNACK, PUBLISH, SUBACK, ...).
// Malformed input may only raise ProtocolError; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "tidegate/drivers/mqtt/codec.h"

using namespace tidegate::drivers::mqtt;

namespace {

void parse_as_server(Version v, const Packet& p) {
  switch (p.type) {
    case PacketType::kConnect: (void)parse_connect(p); break;
    case PacketType::kPublish: (void)parse_publish(v, p); break;
    case PacketType::kPubrel: (void)parse_pubrel(v, p); break;
    case PacketType::kSubscribe: (void)parse_subscribe(v, p); break;
    case PacketType::kUnsubscribe: (void)parse_unsubscribe(v, p); break;
    case PacketType::kDisconnect: (void)parse_client_disconnect(v, p); break;
    case PacketType::kPuback: (void)parse_puback(v, p); break;
    default: break;
  }
}

void parse_as_client(Version v, const Packet& p) {
  switch (p.type) {
    case PacketType::kConnack: (void)parse_connack(v, p); break;
    case PacketType::kPublish: (void)parse_publish(v, p); break;
    case PacketType::kSuback: (void)parse_suback(v, p); break;
    case PacketType::kPuback: (void)parse_puback(v, p); break;
    case PacketType::kDisconnect: (void)parse_disconnect(v, p); break;
    default: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A small maximum so that the too-large path is reached too.
  PacketReader reader(4096);
  reader.feed(reinterpret_cast<const char*>(data), size);
  try {
    while (auto packet = reader.next()) {
      for (const auto v : {Version::kV311, Version::kV5}) {
        try {
          parse_as_server(v, *packet);
        } catch (const ProtocolError&) {
        }
        try {
          parse_as_client(v, *packet);
        } catch (const ProtocolError&) {
        }
      }
    }
  } catch (const ProtocolError&) {
  }
  return 0;
}
