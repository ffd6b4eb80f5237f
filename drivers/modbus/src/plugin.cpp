// [[sources.modbus]]: its keys, register maps and devices, checked as a
// whole (a device names a map that exists, a point has one address).
#include <set>
#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio/ip/address.hpp>

#include "tidegate/drivers/modbus/modbus_source.h"
#include "tidegate/plugins/source_plugin.h"

namespace tidegate::drivers::modbus {
namespace {

using config::Context;
using config::in_quotes;
using config::Section;

// Names the record uses itself: a point may not take them.
const std::set<std::string> kReserved = {"time", "units", "tags", "raw"};

std::optional<Table> parse_table(const std::string& t) {
  if (t == "coil") return Table::kCoil;
  if (t == "discrete_input") return Table::kDiscreteInput;
  if (t == "input") return Table::kInputRegister;
  if (t == "holding") return Table::kHoldingRegister;
  return std::nullopt;
}

// A point's tags: a table of strings, e.g. { zone = "north", asset = "AHU-1" }.
void read_tags(Section& s, Point& p) {
  s.declare("tags", "table of strings", "{}",
            "Written beside the value in the record's \"tags\", e.g. { zone = \"north\", asset = \"AHU-1\" }.");
  const auto* n = s.node("tags");
  if (!n || s.context().docs) return;
  const auto* t = n->as_table();
  if (!t) {
    s.context().error(s.key_path("tags"), "expected a table of strings, e.g. { zone = \"north\" }");
    return;
  }
  for (const auto& [k, v] : *t) {
    auto text = v.value_exact<std::string>();
    if (!text) {
      s.context().error(s.key_path("tags") + "." + std::string(k.str()), "expected a string");
      continue;
    }
    p.tags.emplace(std::string(k.str()), *text);
  }
}

void read_point(Section& s, Point& p, std::chrono::milliseconds default_max_silence) {
  Context& ctx = s.context();
  p.name = s.text("name", "", "Required. The field the value has in the record.");
  const auto number = s.integer("register", 0, 0, 465'536,
                                "The register as data sheets number it: 5 or 6 digits, the first naming the table "
                                "(0 coil, 1 discrete input, 3 input register, 4 holding register), the rest 1-based "
                                "(30001 is input register 0). Give this or `table` and `address`.");
  const auto table = s.choice("table", "holding", {"coil", "discrete_input", "input", "holding"},
                              "With `address`: the table.");
  const auto address = s.integer("address", -1, -1, 65'535,
                                 "The 0-based protocol address within `table` (what goes on the wire: data sheet "
                                 "number 40001 is holding address 0).");
  const auto type = s.choice("type", "u16", {"bool", "bit", "u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64", "string"},
                             "How the registers are read: bool (non-zero register, or a coil/discrete input), bit "
                             "(one bit of a register), 16/32/64-bit unsigned or signed integers, IEEE 754 floats, or "
                             "text of `length` registers.");
  p.type = *parse_data_type(type);
  p.bit = static_cast<std::uint8_t>(s.integer("bit", 0, 0, 15, "type = \"bit\": which bit (0 = least significant)."));
  p.length = static_cast<std::uint16_t>(s.integer("length", 1, 1, 125, "type = \"string\": registers of text."));
  const auto order = s.choice("order", "ABCD", {"ABCD", "CDAB", "BADC", "DCBA"},
                              "Byte order of the value, as A B C D for a 32-bit value's bytes, most significant "
                              "first: ABCD big-endian (the standard), CDAB low word first, BADC bytes swapped in "
                              "each word, DCBA little-endian. 16- and 64-bit values follow the same rule.");
  p.order = *parse_byte_order(order);
  p.scale = s.number("scale", 1, -1e300, 1e300, "The value is multiplied by this ...");
  p.offset = s.number("offset", 0, -1e300, 1e300, "... and this is added.");
  p.unit = s.text("unit", "", "Unit, written beside the value in the record's \"units\".");
  read_tags(s, p);
  p.deadband = s.number("deadband", 0, 0, 1e300,
                        "Report by exception: the value is sent only when it differs from the value last sent by "
                        "more than this (0: any change; for bool and text, any change), and at every `max_silence`. "
                        "Without `deadband` or `deadband_percent` the point is sent at every poll.");
  p.deadband_percent = s.number("deadband_percent", 0, 0, 1e6,
                                "Report by exception with a band in percent of the value last sent; with `deadband` "
                                "too, the wider band counts.");
  p.max_silence = s.duration("max_silence", default_max_silence,
                             "A point reported by exception that has not been sent for this long makes the next "
                             "record carry every point of the device (a full confirmation). Default: the source's.");
  p.by_exception = s.present("deadband") || s.present("deadband_percent");
  if (ctx.docs) return;
  if (p.max_silence.count() <= 0) ctx.error(s.key_path("max_silence"), "must be more than 0");
  if (p.name.empty()) ctx.error(s.key_path("name"), "required: the point's name");
  if (kReserved.count(p.name)) ctx.error(s.key_path("name"), in_quotes(p.name) + " is a name the record uses itself");
  if (number > 0 && address >= 0) {
    ctx.error(s.key_path("register"), "give `register` (data sheet number) or `table` and `address`, not both");
  } else if (number > 0) {
    const auto ta = from_register_number(number);
    if (!ta) {
      ctx.error(s.key_path("register"), std::to_string(number) +
                                            " is not a register number (0xxxx, 1xxxx, 3xxxx or 4xxxx, 1-based)");
    } else {
      p.table = ta->table;
      p.address = ta->address;
    }
  } else if (address >= 0) {
    p.table = *parse_table(table);
    p.address = static_cast<std::uint16_t>(address);
  } else {
    ctx.error(s.key_path("address"), "required: `register` or `table` and `address`");
  }
  const bool bits = is_bit_table(p.table);
  if (bits && p.type != DataType::kBool) {
    ctx.error(s.key_path("type"), "coils and discrete inputs are bits: type = \"bool\"");
  }
  if (std::uint32_t{p.address} + width(p) > 65'536) ctx.error(s.key_path("address"), "the point runs past address 65535");
}

// tcp://ADDRESS[:PORT], rtu+tcp://ADDRESS:PORT, rtu:///dev/ttyX.
bool parse_url(const std::string& url, LinkOptions& link) {
  // ADDRESS[:PORT], the address a literal IP address.
  auto host_port = [&](const std::string& rest, bool port_required) {
    const auto colon = rest.rfind(':');
    link.host = colon == std::string::npos ? rest : rest.substr(0, colon);
    if (colon == std::string::npos) {
      if (port_required) return false;
    } else {
      try {
        std::size_t used = 0;
        const int port = std::stoi(rest.substr(colon + 1), &used);
        if (used != rest.size() - colon - 1 || port < 1 || port > 65'535) return false;
        link.port = static_cast<std::uint16_t>(port);
      } catch (const std::exception&) {
        return false;
      }
    }
    boost::system::error_code ec;
    boost::asio::ip::make_address(link.host, ec);
    return !ec;
  };
  if (url.rfind("tcp://", 0) == 0) {
    link.transport = Transport::kTcp;
    return host_port(url.substr(6), false);
  }
  if (url.rfind("rtu+tcp://", 0) == 0) {
    link.transport = Transport::kRtuOverTcp;
    return host_port(url.substr(10), true);
  }
  if (url.rfind("rtu://", 0) == 0) {
    link.transport = Transport::kRtuSerial;
    link.device = url.substr(6);
    return link.device.size() > 1 && link.device[0] == '/';
  }
  return false;
}

void read_options(Section& s, ModbusOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "modbus", "Name of this source.");
  o.max_gap = static_cast<std::uint16_t>(
      s.integer("max_gap", 8, 0, 100,
                "Registers (bits) no point needs that one read may span to cover two points: fewer requests, a "
                "little more on the wire. A read the device refuses (exception 2) is split by itself."));
  o.topic = s.text("topic", "modbus/{device}", "Topic of the records; {device} is the device's name.");
  o.raw = s.boolean("raw", false, "Add each point's registers (\"raw\": {\"point\": [words]}) to the record.");
  const auto default_interval = s.duration("interval", std::chrono::seconds(1), "Poll interval of its devices.");
  const auto default_timeout = s.duration("timeout", std::chrono::seconds(1), "How long a device has to answer a request.");
  o.max_backoff = s.duration("max_backoff", std::chrono::minutes(1),
                             "A device that does not answer is polled at its interval doubled per failed poll, up to "
                             "this.");
  const auto max_silence = s.duration(
      "max_silence", std::chrono::minutes(15),
      "Default of the points' `max_silence`: how long a point reported by exception (with a `deadband`) may go "
      "unsent before a record carries every point again.");
  if (!ctx.docs && max_silence.count() <= 0) ctx.error(s.key_path("max_silence"), "must be more than 0");
  std::map<std::string, std::size_t> map_index;
  s.tables("maps", s.doc_section() + ".maps", "Register maps, each defined once and used by any number of devices.",
           [&](Section& m, std::size_t) {
             PointMap map;
             map.name = m.text("name", "", "Required. Devices name it in `map`.");
             std::set<std::string> names;
             m.tables("points", m.doc_section() + ".points", "The map's points, in any order.",
                      [&](Section& pt, std::size_t) {
                        Point p;
                        read_point(pt, p, max_silence);
                        if (!ctx.docs && !names.insert(p.name).second)
                          ctx.error(pt.key_path("name"), "duplicate point name " + in_quotes(p.name));
                        map.points.push_back(std::move(p));
                      });
             if (!ctx.docs && map.name.empty()) ctx.error(m.key_path("name"), "required: the map's name");
             if (!ctx.docs && map.points.empty()) ctx.error(m.key_path("points"), "a map needs at least one point");
             if (!ctx.docs && !map_index.emplace(map.name, o.maps.size()).second)
               ctx.error(m.key_path("name"), "duplicate map name " + in_quotes(map.name));
             o.maps.push_back(std::move(map));
           });
  SerialOptions serial;
  serial.baud = static_cast<unsigned>(s.integer("baud", 9600, 300, 921'600, "RTU on a serial port: baud rate."));
  const auto parity = s.choice("parity", "even", {"none", "even", "odd"},
                               "RTU on a serial port: parity (the Modbus specification's default is even).");
  serial.parity = parity == "none" ? 'N' : parity == "odd" ? 'O' : 'E';
  serial.data_bits = static_cast<unsigned>(s.integer("data_bits", 8, 7, 8, "RTU on a serial port: data bits."));
  serial.stop_bits = static_cast<unsigned>(s.integer("stop_bits", 1, 1, 2, "RTU on a serial port: stop bits."));
  serial.frame_gap = std::chrono::duration_cast<std::chrono::microseconds>(
      s.duration("frame_gap", std::chrono::milliseconds(0),
                 "RTU: silence before each request. 0: 3.5 character times at the baud rate (at least 1.75 ms)."));
  std::map<std::string, SerialOptions> lines;  // serial port -> its settings
  std::set<std::string> device_names;
  s.tables("devices", s.doc_section() + ".devices", "The devices polled; each becomes one record per poll.",
           [&](Section& d, std::size_t) {
             DeviceOptions dev;
             dev.name = d.text("name", "", "Required. The records' device (partition key).");
             const auto url = d.text("url", "",
                                     "Required. tcp://ADDRESS[:PORT] (Modbus TCP, port 502 by default), "
                                     "rtu+tcp://ADDRESS:PORT (RTU frames through a serial server) or rtu:///dev/ttyUSB0 "
                                     "(RTU on a serial port). Devices with the same url share its connection.");
             dev.unit_id = static_cast<std::uint8_t>(
                 d.integer("unit_id", 1, 0, 255, "Unit id (slave address); several devices behind one gateway share "
                                                 "its connection."));
             const auto map = d.text("map", "", "Required. The register map's name.");
             dev.interval = d.duration("interval", default_interval, "Its poll interval (default: the source's).");
             dev.timeout = d.duration("timeout", default_timeout, "Its request timeout (default: the source's).");
             if (ctx.docs) return;
             if (dev.name.empty()) ctx.error(d.key_path("name"), "required: the device's name");
             if (!device_names.insert(dev.name).second)
               ctx.error(d.key_path("name"), "duplicate device name " + in_quotes(dev.name));
             dev.link.serial = serial;
             if (!parse_url(url, dev.link)) {
               ctx.error(d.key_path("url"), "expected tcp://ADDRESS[:PORT], rtu+tcp://ADDRESS:PORT or rtu:///dev/PORT "
                                            "(a literal IP address), not " + in_quotes(url));
             }
             if (dev.link.transport == Transport::kRtuSerial) {
               auto [it, fresh] = lines.emplace(dev.link.device, dev.link.serial);
               const auto& a = it->second;
               const auto& b = dev.link.serial;
               if (!fresh && (a.baud != b.baud || a.parity != b.parity || a.data_bits != b.data_bits ||
                              a.stop_bits != b.stop_bits || a.frame_gap != b.frame_gap)) {
                 ctx.error(d.key_path("url"), "another device on " + dev.link.device +
                                                  " has other serial settings: a line has one");
               }
             }
             const auto it = map_index.find(map);
             if (it == map_index.end()) {
               ctx.error(d.key_path("map"), "no map named " + in_quotes(map));
             } else {
               dev.map = it->second;
             }
             if (dev.interval.count() <= 0) ctx.error(d.key_path("interval"), "must be more than 0");
             if (dev.timeout.count() <= 0) ctx.error(d.key_path("timeout"), "must be more than 0");
             o.devices.push_back(std::move(dev));
           });
  if (!ctx.docs && o.devices.empty()) ctx.error(s.key_path("devices"), "at least one device is needed");
}

}  // namespace
}  // namespace tidegate::drivers::modbus

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SourceDescriptor modbus_source_plugin() {
  return {"modbus", "Modbus devices (TCP, RTU over TCP, RTU on a serial line) polled by register maps ([[sources.modbus]], docs/drivers.md).",
          [](config::Section& s, std::size_t) {
            drivers::modbus::ModbusOptions o;
            drivers::modbus::read_options(s, o);
            return source_plan<drivers::modbus::ModbusSource>(s, std::move(o));
          }};
}

}  // namespace tidegate::plugins
