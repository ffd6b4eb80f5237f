// How a kind of processor plugs in: one ProcessorDescriptor per kind,
// declared in the kind's own folder (gateway/processors/KIND) and named once
// in gateway/src/plugin_list.inc. A [[processors.KIND]] table becomes a
// ProcessorPlan; each sink that names it in `processors` gets its own
// instance (processors run on the sink's forwarder thread).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "tidegate/config/schema.h"
#include "tidegate/processing/processor.h"

namespace tidegate::plugins {

struct ProcessorPlan {
  std::string kind;  // set by the loader
  std::string name;
  std::string name_key;
  // Its table as written plus the content of files it reads (an enrich
  // table): the sinks that use it restart at a reload when this changes.
  std::string written;
  std::function<std::unique_ptr<processing::Processor>()> create;
};

struct ProcessorDescriptor {
  std::string kind;  // [[processors.KIND]]
  std::string help;
  std::function<ProcessorPlan(config::Section&)> read;
};

// The usual descriptor: `read` fills the kind's options (which have `name`,
// and `files_read`: the text of files it loaded, compared at a reload), and
// ProcessorT is made from them. `read` reports every problem (a bad
// condition, an unreadable table) as a configuration error, so that
// check-config finds it and creating cannot fail on a valid plan.
// A TOML value (a scalar, array or table from a processor's keys or
// table file) as the JSON value it adds to records.
processing::Json toml_to_json(const toml::node& node);

template <typename ProcessorT, typename Options>
ProcessorDescriptor processor_descriptor(std::string kind, std::string help,
                                         void (*read)(config::Section&, Options&)) {
  return {std::move(kind), std::move(help), [read](config::Section& s) {
            Options o;
            o.name = s.text("name", "", "Name of this processor: sinks list it in `processors`; its counters carry it.");
            read(s, o);
            ProcessorPlan plan;
            plan.name = o.name;
            plan.name_key = s.key_path("name");
            plan.written = s.written() + o.files_read;
            plan.create = [o]() -> std::unique_ptr<processing::Processor> { return std::make_unique<ProcessorT>(o); };
            return plan;
          }};
}

}  // namespace tidegate::plugins
