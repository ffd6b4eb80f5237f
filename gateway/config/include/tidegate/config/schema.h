// The configuration's declaration style: every key is declared once, with
// its type, default and help text, by the code that reads it. The same
// declarations validate a file (errors name file, key and reason) and, in
// describe mode, write the reference page (docs/configuration.md), so the
// two cannot disagree. Plugins (sources, sinks) declare their own keys with
// this API in their own folders.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace tidegate::config {

struct ConfigError {
  std::string file;
  std::string key;  // dotted path, e.g. "sources.mqtt[0].port"; empty for the file itself
  std::string reason;
  std::string text() const;  // "FILE: KEY: REASON"
};

// Looks up environment variables (injected so tests need not set real ones).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// One declared key, for the reference.
struct KeyDoc {
  std::string section;
  std::string key;
  std::string type;
  std::string default_text;
  std::string help;
  bool array = false;  // a section that is an array of tables ([[...]])
};

// Shared state of one load: where errors go, and (in describe mode, when
// there is no document) where key declarations go.
struct Context {
  std::string file;
  EnvLookup env;
  std::vector<ConfigError> errors;
  std::vector<KeyDoc>* docs = nullptr;  // describe mode

  void error(const std::string& key, const std::string& reason) { errors.push_back({file, key, reason}); }
};

std::string in_quotes(const std::string& s);
// "64MiB", "1GB", "512k" or a plain integer: bytes; nullopt if malformed or
// past 64 bits.
std::optional<std::uint64_t> parse_size(std::string_view text);
// "250ms", "10s", "5m", "2h", "7d": milliseconds.
std::optional<std::int64_t> parse_duration_ms(std::string_view text);
std::string format_duration(std::int64_t ms);
std::string format_size(std::uint64_t bytes);

class Section {
 public:
  Section(Context& ctx, const toml::table* table, std::string path, std::string doc_section)
      : ctx_(ctx), table_(table), path_(std::move(path)), doc_section_(std::move(doc_section)) {}

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // The table as written (normalised TOML), to tell a changed one from an
  // unchanged one at a reload; empty when the table is absent.
  std::string written() const {
    if (!table_) return "";
    std::ostringstream out;
    out << *table_;
    return out.str();
  }

  std::string text(const std::string& key, const std::string& def, const std::string& help) {
    declare(key, "string", def.empty() ? "(empty)" : in_quotes(def), help);
    const toml::node* n = node(key);
    if (!n) return def;
    if (auto v = n->value<std::string>()) return *v;
    ctx_.error(key_path(key), "expected a string");
    return def;
  }

  std::int64_t integer(const std::string& key, std::int64_t def, std::int64_t min, std::int64_t max,
                       const std::string& help) {
    declare(key,
            max == std::numeric_limits<std::int64_t>::max()
                ? "integer (" + std::to_string(min) + " or more)"
                : "integer (" + std::to_string(min) + " to " + std::to_string(max) + ")",
            std::to_string(def), help);
    const toml::node* n = node(key);
    if (!n) return def;
    auto v = n->value_exact<std::int64_t>();
    if (!v) {
      ctx_.error(key_path(key), "expected an integer");
      return def;
    }
    if (*v < min || *v > max) {
      ctx_.error(key_path(key), "out of range: " + std::to_string(*v) + " (allowed " + std::to_string(min) + " to " +
                                    std::to_string(max) + ")");
      return def;
    }
    return *v;
  }

  double number(const std::string& key, double def, double min, double max, const std::string& help) {
    std::ostringstream d;
    d << def;
    declare(key, "number", d.str(), help);
    const toml::node* n = node(key);
    if (!n) return def;
    auto v = n->value<double>();
    if (!v) {
      ctx_.error(key_path(key), "expected a number");
      return def;
    }
    if (*v < min || *v > max) {
      std::ostringstream r;
      r << "out of range: " << *v << " (allowed " << min << " to " << max << ")";
      ctx_.error(key_path(key), r.str());
      return def;
    }
    return *v;
  }

