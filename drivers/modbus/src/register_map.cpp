#include "tidegate/drivers/modbus/register_map.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tidegate::drivers::modbus {
namespace {

// The value's bytes, most significant first, from `words` registers as the
// byte order says they were laid out.
std::vector<std::uint8_t> value_bytes(const std::uint16_t* r, std::uint16_t words, ByteOrder order) {
  std::vector<std::uint8_t> b;
  for (std::uint16_t i = 0; i < words; ++i) {
    b.push_back(static_cast<std::uint8_t>(r[i] >> 8));
    b.push_back(static_cast<std::uint8_t>(r[i] & 0xFF));
  }
  const bool swap_bytes = order == ByteOrder::kBADC || order == ByteOrder::kDCBA;
  const bool reverse_words = order == ByteOrder::kCDAB || order == ByteOrder::kDCBA;
  if (swap_bytes) {
    for (std::size_t i = 0; i + 1 < b.size(); i += 2) std::swap(b[i], b[i + 1]);
  }
  if (reverse_words) {
    std::vector<std::uint8_t> w(b.size());
    for (std::size_t i = 0; i < words; ++i) {
      w[2 * i] = b[2 * (words - 1 - i)];
      w[2 * i + 1] = b[2 * (words - 1 - i) + 1];
    }
    b = std::move(w);
  }
  return b;
}

std::uint64_t big_endian(const std::vector<std::uint8_t>& b) {
  std::uint64_t v = 0;
  for (const auto byte : b) v = v << 8 | byte;
  return v;
}

nlohmann::json scaled(const Point& p, double v) {
  if (!std::isfinite(v)) return nullptr;
  v = v * p.scale + p.offset;
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

template <typename Int>
nlohmann::json integer(const Point& p, Int v) {
  if (p.scale == 1 && p.offset == 0) return v;
  return scaled(p, static_cast<double>(v));
}

}  // namespace

std::optional<DataType> parse_data_type(const std::string& t) {
  static const std::map<std::string, DataType> names = {
      {"bool", DataType::kBool}, {"bit", DataType::kBit},   {"u16", DataType::kU16}, {"s16", DataType::kS16},
      {"u32", DataType::kU32},   {"s32", DataType::kS32},   {"u64", DataType::kU64}, {"s64", DataType::kS64},
      {"f32", DataType::kF32},   {"f64", DataType::kF64},   {"string", DataType::kString}};
  const auto it = names.find(t);
  return it == names.end() ? std::nullopt : std::optional<DataType>(it->second);
}

std::optional<ByteOrder> parse_byte_order(const std::string& t) {
  if (t == "ABCD") return ByteOrder::kABCD;
  if (t == "CDAB") return ByteOrder::kCDAB;
  if (t == "BADC") return ByteOrder::kBADC;
  if (t == "DCBA") return ByteOrder::kDCBA;
  return std::nullopt;
}

const char* to_string(DataType type) {
  switch (type) {
    case DataType::kBool: return "bool";
    case DataType::kBit: return "bit";
    case DataType::kU16: return "u16";
    case DataType::kS16: return "s16";
    case DataType::kU32: return "u32";
    case DataType::kS32: return "s32";
    case DataType::kU64: return "u64";
    case DataType::kS64: return "s64";
    case DataType::kF32: return "f32";
    case DataType::kF64: return "f64";
    case DataType::kString: return "string";
  }
  return "?";
}

std::uint16_t width(const Point& p) {
  switch (p.type) {
    case DataType::kBool:
    case DataType::kBit:
    case DataType::kU16:
    case DataType::kS16: return 1;
    case DataType::kU32:
    case DataType::kS32:
    case DataType::kF32: return 2;
    case DataType::kU64:
    case DataType::kS64:
    case DataType::kF64: return 4;
    case DataType::kString: return std::max<std::uint16_t>(p.length, 1);
  }
  return 1;
}

std::optional<TableAddress> from_register_number(std::int64_t n) {
  // 5 digits: 0xxxx..4xxxx with 1..9999; 6 digits: 1..65536.
  const bool six = n >= 100'000;
  const std::int64_t span = six ? 100'000 : 10'000;
  const std::int64_t kind = n / span, offset = n % span;
  if (n < 1 || n >= 10 * span || offset < 1 || offset > 65'536) return std::nullopt;
  const auto address = static_cast<std::uint16_t>(offset - 1);
  switch (kind) {
    case 0: return TableAddress{Table::kCoil, address};
    case 1: return TableAddress{Table::kDiscreteInput, address};
    case 3: return TableAddress{Table::kInputRegister, address};
    case 4: return TableAddress{Table::kHoldingRegister, address};
    default: return std::nullopt;
  }
}

nlohmann::json decode_bit(const Point& p, bool bit) {
  (void)p;
  return bit;
}

nlohmann::json decode(const Point& p, const std::uint16_t* r) {
  switch (p.type) {
    case DataType::kBool: return r[0] != 0;
    case DataType::kBit: return ((r[0] >> p.bit) & 1u) != 0;
    case DataType::kU16:
    case DataType::kS16: {
      const auto v = static_cast<std::uint16_t>(big_endian(value_bytes(r, 1, p.order)));
      if (p.type == DataType::kU16) return integer(p, v);
      return integer(p, static_cast<std::int16_t>(v));
    }
    case DataType::kU32:
    case DataType::kS32:
    case DataType::kF32: {
      const auto v = static_cast<std::uint32_t>(big_endian(value_bytes(r, 2, p.order)));
      if (p.type == DataType::kU32) return integer(p, v);
      if (p.type == DataType::kS32) return integer(p, static_cast<std::int32_t>(v));
      float f;
      std::memcpy(&f, &v, sizeof f);
      return scaled(p, static_cast<double>(f));
    }
    case DataType::kU64:
    case DataType::kS64:
    case DataType::kF64: {
      const std::uint64_t v = big_endian(value_bytes(r, 4, p.order));
      if (p.type == DataType::kU64) return integer(p, v);
      if (p.type == DataType::kS64) return integer(p, static_cast<std::int64_t>(v));
      double d;
      std::memcpy(&d, &v, sizeof d);
      return scaled(p, d);
    }
    case DataType::kString: {
      // Characters in register order; BADC and DCBA put the low byte first.
      const bool low_first = p.order == ByteOrder::kBADC || p.order == ByteOrder::kDCBA;
      std::string s;
      for (std::uint16_t i = 0; i < width(p); ++i) {
        const char hi = static_cast<char>(r[i] >> 8), lo = static_cast<char>(r[i] & 0xFF);
        s += low_first ? lo : hi;
        s += low_first ? hi : lo;
      }
      while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
      // Not UTF-8 text: each byte as a Latin-1 character, so the JSON stays valid.
      std::string text;
      for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80) {
          text += c;
        } else {
          text += static_cast<char>(0xC0 | (u >> 6));
          text += static_cast<char>(0x80 | (u & 0x3F));
        }
      }
      return text;
    }
  }
  return nullptr;
}

