// [[processors.window]] and [[processors.deadband]]: their keys, and the
// derived stream each becomes.
#include <algorithm>
#include <string>

#include "tidegate/config/schema.h"
#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/streams/deadband.h"
#include "tidegate/streams/derived_stream.h"
#include "tidegate/streams/window.h"

namespace tidegate::streams {
namespace {

std::int64_t ns(std::chrono::milliseconds ms) { return static_cast<std::int64_t>(ms.count()) * 1'000'000; }

// The keys every derived stream has; the kind's own are read by `read_kind`.
template <typename Operator, typename Options>
plugins::ProcessorDescriptor stream_descriptor(std::string kind, std::string help,
                                               void (*read_kind)(config::Section&, Options&)) {
  return {kind, std::move(help), [kind, read_kind](config::Section& s) {
            Options o;
            DerivedStreamOptions d;
            d.kind = kind;
            o.name = d.name = s.text("name", "",
                                     "Name of this processor: the source name of the records it makes (sinks select "
                                     "them with route.sources), and of its counters.");
            read_kind(s, o);
            d.start = s.choice("start", "latest", {"latest", "earliest"},
                               "Where a new processor starts reading: records from now on, or the oldest retained "
                               "record. Ignored once it has state.") == "earliest"
                          ? buffer::StartPosition::kEarliest
                          : buffer::StartPosition::kLatest;
            d.checkpoint_interval = s.duration(
                "checkpoint_interval", d.checkpoint_interval,
                "With input but no output, its position and state are committed at least this often (output is "
                "committed as soon as it has read all there is, and through a backlog every " +
                    std::to_string(d.backlog_commit_records) + " records or " +
                    config::format_duration(d.backlog_commit_interval.count()) +
                    "): after a crash it reads again at most this much input.");
            plugins::read_route(s, d.route,
                                "Which records it takes (as a sink's route). Never its own output; the output of "
                                "another window or deadband only when `sources` names it exactly.");
            d.definition = s.written();
            plugins::ProcessorPlan plan;
            plan.name = o.name;
            plan.name_key = s.key_path("name");
            plan.written = d.definition;
            plan.create_stream = [o, d](buffer::Buffer& buffer, buffer::LogFn log,
                                        const std::vector<std::string>& others) -> std::unique_ptr<drivers::Source> {
              auto options = d;
              for (const auto& other : others) {
                if (other != d.name) options.other_streams.insert(other);
              }
              return std::make_unique<DerivedStream>(std::move(options), std::make_unique<Operator>(o), buffer,
                                                     std::move(log));
            };
            return plan;
          }};
}

std::vector<std::string> fields_key(config::Section& s, const char* help) {
  auto fields = s.text_list("fields", {}, help);
  if (!s.context().docs && fields.empty()) s.context().error(s.key_path("fields"), "required: at least one field");
  return fields;
}

void read_window(config::Section& s, WindowOptions& o) {
  o.fields = fields_key(s, "Required. Dotted JSON paths of the numeric fields to aggregate (true/false count as 1/0).");
  o.aggregates = s.text_list("aggregates", {},
                             "Which of count, min, max, mean, sum, first, last, stddev each field gets (count "
                             "always). Empty: all.");
  for (std::size_t i = 0; i < o.aggregates.size(); ++i) {
    const auto& names = aggregate_names();
    if (std::find(names.begin(), names.end(), o.aggregates[i]) == names.end())
      s.context().error(s.key_path("aggregates") + "[" + std::to_string(i) + "]",
                        "unknown aggregate \"" + o.aggregates[i] +
                            "\" (count, min, max, mean, sum, first, last, stddev)");
  }
  o.decimals = static_cast<int>(s.integer("decimals", -1, -1, 15,
                                          "Round every figure to this many decimals (the sensor's resolution: a "
                                          "mean to 17 digits is noise, and bytes upstream). -1: as computed."));
  const auto size = s.duration("size", std::chrono::minutes(1), "Window length.");
  const auto hop = s.duration("hop", std::chrono::milliseconds(0),
                              "Hopping windows: a new window starts every `hop` (size must be a multiple of it). "
                              "0: tumbling (hop = size).");
  o.size_ns = ns(size);
  o.hop_ns = ns(hop);
  if (!s.context().docs) {
    if (size.count() <= 0) s.context().error(s.key_path("size"), "must be more than 0");
    if (hop.count() < 0 || (hop.count() > 0 && size.count() % hop.count() != 0))
      s.context().error(s.key_path("hop"), "size must be a multiple of hop");
  }
  o.time = s.choice("time", "ingest", {"ingest", "device"},
                    "Which time puts a record in a window: when the gateway took it in, or the time the device "
                    "reported (records without one are counted and passed over).") == "device"
               ? WindowTime::kDevice
               : WindowTime::kIngest;
  o.allowed_lateness_ns = ns(s.duration("allowed_lateness", std::chrono::seconds(1),
                                        "How long a window stays open after its end for records that come late."));
  o.late = s.choice("late", "drop", {"drop", "correct"},
                    "A record for a window already closed: drop it (counted), or emit the window again with it "
                    "(\"revision\": 1, 2, ...) while within correction_horizon.") == "correct"
               ? LatePolicy::kCorrect
               : LatePolicy::kDrop;
  o.correction_horizon_ns = ns(s.duration("correction_horizon", std::chrono::milliseconds(0),
                                          "late = \"correct\": how long a closed window takes corrections. 0: one "
                                          "window size."));
  o.per_topic = s.boolean("per_topic", false, "Windows per device and topic, instead of per device.");
  o.group_by = s.text_list("group_by", {},
                           "Dotted JSON paths whose values also key the windows: one window per device and value "
                           "(e.g. a meter's \"phase\" or a gateway device's \"channel\"); a missing field groups as "
                           "null. The values are written as \"group\" in the window record.");
  o.topic = s.text("topic", "{name}/{device}",
                   "Topic of the window records; {name}, {device} and {group} (the group_by values joined by "
                   "'/') are replaced.");
  o.max_devices = static_cast<std::size_t>(s.integer("max_devices", 10'000, 1, 1'000'000,
                                                     "Most devices with open windows; more are counted and dropped."));
}

void read_deadband(config::Section& s, DeadbandOptions& o) {
  o.fields = fields_key(s, "Required. Dotted JSON paths of the numeric fields watched (true/false count as 1/0).");
  o.band = s.number("band", 0, 0, 1e300,
                    "A field leaves its band when it moved from the value last reported by more than this. With "
                    "band_percent: the larger of the two. Both 0: any change.");
  o.band_percent = s.number("band_percent", 0, 0, 1e6, "The band as a percentage of the value last reported.");
  o.max_silence_ns = ns(s.duration("max_silence", std::chrono::milliseconds(0),
                                   "After this long without a report, the newest reading held back goes out as a "
                                   "confirmation. 0: never."));
  o.per_topic = s.boolean("per_topic", false, "Bands per device and topic, instead of per device.");
  o.group_by = s.text_list("group_by", {},
                           "Dotted JSON paths whose values also key the bands: one band per device and value (a "
                           "missing field groups as null).");
  o.max_devices = static_cast<std::size_t>(s.integer("max_devices", 10'000, 1, 1'000'000,
                                                     "Most devices with state; more are counted and dropped."));
}

}  // namespace
}  // namespace tidegate::streams

namespace tidegate::plugins {

ProcessorDescriptor window_processor_plugin() {
  return streams::stream_descriptor<streams::Window, streams::WindowOptions>(
      "window",
      "Tumbling or hopping windows per device over numeric fields (count, min, max, mean, sum, first, last, "
      "stddev), emitted as records of their own, exactly once through crashes. A derived stream: sinks select its "
      "output with route.sources.",
      streams::read_window);
}

ProcessorDescriptor deadband_processor_plugin() {
  return streams::stream_descriptor<streams::Deadband, streams::DeadbandOptions>(
      "deadband",
      "Report by exception: a reading goes on only when a field leaves its band (or after max_silence), exactly "
      "once through crashes. A derived stream: sinks select its output with route.sources.",
      streams::read_deadband);
}

}  // namespace tidegate::plugins