  bool boolean(const std::string& key, bool def, const std::string& help) {
    declare(key, "boolean", def ? "true" : "false", help);
    const toml::node* n = node(key);
    if (!n) return def;
    if (auto v = n->value_exact<bool>()) return *v;
    ctx_.error(key_path(key), "expected true or false");
    return def;
  }

  std::uint64_t size(const std::string& key, std::uint64_t def, const std::string& help) {
    const std::string shown = format_size(def);
    declare(key, "size (bytes, or \"64MiB\", \"1GB\")", shown == std::to_string(def) ? shown : in_quotes(shown), help);
    const toml::node* n = node(key);
    if (!n) return def;
    if (auto v = n->value_exact<std::int64_t>(); v && *v >= 0) return static_cast<std::uint64_t>(*v);
    if (auto s = n->value_exact<std::string>()) {
      if (auto bytes = parse_size(*s)) return *bytes;
    }
    ctx_.error(key_path(key), "expected a size such as 1048576, \"512KiB\", \"64MiB\" or \"1GB\"");
    return def;
  }

  // A size the code holds in a std::size_t (a payload, a request body, a
  // file): on a 32-bit platform a value of 4 GiB or more is refused with the
  // key named, never truncated.
  std::size_t memory_size(const std::string& key, std::size_t def, const std::string& help) {
    const std::uint64_t bytes = size(key, def, help);
    if (bytes > std::numeric_limits<std::size_t>::max()) {
      ctx_.error(key_path(key), format_size(bytes) + " (" + std::to_string(bytes) + " bytes) does not fit this " +
                                    std::to_string(8 * sizeof(std::size_t)) + "-bit platform: at most " +
                                    std::to_string(std::numeric_limits<std::size_t>::max()) + " bytes");
      return def;
    }
    return static_cast<std::size_t>(bytes);
  }

  std::chrono::milliseconds duration(const std::string& key, std::chrono::milliseconds def, const std::string& help) {
    declare(key, "duration (\"250ms\", \"10s\", \"5m\", \"2h\", \"7d\")", in_quotes(format_duration(def.count())),
            help);
    const toml::node* n = node(key);
    if (!n) return def;
    if (auto s = n->value_exact<std::string>()) {
      if (auto ms = parse_duration_ms(*s)) return std::chrono::milliseconds(*ms);
    }
    ctx_.error(key_path(key), "expected a duration such as \"250ms\", \"10s\", \"5m\", \"2h\" or \"7d\"");
    return def;
  }

