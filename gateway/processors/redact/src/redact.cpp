#include "tidegate/processors/redact.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "tidegate/common/json_path.h"
#include "tidegate/plugins/processor_plugin.h"

namespace tidegate::processors {

using processing::Json;
using processing::Verdict;

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  static const char* const hex = "0123456789abcdef";
  std::string text;
  text.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    text.push_back(hex[out[i] >> 4]);
    text.push_back(hex[out[i] & 15]);
  }
  return text;
}

Redact::Redact(const RedactOptions& o) : opts_(o) {
  processing::JsonView::append_quoted(quoted_mask_, opts_.mask);
  for (const auto& p : opts_.patterns)
    patterns_.emplace_back(p);
}

std::string Redact::replacement(std::string_view secret) const {
  switch (opts_.mode) {
    case RedactOptions::Mode::kRemove:
      return {};
    case RedactOptions::Mode::kMask:
      return opts_.mask;
    case RedactOptions::Mode::kHash:
      return hmac_sha256_hex(opts_.key, secret);
  }
  return {};
}

// Every string value below `node`; true if any changed.
bool Redact::redact_strings(Json& node, int depth) const {
  if (depth > 64) return false;  // nlohmann's own limits keep real documents far below
  bool changed = false;
  if (node.is_string()) {
    auto& s = node.get_ref<std::string&>();
    for (const auto& re : patterns_) {
      if (!re.search(s)) continue;
      s = re.replace_all(s, [&](std::string_view match) { return replacement(match); });
      changed = true;
    }
  } else if (node.is_structured()) {
    for (auto& child : node)
      changed |= redact_strings(child, depth + 1);
  }
  return changed;
}

// The fast path, for named fields without patterns; false when the view
// cannot do all of it (then it changed nothing, and the document does).
bool Redact::redact_in_view(processing::JsonView& view) const {
  using Find = processing::JsonView::Find;
  if (!patterns_.empty()) return false;
  found_.clear();
  for (const auto& f : opts_.fields) {
    std::uint32_t key = 0, value = 0;
    const auto found = view.find(f, key, value);
    if (found == Find::kUnsupported) return false;
    if (found == Find::kMissing || view.type(value) == processing::JsonView::Type::kNull) continue;
    // A hash is of the string's text, or of another value's JSON as the
    // document writes it: those (and escaped strings) are the document's.
    if (opts_.mode == RedactOptions::Mode::kHash &&
        (view.type(value) != processing::JsonView::Type::kString || view.escaped(value))) {
      return false;
    }
    found_.emplace_back(key, value);
  }
  for (const auto& [key, value] : found_) {
    if (opts_.mode == RedactOptions::Mode::kRemove) {
      view.remove(key);
      continue;
    }
    if (opts_.mode == RedactOptions::Mode::kMask) {
      view.replace(value, quoted_mask_);
      continue;
    }
    std::string text;
    processing::JsonView::append_quoted(text, replacement(view.raw(value)));
    view.replace(value, text);
  }
  return true;
}

processing::Verdict Redact::process(processing::Message& message) {
  if (auto* view = message.view(); view && redact_in_view(*view)) return Verdict::pass();
  std::string error;
  auto* doc = message.fields(error);
  if (!doc) {
    if (!opts_.fields.empty()) return Verdict::dead_letter(error + " (redact names fields)");
    // Raw text: the patterns apply to the payload's bytes.
    auto& payload = message.record().payload;
    bool changed = false;
    for (const auto& re : patterns_) {
      if (!re.search(payload)) continue;
      message.keep_original();
      payload = re.replace_all(payload, [&](std::string_view match) { return replacement(match); });
      changed = true;
    }
    if (changed) message.payload_replaced();
    return Verdict::pass();
  }
  bool changed = false;
  for (const auto& f : opts_.fields) {
    if (opts_.mode == RedactOptions::Mode::kRemove) {
      changed |= common::take_json_path(*doc, f).has_value();
      continue;
    }
    Json* v = common::find_json_path(*doc, f);
    if (!v || v->is_null()) continue;
    // A string is hashed as its text, anything else as its JSON.
    *v = replacement(v->is_string() ? v->get_ref<const std::string&>()
                                    : v->dump(-1, ' ', false, Json::error_handler_t::replace));
    changed = true;
  }
  if (!patterns_.empty()) changed |= redact_strings(*doc, 0);
  if (changed) message.fields_changed();
  return Verdict::pass();
}

namespace {

void read_options(config::Section& s, RedactOptions& o) {
  o.fields = s.text_list("fields", {}, "Fields to redact (dotted names for nested ones).");
  o.patterns = s.text_list("patterns", {},
                           "POSIX extended regular expressions; every match in a string value (or in the text of a "
                           "payload that is not JSON) is redacted, e.g. '([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}' for MAC "
                           "addresses.");
  const auto mode = s.choice("mode", "mask", {"remove", "mask", "hash"},
                             "remove: the field or match goes. mask: replaced by `mask`. hash: replaced by "
                             "HMAC-SHA256 (hex) under the key in key_file: joinable upstream, unreadable.");
  o.mode = mode == "remove" ? RedactOptions::Mode::kRemove
           : mode == "hash" ? RedactOptions::Mode::kHash
                            : RedactOptions::Mode::kMask;
  o.mask = s.text("mask", "****", "The text that replaces a masked value.");
  const auto key_file = s.text("key_file", "",
                               "mode = \"hash\": a file holding the HMAC key (at least 16 bytes; a final newline is "
                               "not part of it). Readable by the gateway only (mode 0600). The same key on every "
                               "gateway of a site makes hashes comparable across them.");
  auto& ctx = s.context();
  if (ctx.docs) return;
  if (o.fields.empty() && o.patterns.empty()) ctx.error(s.key_path("fields"), "name fields or patterns to redact");
  for (std::size_t i = 0; i < o.patterns.size(); ++i) {
    try {
      processing::Regex re(o.patterns[i]);
    } catch (const processing::RegexError& e) {
      ctx.error(s.key_path("patterns") + "[" + std::to_string(i) + "]", e.what());
    }
  }
  if (o.mode != RedactOptions::Mode::kHash) return;
  if (key_file.empty()) {
    ctx.error(s.key_path("key_file"), "mode = \"hash\" needs a key_file");
    return;
  }
  if (!config::check_readable_file(ctx, s.key_path("key_file"), key_file, "key file")) return;
  std::ifstream in(key_file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  o.key = text.str();
  while (!o.key.empty() && (o.key.back() == '\n' || o.key.back() == '\r'))
    o.key.pop_back();
  if (o.key.size() < 16) {
    ctx.error(s.key_path("key_file"), "the key in \"" + key_file + "\" has " + std::to_string(o.key.size()) +
                                          " bytes; use at least 16 (e.g. openssl rand -hex 32 > FILE)");
  }
  // A changed key restarts the sinks using it at a reload; only its digest
  // is kept for that comparison.
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(o.key.data()), o.key.size(), digest);
  o.files_read = "\n# key " + hmac_sha256_hex(std::string_view(reinterpret_cast<char*>(digest), sizeof digest), "");
}

}  // namespace
}  // namespace tidegate::processors

namespace tidegate::plugins {

ProcessorDescriptor redact_processor_plugin() {
  return processor_descriptor<processors::Redact, processors::RedactOptions>(
      "redact", "Removes, masks or HMAC-hashes named fields and regex matches (personal data).",
      processors::read_options);
}

}  // namespace tidegate::plugins
