// The Modbus source against a real Modbus TCP server (libmodbus) on
// loopback: every type and byte order, merged reads and their fallback,
// devices that are dead, silent or refusing beside healthy ones, a device
// that goes away and comes back.
#include <gtest/gtest.h>
#include <modbus.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include "modbus_server.h"
#include "mosquitto.h"
#include "process.h"
#include "test_support.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/modbus/modbus_source.h"

namespace tidegate::drivers::modbus {
namespace {

using Json = nlohmann::json;
using testing::ModbusServer;

// The registers a device holds for a value whose bytes (most significant
// first) are `b`, laid out in `order`: written independently of the
// decoder, from the orders' definitions.
std::vector<std::uint16_t> layout(const std::vector<std::uint8_t>& b, const std::string& order) {
  std::vector<std::uint16_t> words;
  for (std::size_t i = 0; i < b.size(); i += 2) {
    const bool swap = order == "BADC" || order == "DCBA";
    words.push_back(swap ? static_cast<std::uint16_t>(b[i + 1] << 8 | b[i]) : static_cast<std::uint16_t>(b[i] << 8 | b[i + 1]));
  }
  if (order == "CDAB" || order == "DCBA") std::reverse(words.begin(), words.end());
  return words;
}

template <typename T>
std::vector<std::uint8_t> bytes_of(T v) {
  std::vector<std::uint8_t> out(sizeof v);
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  for (std::size_t i = 0; i < sizeof v; ++i) out[sizeof v - 1 - i] = static_cast<std::uint8_t>(u >> (8 * i));
  return out;
}

Point point(const std::string& name, std::uint16_t address, DataType type, ByteOrder order = ByteOrder::kABCD,
            Table table = Table::kHoldingRegister) {
  Point p;
  p.name = name;
  p.address = address;
  p.type = type;
  p.order = order;
  p.table = table;
  return p;
}

class ModbusTest : public ::testing::Test {
 protected:
  std::unique_ptr<buffer::Buffer> open() {
    buffer::BufferOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_window = std::chrono::milliseconds(1);
    o.log = log_.fn();
    return buffer::Buffer::open(o);
  }
  static DeviceOptions device(const std::string& name, std::uint16_t port, std::uint8_t unit = 1,
                              std::chrono::milliseconds interval = std::chrono::milliseconds(100)) {
    DeviceOptions d;
    d.name = name;
    d.link.host = "127.0.0.1";
    d.link.port = port;
    d.unit_id = unit;
    d.interval = interval;
    d.timeout = std::chrono::milliseconds(300);
    return d;
  }
  static std::vector<buffer::Record> records(const buffer::Buffer& b, const std::string& device = "") {
    std::vector<buffer::Record> out;
    for (auto& r : b.read_after(0, 1'000'000, SIZE_MAX).records) {
      if (device.empty() || r.partition_key == device) out.push_back(std::move(r));
    }
    return out;
  }

