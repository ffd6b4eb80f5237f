// How a kind of sink plugs in: one SinkDescriptor per kind, declared in the
// kind's own folder and named once in the list gateway/src/plugin_list.inc.
// The keys every sink shares (batching, retries, start, drain) are read by
// the loader, not by each kind.
#pragma once

#include <any>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "tidegate/config/schema.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/forward/sink.h"
#include "tidegate/processing/route.h"

namespace tidegate::plugins {

// What a sink learns only when the whole configuration is read.
struct SinkEnvironment {
  std::string gateway_id;
};

// One [[sinks.KIND]] table, read and checked.
struct SinkPlan {
  std::string kind;  // set by the loader
  std::string name;
  std::string name_key;
  std::any options;  // the kind's own options type
  forward::ForwarderOptions forwarder;
  processing::Route route;              // what it forwards (empty: everything)
  std::vector<std::string> processors;  // [[processors.KIND]] names, in order
  std::string processors_key;
  std::string written;  // its table as written: a reload restarts the sink when this changes
  // Makes the sink. May throw (an endpoint that cannot be set up): the
  // daemon reports it with the sink's name and does not start.
  std::function<std::unique_ptr<forward::Sink>(const SinkEnvironment&)> create;

  template <typename Options>
  const Options& options_as() const {
    return std::any_cast<const Options&>(options);
  }
};

struct SinkDescriptor {
  std::string kind;  // [[sinks.KIND]]
  std::string help;
  std::function<SinkPlan(config::Section&)> read;
  // `linger` when not set: batching saves requests (Kinesis, HTTP) and
  // costs latency; a kind whose messages go one by one anyway (MQTT) sets 0.
  std::chrono::milliseconds default_linger{20};
};

// The usual descriptor: `read` fills the kind's options (which have `name`
// and `gateway_id`), and SinkT is made from them.
template <typename SinkT, typename Options>
SinkDescriptor sink_descriptor(std::string kind, std::string help, void (*read)(config::Section&, Options&)) {
  return {std::move(kind), std::move(help), [read](config::Section& s) {
            Options o;
            read(s, o);
            SinkPlan plan;
            plan.name = o.name;
            plan.name_key = s.key_path("name");
            plan.create = [o](const SinkEnvironment& env) mutable -> std::unique_ptr<forward::Sink> {
              o.gateway_id = env.gateway_id;
              return std::make_unique<SinkT>(o);
            };
            plan.options = std::move(o);
            return plan;
          }};
}

// The keys every sink has: how its forwarder batches, retries and paces.
void read_forwarder_keys(config::Section& s, forward::ForwarderOptions& f, std::chrono::milliseconds default_linger);
// Its route ([sinks.KIND.route]) and processor chain (`processors`); the
// loader checks the names once every processor is read.
void read_routing_keys(config::Section& s, SinkPlan& plan);

}  // namespace tidegate::plugins
