// The kinesis sink as a plugin: kind "kinesis", its keys, its factory.
#pragma once

#include "tidegate/plugins/sink_plugin.h"

namespace tidegate::sinks {

plugins::SinkDescriptor kinesis_sink_plugin();

}  // namespace tidegate::sinks