  std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& allowed,
                     const std::string& help) {
    std::string type = "one of";
    for (const auto& a : allowed)
      type += " " + in_quotes(a);
    declare(key, type, in_quotes(def), help);
    const std::string v = text_quiet(key, def);
    for (const auto& a : allowed) {
      if (v == a) return v;
    }
    std::string list;
    for (const auto& a : allowed)
      list += (list.empty() ? "" : ", ") + in_quotes(a);
    ctx_.error(key_path(key), "unknown value " + in_quotes(v) + " (allowed: " + list + ")");
    return def;
  }

  std::vector<std::string> text_list(const std::string& key, const std::vector<std::string>& def,
                                     const std::string& help) {
    std::string d = "[";
    for (const auto& s : def)
      d += (d.size() > 1 ? ", " : "") + in_quotes(s);
    declare(key, "list of strings", d + "]", help);
    const toml::node* n = node(key);
    if (!n) return def;
    const auto* arr = n->as_array();
    if (!arr) {
      ctx_.error(key_path(key), "expected a list of strings");
      return def;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      if (auto s = (*arr)[i].value_exact<std::string>()) {
        out.push_back(*s);
      } else {
        ctx_.error(key_path(key) + "[" + std::to_string(i) + "]", "expected a string");
      }
    }
    return out;
  }

  // An array of tables ([[key]]); in describe mode, visit() sees one entry
  // with no table so that its keys get declared.
  template <typename Visit>
  void tables(const std::string& key, const std::string& doc_name, const std::string& help, Visit&& visit) {
    if (ctx_.docs) {
      ctx_.docs->push_back({doc_name, "", "", "", help, true});
      Section entry(ctx_, nullptr, "", doc_name);
      visit(entry, 0);
      return;
    }
    known_.insert(key);
    const toml::node* n = node(key);
    if (!n) return;
    const auto* arr = n->as_array();
    if (!arr) {
      ctx_.error(key_path(key), "expected an array of tables ([[" + key_path(key) + "]])");
      return;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string p = key_path(key) + "[" + std::to_string(i) + "]";
      const auto* t = (*arr)[i].as_table();
      if (!t) {
        ctx_.error(p, "expected a table");
        continue;
      }
      Section entry(ctx_, t, p, doc_name);
      visit(entry, i);
      entry.finish();
    }
  }

  // A sub-table ([key]); describe mode passes no table.
  template <typename Visit>
  void table(const std::string& key, const std::string& doc_name, const std::string& help, Visit&& visit) {
    if (ctx_.docs) {
      ctx_.docs->push_back({doc_name, "", "", "", help});
      Section sub(ctx_, nullptr, "", doc_name);
      visit(sub);
      return;
    }
    known_.insert(key);
    const toml::node* n = node(key);
    const toml::table* t = n ? n->as_table() : nullptr;
    if (n && !t) {
      ctx_.error(key_path(key), "expected a table");
      return;
    }
    Section sub(ctx_, t, key_path(key), doc_name);
    visit(sub);
    sub.finish();
  }

  void finish() {
    if (!table_) return;
    for (const auto& [k, v] : *table_) {
      const std::string name(k.str());
      if (!known_.count(name)) ctx_.error(key_path(name), "unknown key");
    }
  }

  bool present(const std::string& key) const { return table_ && table_->contains(key); }
  Context& context() { return ctx_; }
  const std::string& doc_section() const { return doc_section_; }

  // For value types of one plugin (e.g. MQTT subscriptions): declare the
  // key, then read its node; accept() marks a key known without a row.
  void declare(const std::string& key, const std::string& type, const std::string& def, const std::string& help) {
    known_.insert(key);
    if (ctx_.docs) ctx_.docs->push_back({doc_section_, key, type, def, help});
  }
  void accept(const std::string& key) { known_.insert(key); }
  const toml::node* node(const std::string& key) const { return table_ ? table_->get(key) : nullptr; }
  // A string without a reference row (for keys declared another way).
  std::string text_quiet(const std::string& key, const std::string& def) {
    const toml::node* n = node(key);
    if (!n) return def;
    if (auto v = n->value_exact<std::string>()) return *v;
    ctx_.error(key_path(key), "expected a string");
    return def;
  }

 private:
  Context& ctx_;
  const toml::table* table_;
  std::string path_;
  std::string doc_section_;
  std::set<std::string> known_;
};

// A file the configuration names must be readable by the gateway's user:
// opened and read, so a directory or a missing file fails for root too.
// False (with the error) if it is not.
bool check_readable_file(Context& ctx, const std::string& key, const std::string& path, const char* what);
// A file the gateway will create: its directory must be writable, or creatable.
void check_creatable_file(Context& ctx, const std::string& key, const std::filesystem::path& path);

// TIDEGATE_<KIND>_<NAME>_<WHAT>, NAME upper-cased with other characters as '_'.
std::string env_name(const char* kind, const std::string& name, const char* what);
// "host:port", "[v6]:port", or either without the port (port_text empty).
void split_host_port(const std::string& text, std::string& host, std::string& port_text);
// A decimal port number from `min` to 65535, nothing else.
bool parse_port(const std::string& text, unsigned min, std::uint16_t& port);
// host:port from "mqtt://host:port" / "mqtts://host:port" / "host:port".
bool parse_broker_url(const std::string& url, std::string& host, std::uint16_t& port, bool& tls);
// A listening address: "host:port" or "[v6]:port", the host a literal
// address, the port required (0: any free port).
bool parse_listen(const std::string& text, std::string& address, std::uint16_t& port);

}  // namespace tidegate::config
