// Simulated sensors: realistic readings (temperature, humidity, CO2, power
// meter) for N devices at a steady rate, written straight into the buffer or
// published to an MQTT broker (then the MQTT source takes them in, as with
// real sensors). Makes the gateway useful on a machine with no sensors.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/source.h"

namespace tidegate::drivers::sim {

enum class SimMode { kBuffer, kMqtt };

struct SimOptions {
  std::string name = "sim";
  SimMode mode = SimMode::kBuffer;
  std::uint32_t devices = 8;
  double readings_per_device_per_s = 1.0;
  std::vector<std::string> kinds = {"temperature", "humidity", "co2", "power"};
  std::string device_prefix = "sim-";
  std::string topic_prefix = "sensors";  // topic: <prefix>/<device>/<kind>
  // MQTT mode: where to publish, with which QoS.
  std::string mqtt_host = "127.0.0.1";
  std::uint16_t mqtt_port = 1883;
  int mqtt_qos = 1;
  std::uint32_t seed = 1;
};

// One reading as JSON, e.g. {"device":"sim-003","kind":"co2","value":612,
// "unit":"ppm","ts":"2026-11-25T22:17:08.123Z"}. Deterministic for a seed.
class ReadingGenerator {
 public:
  ReadingGenerator(const SimOptions& options);
  struct Reading {
    std::string device;
    std::string kind;
    std::string topic;
    std::string payload;
  };
  Reading next(std::uint32_t device, std::int64_t now_ns);

 private:
  struct DeviceState {
    double value = 0;
    double energy_kwh = 0;
  };
  SimOptions opts_;
  std::vector<DeviceState> state_;
  std::uint64_t rng_;
  double uniform();  // [0, 1)
};

class SimSource final : public Source {
 public:
  SimSource(SimOptions options, buffer::Buffer& buffer, buffer::LogFn log);
  ~SimSource() override;
  const std::string& name() const override;
  void start() override;
  void stop() override;
  void pause() override;
  void resume() override;
  SourceStats stats() const override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::drivers::sim
