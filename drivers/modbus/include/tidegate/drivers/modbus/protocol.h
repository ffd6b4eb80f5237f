// Modbus application protocol, the read side (functions 1-4), and its two
// framings: TCP (MBAP header) and RTU (unit id, PDU, CRC-16). Bytes in,
// bytes out: no I/O here, so every frame the gateway sends or accepts is
// tested and fuzzed without a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidegate::drivers::modbus {

// The four data tables. Protocol addresses are 0-based within a table.
enum class Table : std::uint8_t { kCoil, kDiscreteInput, kInputRegister, kHoldingRegister };

const char* to_string(Table table);
bool is_bit_table(Table table);
std::uint8_t read_function(Table table);  // 1, 2, 4, 3

// What one read may ask for (Modbus Application Protocol 1.1b3, 6.1-6.4).
inline constexpr std::uint16_t kMaxReadRegisters = 125;
inline constexpr std::uint16_t kMaxReadBits = 2000;

// Exception codes (7.): 1 illegal function, 2 illegal data address, 3
// illegal data value, 4 server device failure, 5 acknowledge, 6 busy,
// 10 gateway path unavailable, 11 gateway target failed to respond.
inline constexpr std::uint8_t kIllegalDataAddress = 2;
std::string exception_text(std::uint8_t code);

std::string read_request_pdu(Table table, std::uint16_t address, std::uint16_t count);

struct ReadResponse {
  enum class Kind { kData, kException, kMalformed };
  Kind kind = Kind::kMalformed;
  std::uint8_t exception = 0;            // kException
  std::vector<std::uint16_t> registers;  // register tables: `count` values
  std::vector<bool> bits;                // bit tables: `count` values
  std::string error;                     // kMalformed: what was wrong
};

// The answer PDU to read_request_pdu(table, _, count).
ReadResponse parse_read_response(Table table, std::uint16_t count, std::string_view pdu);

// TCP: MBAP header (transaction, protocol 0, length, unit) then the PDU.
inline constexpr std::size_t kMbapHeaderBytes = 7;
std::string tcp_frame(std::uint16_t transaction, std::uint8_t unit, std::string_view pdu);
struct MbapHeader {
  std::uint16_t transaction = 0;
  std::uint16_t length = 0;  // unit id + PDU
  std::uint8_t unit = 0;
};
// The header of a TCP frame, or nullopt with `error` (not protocol 0, a
// length outside 2..254).
std::optional<MbapHeader> parse_mbap_header(std::string_view seven_bytes, std::string& error);

// RTU: unit id, PDU, CRC-16/MODBUS (low byte first).
std::uint16_t crc16(std::string_view bytes);
std::string rtu_frame(std::uint8_t unit, std::string_view pdu);
// How long the RTU answer to a read of `count` is, once its first `have`
// bytes (>= 3) are known: an exception frame is 5 bytes, data 5 + byte count.
std::size_t rtu_response_length(std::string_view first_bytes);
// The PDU of a whole RTU frame from `unit`, or nullopt with `error` (CRC,
// another unit).
std::optional<std::string> rtu_pdu(std::string_view frame, std::uint8_t unit, std::string& error);

}  // namespace tidegate::drivers::modbus
