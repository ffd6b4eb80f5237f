// [[processors.enrich]]: adds fields (site, building, floor, zone, asset)
// to each record from a static table keyed by device pattern and/or topic
// filter, given in the configuration and/or a CSV or TOML file. Every rule
// that matches applies, in order (a later rule's value wins), so general
// rules go first and specific ones after. The table is read when the
// configuration is (start, SIGHUP): a changed file restarts the sinks that
// use it.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "tidegate/processing/processor.h"

namespace tidegate::processors {

struct EnrichRule {
  std::string device;      // glob on the partition key; empty: any
  std::string topic;       // MQTT topic filter; empty: any
  processing::Json fields;  // object: dotted path -> value
  bool matches(const std::string& device_id, const std::string& topic_name) const;
};

struct EnrichOptions {
  std::string name;
  std::string files_read;
  std::vector<EnrichRule> rules;  // `fields`, then [[rules]], then the file's rows
  bool overwrite = false;         // replace fields the device sent itself
};

// A table file: CSV with a header whose first column is "device" or
// "topic" (the pattern) and whose other columns are field names, or TOML
// with [[rules]] tables like the configuration's. Throws
// std::runtime_error naming the file and line.
std::vector<EnrichRule> load_enrich_file(const std::string& path, const std::string& text);

class Enrich : public processing::Processor {
 public:
  explicit Enrich(const EnrichOptions& options);
  processing::Verdict process(processing::Message& message) override;

 private:
  // The fields every matching rule adds, as values and as JSON text.
  struct Merged {
    processing::Json fields;
    std::vector<std::pair<std::string, std::string>> texts;  // path, JSON text
  };
  const Merged& merged_for(const std::string& device, const std::string& topic);
  // The fast path; false if the view cannot do it (the document does).
  bool add_to_view(processing::JsonView& view, const Merged& add) const;

  EnrichOptions opts_;
  // Fields per (device, topic) seen: a table of hundreds of rules is
  // matched once per device, not once per reading. Bounded.
  std::unordered_map<std::string, Merged> cache_;
  std::string key_;
  static constexpr std::size_t kMaxCached = 10'000;
};

}  // namespace tidegate::processors
