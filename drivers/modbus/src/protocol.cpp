#include "tidegate/drivers/modbus/protocol.h"

namespace tidegate::drivers::modbus {
namespace {

void put16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}

std::uint8_t byte_at(std::string_view s, std::size_t i) { return static_cast<std::uint8_t>(s[i]); }
std::uint16_t get16(std::string_view s, std::size_t i) {
  return static_cast<std::uint16_t>(byte_at(s, i) << 8 | byte_at(s, i + 1));
}

}  // namespace

const char* to_string(Table table) {
  switch (table) {
    case Table::kCoil: return "coil";
    case Table::kDiscreteInput: return "discrete_input";
    case Table::kInputRegister: return "input";
    case Table::kHoldingRegister: return "holding";
  }
  return "?";
}

bool is_bit_table(Table table) { return table == Table::kCoil || table == Table::kDiscreteInput; }

std::uint8_t read_function(Table table) {
  switch (table) {
    case Table::kCoil: return 1;
    case Table::kDiscreteInput: return 2;
    case Table::kHoldingRegister: return 3;
    case Table::kInputRegister: return 4;
  }
  return 0;
}

std::string exception_text(std::uint8_t code) {
  switch (code) {
    case 1: return "exception 1 (illegal function)";
    case 2: return "exception 2 (illegal data address)";
    case 3: return "exception 3 (illegal data value)";
    case 4: return "exception 4 (server device failure)";
    case 5: return "exception 5 (acknowledge)";
    case 6: return "exception 6 (server device busy)";
    case 8: return "exception 8 (memory parity error)";
    case 10: return "exception 10 (gateway path unavailable)";
    case 11: return "exception 11 (gateway target device failed to respond)";
    default: return "exception " + std::to_string(code);
  }
}

std::string read_request_pdu(Table table, std::uint16_t address, std::uint16_t count) {
  std::string pdu;
  pdu += static_cast<char>(read_function(table));
  put16(pdu, address);
  put16(pdu, count);
  return pdu;
}

ReadResponse parse_read_response(Table table, std::uint16_t count, std::string_view pdu) {
  ReadResponse r;
  const std::uint8_t function = read_function(table);
  if (pdu.empty()) {
    r.error = "empty answer";
    return r;
  }
  if (byte_at(pdu, 0) == (function | 0x80)) {
    if (pdu.size() != 2) {
      r.error = "exception answer of " + std::to_string(pdu.size()) + " bytes";
      return r;
    }
    r.kind = ReadResponse::Kind::kException;
    r.exception = byte_at(pdu, 1);
    return r;
  }
  if (byte_at(pdu, 0) != function) {
    r.error = "answer to function " + std::to_string(byte_at(pdu, 0)) + ", asked " + std::to_string(function);
    return r;
  }
  const std::size_t expected = is_bit_table(table) ? (count + 7u) / 8u : 2u * count;
  if (pdu.size() < 2 || byte_at(pdu, 1) != expected || pdu.size() != 2 + expected) {
    r.error = "answer of " + std::to_string(pdu.size()) + " bytes for " + std::to_string(count) +
              (is_bit_table(table) ? " bits" : " registers");
    return r;
  }
  if (is_bit_table(table)) {
    r.bits.resize(count);
    for (std::uint16_t i = 0; i < count; ++i) r.bits[i] = (byte_at(pdu, 2 + i / 8u) >> (i % 8u)) & 1u;
  } else {
    r.registers.resize(count);
    for (std::uint16_t i = 0; i < count; ++i) r.registers[i] = get16(pdu, 2 + 2u * i);
  }
  r.kind = ReadResponse::Kind::kData;
  return r;
}

std::string tcp_frame(std::uint16_t transaction, std::uint8_t unit, std::string_view pdu) {
  std::string out;
  put16(out, transaction);
  put16(out, 0);  // protocol: Modbus
  put16(out, static_cast<std::uint16_t>(pdu.size() + 1));
  out += static_cast<char>(unit);
  out.append(pdu);
  return out;
}

std::optional<MbapHeader> parse_mbap_header(std::string_view h, std::string& error) {
  if (h.size() < kMbapHeaderBytes) {
    error = "short header";
    return std::nullopt;
  }
  if (get16(h, 2) != 0) {
    error = "protocol id " + std::to_string(get16(h, 2)) + " is not Modbus (0)";
    return std::nullopt;
  }
  MbapHeader m{get16(h, 0), get16(h, 4), byte_at(h, 6)};
  if (m.length < 2 || m.length > 254) {
    error = "frame length " + std::to_string(m.length) + " outside 2..254";
    return std::nullopt;
  }
  return m;
}

std::uint16_t crc16(std::string_view bytes) {
  std::uint16_t crc = 0xFFFF;
  for (const char c : bytes) {
    crc ^= static_cast<std::uint8_t>(c);
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? static_cast<std::uint16_t>((crc >> 1) ^ 0xA001) : crc >> 1;
  }
  return crc;
}

std::string rtu_frame(std::uint8_t unit, std::string_view pdu) {
  std::string out;
  out += static_cast<char>(unit);
  out.append(pdu);
  const std::uint16_t crc = crc16(out);
  out += static_cast<char>(crc & 0xFF);
  out += static_cast<char>(crc >> 8);
  return out;
}

std::size_t rtu_response_length(std::string_view first) {
  if (first.size() < 3) return 0;
  if (byte_at(first, 1) & 0x80) return 5;
  return 5u + byte_at(first, 2);
}

std::optional<std::string> rtu_pdu(std::string_view frame, std::uint8_t unit, std::string& error) {
  if (frame.size() < 4) {
    error = "RTU frame of " + std::to_string(frame.size()) + " bytes";
    return std::nullopt;
  }
  const std::uint16_t crc = crc16(frame.substr(0, frame.size() - 2));
  const auto got = static_cast<std::uint16_t>(byte_at(frame, frame.size() - 2) | byte_at(frame, frame.size() - 1) << 8);
  if (crc != got) {
    error = "CRC error";
    return std::nullopt;
  }
  if (byte_at(frame, 0) != unit) {
    error = "answer from unit " + std::to_string(byte_at(frame, 0)) + ", asked " + std::to_string(unit);
    return std::nullopt;
  }
  return std::string(frame.substr(1, frame.size() - 3));
}

}  // namespace tidegate::drivers::modbus
