#include "tidegate/processing/route.h"

#include "tidegate/common/patterns.h"

namespace tidegate::processing {
namespace {

template <typename Match>
bool any_of(const std::vector<std::string>& patterns, Match&& match) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns) {
    if (match(p)) return true;
  }
  return false;
}

}  // namespace

bool Route::selects(const buffer::Record& r) const {
  return any_of(sources, [&](const std::string& p) { return common::glob_matches(p, r.source); }) &&
         any_of(topics, [&](const std::string& p) { return common::topic_matches(p, r.topic); }) &&
         any_of(devices, [&](const std::string& p) { return common::glob_matches(p, r.partition_key); }) &&
         any_of(content_types, [&](const std::string& p) { return common::glob_matches(p, r.content_type); });
}

}  // namespace tidegate::processing