  testing::TempDir dir_;
  testing::LogCapture log_;
};

TEST_F(ModbusTest, EveryTypeAndByteOrderDecodesToWhatTheDeviceHolds) {
  ModbusServer server(testing::free_loopback_port());
  PointMap map{"all", {}};
  std::uint16_t at = 0;
  const char* orders[] = {"ABCD", "CDAB", "BADC", "DCBA"};
  for (const char* order : orders) {
    const auto o = *parse_byte_order(order);
    const std::string suffix = std::string("_") + order;
    // (Not libmodbus's modbus_set_float_*: in Debian 12's 3.1.6 each of them
    // swaps the bytes of every word on little-endian hosts.)
    server.holding(at, layout(bytes_of<float>(-12.5f), order));
    map.points.push_back(point("f32" + suffix, at, DataType::kF32, o));
    at += 2;
    server.holding(at, layout(bytes_of<std::int32_t>(-123456), order));
    map.points.push_back(point("s32" + suffix, at, DataType::kS32, o));
    at += 2;
    server.holding(at, layout(bytes_of<std::uint32_t>(4'000'000'000u), order));
    map.points.push_back(point("u32" + suffix, at, DataType::kU32, o));
    at += 2;
    server.holding(at, layout(bytes_of<std::int64_t>(-9'000'000'000'123LL), order));
    map.points.push_back(point("s64" + suffix, at, DataType::kS64, o));
    at += 4;
    server.holding(at, layout(bytes_of<std::uint64_t>(18'000'000'000'000'000'000ull), order));
    map.points.push_back(point("u64" + suffix, at, DataType::kU64, o));
    at += 4;
    server.holding(at, layout(bytes_of<double>(-0.001953125), order));
    map.points.push_back(point("f64" + suffix, at, DataType::kF64, o));
    at += 4;
    server.holding(at, layout(bytes_of<std::int16_t>(-2), order));
    map.points.push_back(point("s16" + suffix, at, DataType::kS16, o));
    at += 1;
  }
  server.holding(at, {0x4142, 0x2D31, 0x3220, 0x0000});  // "AB-12 " and padding
  auto text = point("text", at, DataType::kString);
  text.length = 4;
  map.points.push_back(text);
  at += 4;
  server.holding(at, layout(bytes_of<float>(std::nanf("")), "ABCD"));
  map.points.push_back(point("nan", at, DataType::kF32));
  at += 2;
  server.holding(at, {0x8005});
  auto bit = point("bit15", at, DataType::kBit);
  bit.bit = 15;
  map.points.push_back(bit);
  auto bit0 = point("bit1", at, DataType::kBit);
  bit0.bit = 1;
  map.points.push_back(bit0);
  at += 1;
  server.holding(at, {2345});
  auto scaled = point("power_kw", at, DataType::kU16);
  scaled.scale = 0.1;
  scaled.offset = -1;
  scaled.unit = "kW";
  map.points.push_back(scaled);
  at += 1;
  server.coil(7, true);
  map.points.push_back(point("running", 7, DataType::kBool, ByteOrder::kABCD, Table::kCoil));
  server.input(3, {777});
  map.points.push_back(point("in3", 3, DataType::kU16, ByteOrder::kABCD, Table::kInputRegister));

  auto b = open();
  ModbusOptions o;
  o.name = "plant";
  o.maps = {map};
  o.devices = {device("meter-1", server.port())};
  ModbusSource source(o, *b, log_.fn());
  source.start();
  ASSERT_TRUE(testing::wait_for([&] { return !records(*b).empty(); })) << log_.lines().size();
  source.stop();
  const auto r = records(*b).front();
  EXPECT_EQ(r.source, "plant");
  EXPECT_EQ(r.partition_key, "meter-1");
  EXPECT_EQ(r.topic, "modbus/meter-1");
  ASSERT_TRUE(r.device_ts_ns);
  const auto v = Json::parse(r.payload);
  for (const char* order : orders) {
    const std::string s = std::string("_") + order;
    EXPECT_EQ(v["f32" + s], -12.5) << order;
    EXPECT_EQ(v["s32" + s], -123456) << order;
    EXPECT_EQ(v["u32" + s], 4'000'000'000u) << order;
    EXPECT_EQ(v["s64" + s], -9'000'000'000'123LL) << order;
    EXPECT_EQ(v["u64" + s], 18'000'000'000'000'000'000ull) << order;
    EXPECT_EQ(v["f64" + s], -0.001953125) << order;
    EXPECT_EQ(v["s16" + s], -2) << order;
  }
  EXPECT_EQ(v["text"], "AB-12");
  EXPECT_TRUE(v["nan"].is_null());
  EXPECT_EQ(v["bit15"], true);
  EXPECT_EQ(v["bit1"], false);
  EXPECT_NEAR(v["power_kw"].get<double>(), 233.5, 1e-9);
  EXPECT_EQ(v["units"]["power_kw"], "kW");
  EXPECT_EQ(v["running"], true);
  EXPECT_EQ(v["in3"], 777);
  EXPECT_TRUE(v.contains("time"));
}

TEST_F(ModbusTest, NearbyPointsShareAReadAndARefusedMergedReadLosesOnlyItsBadPoint) {
  ModbusServer server(testing::free_loopback_port());
  server.holding(0, {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
  server.input(0, {5});
  server.hole(6);  // inside the merged read of 0..10
  PointMap map{"m", {point("a", 0, DataType::kU16), point("b", 2, DataType::kU16), point("c", 10, DataType::kU16),
                     point("gone", 6, DataType::kU16), point("i", 0, DataType::kU16, ByteOrder::kABCD, Table::kInputRegister)}};
  auto b = open();
  ModbusOptions o;
  o.maps = {map};
  o.max_gap = 8;
  o.devices = {device("d", server.port(), 1, std::chrono::milliseconds(50))};
  ModbusSource source(o, *b, log_.fn());
  source.start();
  ASSERT_TRUE(testing::wait_for([&] { return records(*b).size() >= 6; }));
  source.stop();
  const auto all = records(*b);
  for (const auto& r : all) {
    const auto v = Json::parse(r.payload);
    EXPECT_EQ(v["a"], 10);
    EXPECT_EQ(v["b"], 12);
    EXPECT_EQ(v["c"], 20);
    EXPECT_EQ(v["i"], 5);
    EXPECT_FALSE(v.contains("gone"));
  }
  EXPECT_TRUE(log_.contains("reading its 4 points one by one")) ;
  EXPECT_TRUE(log_.contains("point 'gone'"));
  // First poll: the merged read (refused), 4 single reads (one refused), the
  // input read = 6. Every later poll: 3 single reads + the input read = 4.
  const auto polls = all.size();
  const auto requests = server.requests();
  EXPECT_GE(requests, 6 + 4 * (polls - 1));
  EXPECT_LE(requests, 6 + 4 * polls);  // a poll may be in flight at the stop
  double bad = 0;
  for (const auto& c : source.stats().counters) {
    if (c.name == "bad_points") bad = c.value;
  }
  EXPECT_EQ(bad, 1);
}

TEST_F(ModbusTest, DeadSilentAndRefusingDevicesDoNotSlowTheHealthyOnes) {
  ModbusServer healthy(testing::free_loopback_port());
  ModbusServer silent(testing::free_loopback_port(), true);
  const auto dead_port = testing::free_loopback_port();
  healthy.holding(0, {1, 2, 3, 4});
  PointMap map{"m", {point("v", 0, DataType::kU16), point("w", 3, DataType::kU16)}};
  PointMap refused{"r", {point("x", 5000, DataType::kU16)}};  // beyond the device's table: exception 2
  auto b = open();
  ModbusOptions o;
  o.maps = {map, refused};
  const auto interval = std::chrono::milliseconds(200);
  for (int i = 1; i <= 17; ++i)
    o.devices.push_back(device("ok-" + std::to_string(i), healthy.port(), static_cast<std::uint8_t>(i), interval));
  o.devices.push_back(device("dead", dead_port, 1, interval));
  o.devices.push_back(device("silent", silent.port(), 1, interval));
  auto refusing = device("refusing", healthy.port(), 99, interval);
  refusing.map = 1;
  o.devices.push_back(refusing);
  ModbusSource source(o, *b, log_.fn());
  const auto t0 = std::chrono::steady_clock::now();
  source.start();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  source.stop();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double expected = seconds / 0.2;
  for (int i = 1; i <= 17; ++i) {
    const auto n = static_cast<double>(records(*b, "ok-" + std::to_string(i)).size());
    EXPECT_GE(n, expected * 0.9) << "ok-" << i;
    EXPECT_LE(n, expected * 1.1 + 1) << "ok-" << i;
  }
  EXPECT_TRUE(records(*b, "dead").empty());
  EXPECT_TRUE(records(*b, "silent").empty());
  EXPECT_TRUE(records(*b, "refusing").empty());
  EXPECT_TRUE(log_.contains("device 'dead'"));
  EXPECT_TRUE(log_.contains("device 'silent'"));
  EXPECT_TRUE(log_.contains("point 'x'"));
  std::map<std::string, double> c;
  for (const auto& k : source.stats().counters) c[k.name] = k.value;
  EXPECT_GE(c["connect_failures_total"], 1);
  EXPECT_GE(c["timeouts_total"], 1);
  EXPECT_EQ(c["devices_down"], 2);
  // Per device, labelled: which one is down, and why.
  std::map<std::string, double> per_device;
  for (const auto& k : source.stats().counters) {
    std::string key = k.name;
    for (const auto& [label, value] : k.labels) key += " " + label + "=" + value;
    per_device[key] = k.value;
  }
  EXPECT_EQ(per_device["device_down device=dead"], 1);
  EXPECT_EQ(per_device["device_down device=silent"], 1);
  EXPECT_EQ(per_device["device_down device=ok-3"], 0);
  EXPECT_GE(per_device["device_timeouts_total device=silent"], 1);
  EXPECT_GE(per_device["device_exceptions_total device=refusing code=2"], 1);
  EXPECT_GT(per_device["device_last_success_seconds device=ok-1"], 1.7e9);
  EXPECT_GE(per_device["device_polls_total device=ok-17"], 18);
}

TEST_F(ModbusTest, ADeviceDownAtStartAndOneThatGoesAwayAreReadWhenTheyComeBack) {
  const auto port = testing::free_loopback_port();
  PointMap map{"m", {point("v", 0, DataType::kU16)}};
  auto b = open();
  ModbusOptions o;
  o.maps = {map};
  o.max_backoff = std::chrono::milliseconds(400);
  o.devices = {device("plc", port, 1, std::chrono::milliseconds(100))};
  ModbusSource source(o, *b, log_.fn());
  source.start();  // nobody listens yet: no failure to start
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(records(*b).empty());
  {
    ModbusServer server(port);
    server.holding(0, {41});
    ASSERT_TRUE(testing::wait_for([&] { return !records(*b).empty(); }));
  }
  // Power-cycled: gone, then back on the same port.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto before = records(*b).size();
  ModbusServer again(port);
  again.holding(0, {42});
  ASSERT_TRUE(testing::wait_for([&] {
    const auto all = records(*b);
    return all.size() > before && Json::parse(all.back().payload)["v"] == 42;
  }));
  source.stop();
  EXPECT_TRUE(log_.contains("answers again"));
}

// Report by exception: values wandering inside their deadbands make records
// only at max_silence (then carrying every point); a value that leaves its
// band is sent at the next poll, alone.
TEST_F(ModbusTest, ValuesInsideTheirDeadbandAreSentOnlyAtMaxSilenceAndAChangeAlone) {
  ModbusServer server(testing::free_loopback_port());
  server.holding(0, {100, 7, 1000});
  const auto silence = std::chrono::milliseconds(600);
  auto banded = [&](Point p, double band, double percent) {
    p.by_exception = true;
    p.deadband = band;
    p.deadband_percent = percent;
    p.max_silence = silence;
    return p;
  };
  Point temp = banded(point("temp", 0, DataType::kU16), 5, 0);
  temp.unit = "degC";
  temp.tags = {{"zone", "north"}};
  PointMap map{"m", {temp, banded(point("setpoint", 1, DataType::kU16), 0, 0),
                     banded(point("power", 2, DataType::kU16), 0, 10)}};
  auto b = open();
  ModbusOptions o;
  o.maps = {map};
  o.devices = {device("ahu", server.port(), 1, std::chrono::milliseconds(50))};
  ModbusSource source(o, *b, log_.fn());
  source.start();
  // 2.5 s of wandering inside the bands: temp 100..104 (band 5), power
  // 1000..1090 (10 % of 1000), setpoint steady (band 0).
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(2500); ++i) {
    server.holding(0, {static_cast<std::uint16_t>(100 + i % 5), 7, static_cast<std::uint16_t>(1000 + (i * 30) % 100)});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto wandering = records(*b);
  // One record at the start, then one per max_silence: every one full.
  ASSERT_GE(wandering.size(), 4u);
  ASSERT_LE(wandering.size(), 5u);
  for (std::size_t i = 0; i < wandering.size(); ++i) {
    const auto v = Json::parse(wandering[i].payload);
    for (const char* name : {"temp", "setpoint", "power"}) EXPECT_TRUE(v.contains(name)) << i << " " << name;
    EXPECT_EQ(v["tags"]["temp"]["zone"], "north");
    EXPECT_EQ(v["units"]["temp"], "degC");
    if (i == 0) continue;
    const auto gap = std::chrono::nanoseconds(*wandering[i].device_ts_ns - *wandering[i - 1].device_ts_ns);
    EXPECT_GE(gap, silence) << i;
    EXPECT_LE(gap, silence + std::chrono::milliseconds(150)) << i;
  }
  // Right after a full record, temp leaves its band: the next record
  // carries temp alone.
  const auto seen = records(*b).size();
  ASSERT_TRUE(testing::wait_for([&] { return records(*b).size() > seen; }));
  server.holding(0, {110});
  ASSERT_TRUE(testing::wait_for([&] {
    const auto all = records(*b);
    return Json::parse(all.back().payload).value("temp", 0) == 110;
  }));
  source.stop();
  const auto changed = Json::parse(records(*b).back().payload);
  EXPECT_EQ(changed["temp"], 110);
  EXPECT_FALSE(changed.contains("setpoint"));
  EXPECT_FALSE(changed.contains("power"));
  EXPECT_EQ(changed["tags"], Json::parse(R"({"temp":{"zone":"north"}})"));
  std::map<std::string, double> c;
  for (const auto& k : source.stats().counters) c[k.name] = k.value;
  EXPECT_GE(c["confirmations_total"], 3);
  EXPECT_GE(c["values_held_back_total"], 3 * 30);
}

// RTU: on a serial line (a pseudo-terminal pair from socat, the device on
// one end) and through a serial server (socat between a TCP port and the
// device's line), the same map reads the same values.
TEST_F(ModbusTest, RtuOnASerialLineAndThroughASerialServerReadsTheDevice) {
  const auto line = dir_ / "line";  // the gateway's end
  const auto dev = dir_ / "dev";    // the device's end
  testing::Process pair({"/usr/bin/socat", "pty,raw,echo=0,link=" + line.string(), "pty,raw,echo=0,link=" + dev.string()},
                        dir_ / "socat-pair.log");
  ASSERT_TRUE(testing::wait_for([&] { return std::filesystem::exists(line) && std::filesystem::exists(dev); }));
  testing::ModbusRtuServer meter(dev.string(), 5);
  meter.holding(10, layout(bytes_of<float>(230.5f), "CDAB"));
  meter.holding(12, {1234});

  const auto port = testing::free_loopback_port();
  const auto dev2 = dir_ / "dev2";
  testing::Process server({"/usr/bin/socat", "pty,raw,echo=0,link=" + dev2.string(),
                           "tcp-listen:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr"},
                          dir_ / "socat-server.log");
  ASSERT_TRUE(testing::wait_for([&] { return std::filesystem::exists(dev2); }));
  testing::ModbusRtuServer behind_server(dev2.string(), 7);
  behind_server.holding(10, layout(bytes_of<float>(-1.25f), "CDAB"));
  behind_server.holding(12, {99});

  auto voltage = point("voltage", 10, DataType::kF32, ByteOrder::kCDAB);
  PointMap map{"m", {voltage, point("count", 12, DataType::kU16)}};
  auto b = open();
  ModbusOptions o;
  o.maps = {map};
  auto serial = device("serial", 0, 5, std::chrono::milliseconds(100));
  serial.link.transport = Transport::kRtuSerial;
  serial.link.device = line.string();
  serial.link.serial.baud = 9600;
  auto over_tcp = device("over-tcp", port, 7, std::chrono::milliseconds(100));
  over_tcp.link.transport = Transport::kRtuOverTcp;
  o.devices = {serial, over_tcp};
  ModbusSource source(o, *b, log_.fn());
  source.start();
  ASSERT_TRUE(testing::wait_for([&] { return records(*b, "serial").size() >= 3 && records(*b, "over-tcp").size() >= 3; }))
      << log_.lines().size() << " log lines; " << (log_.lines().empty() ? "" : log_.lines().back());
  source.stop();
  for (const auto& r : records(*b, "serial")) {
    const auto v = Json::parse(r.payload);
    EXPECT_EQ(v["voltage"], 230.5);
    EXPECT_EQ(v["count"], 1234);
  }
  for (const auto& r : records(*b, "over-tcp")) {
    const auto v = Json::parse(r.payload);
    EXPECT_EQ(v["voltage"], -1.25);
    EXPECT_EQ(v["count"], 99);
  }
  EXPECT_GE(meter.requests(), 3u);
}

}  // namespace
}  // namespace tidegate::drivers::modbus
