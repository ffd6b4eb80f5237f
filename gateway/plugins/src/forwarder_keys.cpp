#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/plugins/sink_plugin.h"

namespace tidegate::plugins {

void read_forwarder_keys(config::Section& s, forward::ForwarderOptions& f, std::chrono::milliseconds default_linger) {
  f.start = s.choice("start", "earliest", {"earliest", "latest"},
                     "Where a new sink starts: the oldest record in the buffer (history plus live data) or only "
                     "records from now on. Ignored once the sink has a cursor.") == "latest"
                ? buffer::StartPosition::kLatest
                : buffer::StartPosition::kEarliest;
  f.max_records = static_cast<std::size_t>(
      s.integer("batch_max_records", 2000, 1, 100'000,
                "Records per send, at most; the sink's own limit applies too (see its kind). Larger batches drain "
                "a backlog faster."));
  f.linger = s.duration("linger", default_linger,
                        "How long a batch that is not full may wait for more records before it is sent, counted "
                        "from its oldest record's ingest (so the buffer's commit window is part of it).");
  f.retry_min = s.duration("retry_min", std::chrono::milliseconds(200), "First retry delay after a failed send.");
  f.retry_max = s.duration("retry_max", std::chrono::minutes(1),
                           "Longest retry delay; delays double up to it, with random jitter.");
  f.max_bytes_per_s =
      s.size("max_bandwidth", 0, "Bytes per second to this sink, at most (metered uplinks). 0 = no cap.");
  f.drain = s.choice("drain", "oldest-first", {"oldest-first", "live-first"},
                     "Order after an outage. oldest-first: strictly by sequence, every device's readings in order; "
                     "live readings wait until the backlog is through. live-first: once a backlog is older than "
                     "live_lag, new readings go first with one backlog batch between live batches (newer readings "
                     "of a device can arrive before its older backlogged ones).") == "live-first"
                ? forward::DrainOrder::kLiveFirst
                : forward::DrainOrder::kOldestFirst;
  f.live_lag = s.duration("live_lag", std::chrono::minutes(1),
                          "live-first: how old the oldest undelivered record must be before live readings overtake.");
}

void read_routing_keys(config::Section& s, SinkPlan& plan) {
  plan.processors = s.text_list("processors", {},
                                "Processor names ([[processors.KIND]] name), applied in this order to each record "
                                "this sink forwards; the buffer keeps the original. A record a processor cannot "
                                "handle is dead-lettered with the processor's name and the reason.");
  plan.processors_key = s.key_path("processors");
  read_route(s, plan.route,
             "Which records this sink forwards: a record is sent when it matches every list given (one entry of a "
             "list suffices). Records not selected move the cursor unsent and are counted as not routed. No route: "
             "everything. The gateway's heartbeat has source \"tidegate\".");
}

void read_route(config::Section& s, processing::Route& route, const std::string& help) {
  s.table("route", s.doc_section() + ".route", help, [&](config::Section& r) {
    route.sources = r.text_list("sources", {}, "Source names; * and ? are wildcards.");
    route.topics = r.text_list("topics", {}, "MQTT topic filters (+ one level, # the rest).");
    route.devices = r.text_list("devices", {}, "Device ids (partition keys); * and ? are wildcards.");
    route.content_types =
        r.text_list("content_types", {}, "Content types, e.g. \"application/json\"; * and ? are wildcards; \"\" is unknown.");
  });
}

}  // namespace tidegate::plugins
