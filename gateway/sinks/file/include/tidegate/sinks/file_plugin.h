// The file sink as a plugin: kind "file", its keys, its factory.
#pragma once

#include "tidegate/plugins/sink_plugin.h"

namespace tidegate::sinks {

plugins::SinkDescriptor file_sink_plugin();

}  // namespace tidegate::sinks
