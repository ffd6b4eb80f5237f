// Name patterns operators write: MQTT topic filters (ACL rules, sink
// routes) and shell-style globs for device ids (routes, enrich tables).
#pragma once

#include <string_view>

namespace tidegate::common {

// MQTT 3.1.1 section 4.7: '+' is one level, '#' (last) the rest including
// the parent level; a filter starting with a wildcard does not match a
// '$' topic.
bool topic_matches(std::string_view filter, std::string_view topic);

// '*' any run of characters (also none), '?' one character, anything else
// itself. "ahu-*" matches "ahu-3"; "meter-??" matches "meter-07".
bool glob_matches(std::string_view pattern, std::string_view text);

}  // namespace tidegate::common
