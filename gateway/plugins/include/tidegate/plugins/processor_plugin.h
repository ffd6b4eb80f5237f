// How a kind of processor plugs in: one ProcessorDescriptor per kind,
// declared in the kind's own folder (gateway/processors/KIND) and named once
// in gateway/src/plugin_list.inc. A [[processors.KIND]] table becomes a
// ProcessorPlan; each sink that names it in `processors` gets its own
// instance (processors run on the sink's forwarder thread).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/config/schema.h"
#include "tidegate/drivers/source.h"
#include "tidegate/processing/processor.h"
#include "tidegate/processing/route.h"

namespace tidegate::plugins {

struct ProcessorPlan {
  std::string kind;  // set by the loader
  std::string name;
  std::string name_key;
  // Its table as written plus the content of files it reads (an enrich
  // table): the sinks that use it restart at a reload when this changes.
  std::string written;
  std::function<std::unique_ptr<processing::Processor>()> create;
  // Set instead of `create` by stateful kinds (window, deadband): a derived
  // stream that runs on its own like a source (sinks select its output by
  // route, with its name as the source; no sink lists it in `processors`).
  // `other_streams`: the names of the other derived streams.
  std::function<std::unique_ptr<drivers::Source>(buffer::Buffer&, buffer::LogFn,
                                                 const std::vector<std::string>& other_streams)>
      create_stream;
};

// A [NAME.route] table (sinks and derived streams): which records it takes.
void read_route(config::Section& s, processing::Route& route, const std::string& help);

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
