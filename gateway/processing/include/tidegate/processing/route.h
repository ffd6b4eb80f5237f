// What a sink forwards: a record is selected when it matches every list
// that is not empty (one entry of each suffices). Empty lists: everything,
// which is a sink's behaviour without a route.
#pragma once

#include <string>
#include <vector>

#include "tidegate/buffer/record.h"

namespace tidegate::processing {

struct Route {
  std::vector<std::string> sources;        // source names, globs ("building-*")
  std::vector<std::string> topics;         // MQTT topic filters ("site/+/temperature", "alarms/#")
  std::vector<std::string> devices;        // partition keys, globs ("ahu-*")
  std::vector<std::string> content_types;  // globs ("application/json", "text/*"); "" = unknown type

  bool everything() const { return sources.empty() && topics.empty() && devices.empty() && content_types.empty(); }
  bool selects(const buffer::Record& record) const;
};

}  // namespace tidegate::processing
