// The http sink as a plugin: kind "http", its keys, its factory.
#pragma once

#include "tidegate/plugins/sink_plugin.h"

namespace tidegate::sinks {

plugins::SinkDescriptor http_sink_plugin();

}  // namespace tidegate::sinks
