#include "tidegate/processors/filter.h"

#include "tidegate/plugins/processor_plugin.h"

namespace tidegate::processors {

Filter::Filter(const FilterOptions& o)
    : condition_(processing::Condition::parse(o.condition)), keep_matching_(o.keep_matching) {}

processing::Verdict Filter::process(processing::Message& message) {
  std::string error;
  const auto holds = condition_.evaluate(message, error);
  if (!holds) return processing::Verdict::dead_letter(error);
  return *holds == keep_matching_ ? processing::Verdict::pass() : processing::Verdict::drop();
}

namespace {

void read_options(config::Section& s, FilterOptions& o) {
  o.condition = s.text("condition", "",
                       "Required. E.g. '.temperature > 30 and topic =~ \"^site/north/\"' (docs/processing.md has "
                       "the language). Use TOML literal strings ('...') so quotes and backslashes stay as written.");
  o.keep_matching = s.choice("action", "keep", {"keep", "drop"},
                             "keep: only records the condition holds for go on. drop: those are filtered out.") ==
                    "keep";
  if (s.context().docs) return;
  if (o.condition.empty()) {
    s.context().error(s.key_path("condition"), "required: the condition to filter by");
    return;
  }
  try {
    processing::Condition::parse(o.condition);
  } catch (const processing::ConditionError& e) {
    s.context().error(s.key_path("condition"), e.what());
  }
}

}  // namespace
}  // namespace tidegate::processors

namespace tidegate::plugins {

ProcessorDescriptor filter_processor_plugin() {
  return processor_descriptor<processors::Filter, processors::FilterOptions>(
      "filter", "Keeps or drops records by a condition over topic, device, source, content type and JSON fields.",
      processors::read_options);
}

}  // namespace tidegate::plugins
