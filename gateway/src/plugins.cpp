#include "tidegate/gateway/plugins.h"

// Each kind's descriptor function, declared from the list.
namespace tidegate::plugins {
#define TIDEGATE_SOURCE(kind) SourceDescriptor kind##_source_plugin();
#define TIDEGATE_SINK(kind) SinkDescriptor kind##_sink_plugin();
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
}  // namespace tidegate::plugins

namespace tidegate::gateway {

const std::vector<plugins::SourceDescriptor>& source_kinds() {
  static const std::vector<plugins::SourceDescriptor> kinds = {
#define TIDEGATE_SOURCE(kind) plugins::kind##_source_plugin(),
#define TIDEGATE_SINK(kind)
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
  };
  return kinds;
}

const std::vector<plugins::SinkDescriptor>& sink_kinds() {
  static const std::vector<plugins::SinkDescriptor> kinds = {
#define TIDEGATE_SOURCE(kind)
#define TIDEGATE_SINK(kind) plugins::kind##_sink_plugin(),
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
  };
  return kinds;
}

}  // namespace tidegate::gateway
