#include "tidegate/processors/enrich.h"

#include <fstream>
#include <sstream>

#include "tidegate/common/json_path.h"
#include "tidegate/common/patterns.h"
#include "tidegate/plugins/processor_plugin.h"

namespace tidegate::processors {

bool EnrichRule::matches(const std::string& device_id, const std::string& topic_name) const {
  return (device.empty() || common::glob_matches(device, device_id)) &&
         (topic.empty() || common::topic_matches(topic, topic_name));
}

Enrich::Enrich(const EnrichOptions& options) : opts_(options) {}

const Enrich::Merged& Enrich::merged_for(const std::string& device, const std::string& topic) {
  key_.assign(device);  // a member: no allocation per record once warm
  key_.push_back('\0');
  key_ += topic;
  if (auto it = cache_.find(key_); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCached) cache_.clear();  // many distinct topics: start over rather than grow
  Merged merged;
  merged.fields = processing::Json::object();
  for (const auto& rule : opts_.rules) {
    if (!rule.matches(device, topic)) continue;
    for (const auto& [k, v] : rule.fields.items())
      merged.fields[k] = v;
  }
  for (const auto& [k, v] : merged.fields.items())
    merged.texts.emplace_back(k, v.dump(-1, ' ', false, processing::Json::error_handler_t::replace));
  return cache_.emplace(key_, std::move(merged)).first->second;
}

bool Enrich::add_to_view(processing::JsonView& view, const Merged& add) const {
  using Find = processing::JsonView::Find;
  for (const auto& [path, text] : add.texts) {
    std::uint32_t key = 0, value = 0;
    const auto found = view.find(path, key, value);
    if (found == Find::kUnsupported) return false;
    if (found == Find::kFound) {
      if (opts_.overwrite) view.replace(value, text);
      continue;
    }
    const auto dot = path.rfind('.');
    if (dot == std::string::npos) {
      view.append(0, path, text);
      continue;
    }
    // Into an existing object only; creating one is the document's job.
    if (view.find(std::string_view(path).substr(0, dot), key, value) != Find::kFound ||
        view.type(value) != processing::JsonView::Type::kObject) {
      return false;
    }
    view.append(value, std::string_view(path).substr(dot + 1), text);
  }
  return true;
}

processing::Verdict Enrich::process(processing::Message& message) {
  const auto& r = message.record();
  const auto& add = merged_for(r.partition_key, r.topic);
  if (add.texts.empty()) return processing::Verdict::pass();
  if (auto* view = message.view(); view && add_to_view(*view, add)) return processing::Verdict::pass();
  // The document: what the view added already is found there and kept.
  std::string error;
  auto* doc = message.fields(error);
  if (!doc) return processing::Verdict::dead_letter(error);
  for (const auto& [path, value] : add.fields.items()) {
    if (!opts_.overwrite && common::find_json_path(*doc, path)) continue;
    if (!common::set_json_path(*doc, path, value)) {
      return processing::Verdict::dead_letter("cannot add " + path + ": a level on its path is not an object");
    }
  }
  message.fields_changed();
  return processing::Verdict::pass();
}

namespace {

void read_rule_fields(config::Section& s, processing::Json& fields, const std::string& help) {
  s.declare("fields", "table", "{}", help);
  fields = processing::Json::object();
  const auto* n = s.node("fields");
  if (!n) return;
  if (!n->is_table()) {
    s.context().error(s.key_path("fields"), "expected a table, e.g. { site = \"plant-3\", floor = 2 }");
    return;
  }
  fields = plugins::toml_to_json(*n);
}

void read_options(config::Section& s, EnrichOptions& o) {
  EnrichRule all;
  read_rule_fields(s, all.fields,
                   "Fields added to every record, e.g. { site = \"plant-3\", \"meta.region\" = \"eu\" } (a dotted "
                   "name is a nested field).");
  if (!all.fields.empty()) o.rules.push_back(std::move(all));
  s.tables("rules", s.doc_section() + ".rules", "Fields for the records of some devices or topics.",
           [&](config::Section& r, std::size_t) {
             EnrichRule rule;
             rule.device = r.text("device", "", "Device ids (partition key) this rule applies to; * and ? are "
                                                "wildcards. Empty: any.");
             rule.topic = r.text("topic", "", "MQTT topic filter this rule applies to. Empty: any.");
             read_rule_fields(r, rule.fields, "The fields this rule adds.");
             o.rules.push_back(std::move(rule));
           });
  const std::string file =
      s.text("table_file", "",
             "A table file, applied after the rules above: CSV whose header is device (or topic) and then field "
             "names (\"device,building,floor\"), or TOML (.toml) with [[rules]] tables. Read at start and on "
             "SIGHUP.");
  o.overwrite = s.boolean("overwrite", false,
                          "Replace a field the device sent itself. false: the device's value stays.");
  if (s.context().docs || file.empty()) return;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    s.context().error(s.key_path("table_file"), "cannot read \"" + file + "\"");
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  try {
    auto rows = load_enrich_file(file, text.str());
    o.rules.insert(o.rules.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
    o.files_read = "\n# " + file + "\n" + text.str();
  } catch (const std::exception& e) {
    s.context().error(s.key_path("table_file"), e.what());
  }
}

}  // namespace
}  // namespace tidegate::processors

namespace tidegate::plugins {

ProcessorDescriptor enrich_processor_plugin() {
  return processor_descriptor<processors::Enrich, processors::EnrichOptions>(
      "enrich", "Adds fields (site, building, zone, asset) from a static table keyed by device and topic.",
      processors::read_options);
}

}  // namespace tidegate::plugins
