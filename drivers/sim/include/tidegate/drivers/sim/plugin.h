// The simulated sensors as a plugin: kind "sim", their keys, their factory.
#pragma once

#include "tidegate/plugins/source_plugin.h"

namespace tidegate::drivers::sim {

plugins::SourceDescriptor source_plugin();

}  // namespace tidegate::drivers::sim
