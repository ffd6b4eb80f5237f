#include "tidegate/processors/fields.h"

#include "tidegate/common/json_path.h"
#include "tidegate/plugins/processor_plugin.h"

namespace tidegate::processors {

using processing::Json;
using processing::Verdict;

namespace {

using Find = processing::JsonView::Find;

std::string_view parent_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
}

std::string_view last_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

// The fast paths; false when the view cannot do it (the document then
// does all of it: what the view did already is found done there).
bool rename_in_view(processing::JsonView& view, const RenameOptions& o) {
  for (const auto& [from, to] : o.renames) {
    std::uint32_t key = 0, value = 0;
    const auto found = view.find(from, key, value);
    if (found == Find::kMissing) continue;
    if (found == Find::kUnsupported || parent_of(from) != parent_of(to)) return false;
    if (from == to) continue;
    std::uint32_t old_key = 0, old_value = 0;
    const auto existing = view.find(to, old_key, old_value);
    if (existing == Find::kUnsupported) return false;
    if (existing == Find::kFound) view.remove(old_key);  // the renamed field replaces it
    view.rename(key, last_of(to));
  }
  return true;
}

bool drop_in_view(processing::JsonView& view, const FieldListOptions& o) {
  for (const auto& f : o.fields) {
    std::uint32_t key = 0, value = 0;
    const auto found = view.find(f, key, value);
    if (found == Find::kUnsupported) return false;
    if (found == Find::kFound) view.remove(key);
  }
  return true;
}

bool keep_in_view(processing::JsonView& view, const FieldListOptions& o) {
  // Top-level names only, and nothing appended to the root.
  for (const auto& f : o.fields) {
    if (f.find('.') != std::string::npos) return false;
  }
  if (view.has_appended(0)) return false;
  for (const auto key : view.root_members()) {
    std::uint32_t k = 0, v = 0;
    // A member's current name: find it by each kept name.
    bool kept = false;
    for (const auto& f : o.fields) {
      if (view.find(f, k, v) == Find::kFound && k == key) {
        kept = true;
        break;
      }
    }
    if (!kept) view.remove(key);
  }
  return true;
}

}  // namespace

processing::Verdict Rename::process(processing::Message& message) {
  if (auto* view = message.view(); view && rename_in_view(*view, opts_)) return Verdict::pass();
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
  if (auto* view = message.view(); view && drop_in_view(*view, opts_)) return Verdict::pass();
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
  if (auto* view = message.view(); view && keep_in_view(*view, opts_)) return Verdict::pass();
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
