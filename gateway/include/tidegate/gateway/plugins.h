// Every kind of source, sink and processor, from the one list gateway/src/plugin_list.inc.
// Explicit on purpose: self-registering statics are silently dropped when
// they sit in a static archive nothing else references.
#pragma once

#include <vector>

#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/plugins/sink_plugin.h"
#include "tidegate/plugins/source_plugin.h"

namespace tidegate::gateway {

// In start order: sources that subscribe before sources that publish to a
// broker (simulated sensors in mqtt mode find their subscriber's session).
const std::vector<plugins::SourceDescriptor>& source_kinds();
const std::vector<plugins::SinkDescriptor>& sink_kinds();
const std::vector<plugins::ProcessorDescriptor>& processor_kinds();

}  // namespace tidegate::gateway
