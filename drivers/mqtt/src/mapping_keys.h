// The keys that say how a message becomes a record, the same in
// [[sources.mqtt]] and [[sources.mqtt_listener]].
#pragma once

#include "tidegate/config/schema.h"
#include "tidegate/drivers/mqtt/message_mapping.h"

namespace tidegate::drivers::mqtt {

void read_mapping_keys(config::Section& s, MessageMapping& m);

}  // namespace tidegate::drivers::mqtt
