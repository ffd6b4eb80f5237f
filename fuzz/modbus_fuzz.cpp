// Modbus answers as devices send them: the MBAP header, the read PDU for
// each table and count (its data decoded as every point type would take
// it), and RTU frames. The first two bytes pick the table and the count the
// request asked for.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tidegate/drivers/modbus/protocol.h"
#include "tidegate/drivers/modbus/register_map.h"

namespace mb = tidegate::drivers::modbus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto table = static_cast<mb::Table>(data[0] % 4);
  const auto count = static_cast<std::uint16_t>(1 + data[1] % 130);
  const std::string bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  std::string error;
  (void)mb::parse_mbap_header(bytes, error);
  (void)mb::rtu_response_length(bytes);
  if (const auto pdu = mb::rtu_pdu(bytes, data[1], error)) (void)mb::parse_read_response(table, count, *pdu);
  const auto r = mb::parse_read_response(table, count, bytes);
  if (r.kind == mb::ReadResponse::Kind::kData && !mb::is_bit_table(table)) {
    for (int type = 0; type <= static_cast<int>(mb::DataType::kString); ++type) {
      mb::Point p;
      p.type = static_cast<mb::DataType>(type);
      p.length = count;
      p.order = static_cast<mb::ByteOrder>(data[0] / 4 % 4);
      p.bit = static_cast<std::uint8_t>(data[1] % 16);
      if (mb::width(p) <= r.registers.size()) (void)mb::decode(p, r.registers.data()).dump();
    }
  }
  return 0;
}
