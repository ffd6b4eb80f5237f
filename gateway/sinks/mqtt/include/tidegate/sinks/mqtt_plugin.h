// The mqtt sink as a plugin: kind "mqtt", its keys, its factory.
#pragma once

#include "tidegate/plugins/sink_plugin.h"

namespace tidegate::sinks {

plugins::SinkDescriptor mqtt_sink_plugin();

}  // namespace tidegate::sinks
