#include "tidegate/gateway/plugins.h"

// Each kind's descriptor function, declared from the list.
namespace tidegate::plugins {
#define TIDEGATE_SOURCE(kind) SourceDescriptor kind##_source_plugin();
#define TIDEGATE_SINK(kind) SinkDescriptor kind##_sink_plugin();
#define TIDEGATE_PROCESSOR(kind) ProcessorDescriptor kind##_processor_plugin();
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
#undef TIDEGATE_PROCESSOR
}  // namespace tidegate::plugins

namespace tidegate::gateway {

const std::vector<plugins::SourceDescriptor>& source_kinds() {
  static const std::vector<plugins::SourceDescriptor> kinds = {
#define TIDEGATE_SOURCE(kind) plugins::kind##_source_plugin(),
#define TIDEGATE_SINK(kind)
#define TIDEGATE_PROCESSOR(kind)
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
#undef TIDEGATE_PROCESSOR
  };
  return kinds;
}

const std::vector<plugins::SinkDescriptor>& sink_kinds() {
  static const std::vector<plugins::SinkDescriptor> kinds = {
#define TIDEGATE_SOURCE(kind)
#define TIDEGATE_SINK(kind) plugins::kind##_sink_plugin(),
#define TIDEGATE_PROCESSOR(kind)
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
#undef TIDEGATE_PROCESSOR
  };
  return kinds;
}

const std::vector<plugins::ProcessorDescriptor>& processor_kinds() {
  static const std::vector<plugins::ProcessorDescriptor> kinds = {
#define TIDEGATE_SOURCE(kind)
#define TIDEGATE_SINK(kind)
#define TIDEGATE_PROCESSOR(kind) plugins::kind##_processor_plugin(),
#include "plugin_list.inc"
#undef TIDEGATE_SOURCE
#undef TIDEGATE_SINK
#undef TIDEGATE_PROCESSOR
  };
  return kinds;
}

}  // namespace tidegate::gateway
