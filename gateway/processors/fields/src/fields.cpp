#include "tidegate/processors/fields.h"

#include "tidegate/common/json_path.h"
#include "tidegate/plugins/processor_plugin.h"

namespace tidegate::processors {

using processing::Json;
using processing::Verdict;

processing::Verdict Rename::process(processing::Message& message) {
  std::string error;
  auto* doc = message.fields(error);
  if (!doc) return Verdict::dead_letter(error);
  bool changed = false;
  for (const auto& [from, to] : opts_.renames) {
    auto value = common::take_json_path(*doc, from);
    if (!value) continue;  // absent: nothing to rename
    if (!common::set_json_path(*doc, to, std::move(*value))) {
      return Verdict::dead_letter("cannot rename " + from + " to " + to + ": a level on the way is not an object");
    }
    changed = true;
  }
  if (changed) message.fields_changed();
  return Verdict::pass();
}

processing::Verdict DropFields::process(processing::Message& message) {
  std::string error;
  auto* doc = message.fields(error);
  if (!doc) return Verdict::dead_letter(error);
  bool changed = false;
  for (const auto& f : opts_.fields)
    changed |= common::take_json_path(*doc, f).has_value();
  if (changed) message.fields_changed();
  return Verdict::pass();
}

processing::Verdict KeepFields::process(processing::Message& message) {
  std::string error;
  auto* doc = message.fields(error);
  if (!doc) return Verdict::dead_letter(error);
  Json kept = Json::object();
  for (const auto& f : opts_.fields) {
    if (const auto* v = common::find_json_path(*doc, f)) common::set_json_path(kept, f, *v);
  }
  *doc = std::move(kept);
  message.fields_changed();
  return Verdict::pass();
}

namespace {

void read_rename(config::Section& s, RenameOptions& o) {
  s.declare("fields", "table of strings", "{}",
            "Old name = new name, e.g. { temp = \"temperature\", \"meta.rm\" = \"room\" }; applied in order. An "
            "absent field is left alone; an existing field of the new name is replaced.");
  const auto* n = s.node("fields");
  const auto* t = n ? n->as_table() : nullptr;
  if (s.context().docs) return;
  if (!t || t->empty()) {
    s.context().error(s.key_path("fields"), "required: a table of old name = new name");
    return;
  }
  for (const auto& [k, v] : *t) {
    auto to = v.value_exact<std::string>();
    if (!to || to->empty()) {
      s.context().error(s.key_path("fields") + "." + std::string(k.str()), "expected the new name (a string)");
      continue;
    }
    o.renames.emplace_back(std::string(k.str()), *to);
  }
}

void read_list(config::Section& s, FieldListOptions& o, const char* help) {
  o.fields = s.text_list("fields", {}, help);
  if (!s.context().docs && o.fields.empty()) s.context().error(s.key_path("fields"), "required: at least one field");
}

void read_drop(config::Section& s, FieldListOptions& o) {
  read_list(s, o, "Fields removed from each record (dotted names for nested ones).");
}

void read_keep(config::Section& s, FieldListOptions& o) {
  read_list(s, o, "The only fields each record keeps; the rest are removed.");
}

}  // namespace
}  // namespace tidegate::processors

namespace tidegate::plugins {

ProcessorDescriptor rename_processor_plugin() {
  return processor_descriptor<processors::Rename, processors::RenameOptions>(
      "rename", "Renames JSON fields.", processors::read_rename);
}

ProcessorDescriptor drop_fields_processor_plugin() {
  return processor_descriptor<processors::DropFields, processors::FieldListOptions>(
      "drop_fields", "Removes JSON fields.", processors::read_drop);
}

ProcessorDescriptor keep_fields_processor_plugin() {
  return processor_descriptor<processors::KeepFields, processors::FieldListOptions>(
      "keep_fields", "Keeps only the named JSON fields.", processors::read_keep);
}

}  // namespace tidegate::plugins
