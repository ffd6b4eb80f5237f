// How a kind of source plugs in: one SourceDescriptor per kind, declared in
// the kind's own folder and named once in the list of
// gateway/src/plugin_list.inc. The configuration loader, the daemon and the
// reference page loop over the list and name no kind.
#pragma once

#include <any>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/config/schema.h"
#include "tidegate/drivers/source.h"

namespace tidegate::plugins {

// A resource only one configured instance may hold (an MQTT session on a
// broker, a listening port). Two instances claiming the same one are a
// configuration error at the second one's key.
struct Claim {
  std::string resource;  // e.g. "mqtt-session 127.0.0.1:1883/tidegate-mqtt"
  std::string key;       // the key that makes the claim, e.g. "sources.mqtt[1].client_id"
  std::string conflict;  // the error's reason
};

// One [[sources.KIND]] table, read and checked.
struct SourcePlan {
  std::string kind;  // set by the loader
  std::string name;
  std::string name_key;  // where the name came from, for errors about it
  std::any options;      // the kind's own options type; options_as<T>() to look inside
  std::vector<Claim> claims;
  std::string written;  // its table as written: a reload restarts the source when this changes
  // Makes the source (not started). May throw: the daemon reports it with
  // the source's name and does not start.
  std::function<std::unique_ptr<drivers::Source>(buffer::Buffer&, buffer::LogFn)> create;

  template <typename Options>
  const Options& options_as() const {
    return std::any_cast<const Options&>(options);
  }
};

struct SourceDescriptor {
  std::string kind;  // [[sources.KIND]]
  std::string help;  // the reference page's words for the table
  // Reads one table (declaring every key; in describe mode there is none)
  // into a plan. `index` counts the tables of this kind.
  std::function<SourcePlan(config::Section&, std::size_t index)> read;
};

// The usual plan: named after the options' `name`, SourceT made from them.
// A kind adds its claims to it.
template <typename SourceT, typename Options>
SourcePlan source_plan(config::Section& s, Options o) {
  SourcePlan plan;
  plan.name = o.name;
  plan.name_key = s.key_path("name");
  plan.create = [o](buffer::Buffer& buffer, buffer::LogFn log) -> std::unique_ptr<drivers::Source> {
    return std::make_unique<SourceT>(o, buffer, std::move(log));
  };
  plan.options = std::move(o);
  return plan;
}

}  // namespace tidegate::plugins
