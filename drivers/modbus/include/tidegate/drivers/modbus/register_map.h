// A device's register map: its points (name, table, address, type, byte and
// word order, scale, offset, unit), how each is decoded from the registers
// or bits a read returned, and which reads cover them.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tidegate/drivers/modbus/protocol.h"

namespace tidegate::drivers::modbus {

enum class DataType { kBool, kBit, kU16, kS16, kU32, kS32, kU64, kS64, kF32, kF64, kString };
// Byte order of a value's bytes as the registers carry them, for a 32-bit
// value A B C D (A most significant): ABCD big-endian (the standard),
// CDAB word-swapped (low word first: many meters), BADC bytes swapped in
// each word, DCBA little-endian. 16- and 64-bit values follow the same rule
// (words reversed for CDAB and DCBA, bytes swapped in words for BADC and
// DCBA).
enum class ByteOrder { kABCD, kCDAB, kBADC, kDCBA };

std::optional<DataType> parse_data_type(const std::string& text);
std::optional<ByteOrder> parse_byte_order(const std::string& text);
const char* to_string(DataType type);

struct Point {
  std::string name;
  Table table = Table::kHoldingRegister;
  std::uint16_t address = 0;  // 0-based protocol address
  DataType type = DataType::kU16;
  std::uint8_t bit = 0;       // kBit: which bit of the register (0 = least significant)
  std::uint16_t length = 0;   // kString: registers
  ByteOrder order = ByteOrder::kABCD;
  double scale = 1, offset = 0;
  std::string unit;
  std::map<std::string, std::string> tags;  // written beside the value in the record's "tags"
  // Report by exception (exception_report.h): sent when the value leaves
  // its band, and at least every max_silence; otherwise at every poll.
  bool by_exception = false;
  double deadband = 0, deadband_percent = 0;
  std::chrono::milliseconds max_silence{0};
};

// Registers (or bits) a point spans.
std::uint16_t width(const Point& p);

// A documentation number such as 40001 or 300042 (5 or 6 digits, the first
// naming the table: 0 coil, 1 discrete input, 3 input, 4 holding; the rest
// 1-based) as table and 0-based protocol address; nullopt if it is not one.
struct TableAddress {
  Table table;
  std::uint16_t address;
};
std::optional<TableAddress> from_register_number(std::int64_t number);

// The point's value from the words (or bits) of a read, starting at the
// point's own address: a number (scaled; an integer stays one without scale
// and offset), true/false, or text (trailing NULs and spaces trimmed). NaN
// and infinities are not JSON: they become null.
nlohmann::json decode(const Point& p, const std::uint16_t* registers);
nlohmann::json decode_bit(const Point& p, bool bit);

// One read: `count` registers or bits of `table` from `start`, covering the
// points listed (indices into the map).
struct Read {
  Table table;
  std::uint16_t start;
  std::uint16_t count;
  std::vector<std::size_t> points;
};

// The fewest reads that cover the points: points of one table whose spans
// are at most `max_gap` registers (bits) apart share a read, within the
// protocol's limits. Points marked `alone` get a read each; `skip` ones none.
std::vector<Read> plan_reads(const std::vector<Point>& points, std::uint16_t max_gap,
                             const std::vector<bool>& alone = {}, const std::vector<bool>& skip = {});

}  // namespace tidegate::drivers::modbus