std::vector<Read> plan_reads(const std::vector<Point>& points, std::uint16_t max_gap, const std::vector<bool>& alone,
                             const std::vector<bool>& skip) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (i < skip.size() && skip[i]) continue;
    order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& pa = points[a];
    const auto& pb = points[b];
    return pa.table != pb.table ? pa.table < pb.table : pa.address < pb.address;
  });
  std::vector<Read> reads;
  bool last_alone = true;
  for (const std::size_t i : order) {
    const Point& p = points[i];
    const bool single = i < alone.size() && alone[i];
    const std::uint32_t end = std::uint32_t{p.address} + width(p);  // one past
    const std::uint32_t limit = is_bit_table(p.table) ? kMaxReadBits : kMaxReadRegisters;
    if (!reads.empty() && !single && !last_alone) {
      Read& r = reads.back();
      const std::uint32_t r_end = std::uint32_t{r.start} + r.count;
      if (r.table == p.table && p.address <= r_end + max_gap && std::max(end, r_end) - r.start <= limit) {
        r.count = static_cast<std::uint16_t>(std::max(end, r_end) - r.start);
        r.points.push_back(i);
        continue;
      }
    }
    reads.push_back({p.table, p.address, static_cast<std::uint16_t>(end - p.address), {i}});
    last_alone = single;
  }
  return reads;
}

}  // namespace tidegate::drivers::modbus
