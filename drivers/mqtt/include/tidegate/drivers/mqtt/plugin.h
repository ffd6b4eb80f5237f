// The MQTT source as a plugin: kind "mqtt", its keys, its factory.
#pragma once

#include "tidegate/plugins/source_plugin.h"

namespace tidegate::drivers::mqtt {

plugins::SourceDescriptor source_plugin();

}  // namespace tidegate::drivers::mqtt
