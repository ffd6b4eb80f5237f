// [[sources.modbus]]: polls Modbus devices (TCP, RTU over TCP, RTU on a
// serial line) by their register maps and commits one record per device per
// poll. All devices of a source share one thread (an io_context); devices on
// the same link (address and port, or serial port) share one connection. A dead, slow or
// misconfigured device is backed off on its own: the others keep their
// interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/modbus/link.h"
#include "tidegate/drivers/modbus/register_map.h"
#include "tidegate/drivers/source.h"

namespace tidegate::drivers::modbus {

struct DeviceOptions {
  std::string name;  // the records' partition key
  LinkOptions link;  // where it is: devices on the same link share it
  std::uint8_t unit_id = 1;
  std::size_t map = 0;         // index into ModbusOptions::maps
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{1000};
};

struct PointMap {
  std::string name;
  std::vector<Point> points;
};

struct ModbusOptions {
  std::string name = "modbus";
  std::vector<PointMap> maps;
  std::vector<DeviceOptions> devices;
  std::uint16_t max_gap = 8;  // registers (bits) a merged read may span that no point needs
  std::string topic = "modbus/{device}";
  bool raw = false;           // add each point's registers to the record
  std::chrono::milliseconds max_backoff{60'000};
};

class ModbusSource : public Source {
 public:
  ModbusSource(ModbusOptions options, buffer::Buffer& buffer, buffer::LogFn log);
  ~ModbusSource() override;
  const std::string& name() const override;
  void start() override;
  void stop() override;
  void pause() override {}
  void resume() override {}
  SourceStats stats() const override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::drivers::modbus
