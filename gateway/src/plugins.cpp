#include "tidegate/gateway/plugins.h"

#include "tidegate/drivers/mqtt/plugin.h"
#include "tidegate/drivers/sim/plugin.h"
#include "tidegate/sinks/file_plugin.h"
#include "tidegate/sinks/http_plugin.h"
#include "tidegate/sinks/kinesis_plugin.h"
#include "tidegate/sinks/mqtt_plugin.h"

namespace tidegate::gateway {

const std::vector<plugins::SourceDescriptor>& source_kinds() {
  static const std::vector<plugins::SourceDescriptor> kinds = {
      drivers::mqtt::source_plugin(),
      drivers::sim::source_plugin(),
  };
  return kinds;
}

const std::vector<plugins::SinkDescriptor>& sink_kinds() {
  static const std::vector<plugins::SinkDescriptor> kinds = {
      sinks::file_sink_plugin(),
      sinks::mqtt_sink_plugin(),
      sinks::kinesis_sink_plugin(),
      sinks::http_sink_plugin(),
  };
  return kinds;
}

}  // namespace tidegate::gateway
