// The byte-level pieces of MQTT packets (section 1.5: data representation;
// 2.1: fixed header; 2.2.2: properties), shared by the client's and the
// listener's packets. Internal to the codec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tidegate/drivers/mqtt/codec.h"

namespace tidegate::drivers::mqtt::wire {

// ---- writing (section 1.5: data representation)

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

inline void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

inline void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// UTF-8 Encoded String and Binary Data (1.5.4, 1.5.6): two-byte length prefix.
inline void put_string(std::string& out, std::string_view s) {
  if (s.size() > 0xffff) throw ProtocolError("string longer than 65535 bytes");
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

// Fixed header (2.1.1) + Remaining Length (2.1.4) + body.
inline std::string frame(PacketType type, std::uint8_t flags, const std::string& body) {
  std::string out;
  out.reserve(body.size() + 5);
  put_u8(out, static_cast<std::uint8_t>((static_cast<std::uint8_t>(type) << 4) | (flags & 0x0f)));
  append_varint(out, static_cast<std::uint32_t>(body.size()));
  out += body;
  return out;
}

// ---- reading

class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  bool empty() const { return pos_ >= data_.size(); }
  std::size_t remaining() const { return data_.size() - pos_; }

  std::uint8_t u8() {
    need(1);
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  std::uint16_t u16() {
    need(2);
    auto v = static_cast<std::uint16_t>((static_cast<std::uint8_t>(data_[pos_]) << 8) |
                                        static_cast<std::uint8_t>(data_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  // Variable Byte Integer (1.5.5): at most four bytes.
  std::uint32_t varint() {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const std::uint8_t b = u8();
      value |= static_cast<std::uint32_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return value;
    }
    throw ProtocolError("malformed variable byte integer");
  }
  std::string_view bytes(std::size_t n) {
    need(n);
    auto v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::string string() { return std::string(bytes(u16())); }
  std::string_view rest() { return bytes(remaining()); }

 private:
  void need(std::size_t n) const {
    if (remaining() < n) throw ProtocolError("packet shorter than its fields");
  }
  std::string_view data_;
  std::size_t pos_ = 0;
};

// The properties a client may receive (section 2.2.2.2), by value type.
enum class PropType { kByte, kTwo, kFour, kVarint, kString, kBinary, kPair };

inline PropType property_type(std::uint8_t id) {
  switch (id) {
    case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
      return PropType::kByte;
    case 0x13: case 0x21: case 0x22: case 0x23:
      return PropType::kTwo;
    case 0x02: case 0x11: case 0x18: case 0x27:
      return PropType::kFour;
    case 0x0B:
      return PropType::kVarint;
    case 0x03: case 0x08: case 0x12: case 0x15: case 0x1A: case 0x1C: case 0x1F:
      return PropType::kString;
    case 0x09: case 0x16:
      return PropType::kBinary;
    case 0x26:
      return PropType::kPair;
    default:
      throw ProtocolError("unknown property identifier " + std::to_string(id));
  }
}

struct Property {
  std::uint8_t id = 0;
  std::uint32_t number = 0;
  std::string text;
};

// Reads a property block (length + properties) and calls visit(Property).
template <typename Visit>
void read_properties(Cursor& c, Visit&& visit) {
  const std::uint32_t length = c.varint();
  Cursor props(c.bytes(length));
  while (!props.empty()) {
    Property p;
    p.id = static_cast<std::uint8_t>(props.varint());
    switch (property_type(p.id)) {
      case PropType::kByte: p.number = props.u8(); break;
      case PropType::kTwo: p.number = props.u16(); break;
      case PropType::kFour: p.number = props.u32(); break;
      case PropType::kVarint: p.number = props.varint(); break;
      case PropType::kString:
      case PropType::kBinary: p.text = props.string(); break;
      case PropType::kPair:
        p.text = props.string();
        p.text += '=';
        p.text += props.string();
        break;
    }
    visit(p);
  }
}

}  // namespace tidegate::drivers::mqtt::wire
