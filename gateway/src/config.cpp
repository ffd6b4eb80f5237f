#include "tidegate/gateway/config.h"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <fstream>
#include <set>
#include <sstream>
#include <boost/asio/ip/address.hpp>
#include <toml++/toml.h>

#include "tidegate/drivers/ingest_support.h"

namespace tidegate::gateway {
namespace {

// One declared key, for the reference.
struct KeyDoc {
  std::string section;
  std::string key;
  std::string type;
  std::string default_text;
  std::string help;
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

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// "64MiB", "1GB", "512k" or a plain integer: bytes.
std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string unit(ptr, text.data() + text.size());
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, std::uint64_t> kUnits[] = {
      {"", 1}, {"b", 1}, {"k", 1ull << 10}, {"kib", 1ull << 10}, {"kb", 1000}, {"m", 1ull << 20},
      {"mib", 1ull << 20}, {"mb", 1000'000}, {"g", 1ull << 30}, {"gib", 1ull << 30}, {"gb", 1000'000'000}};
  for (const auto& [name, factor] : kUnits) {
    if (unit != name) continue;
    if (value > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;  // would wrap
    return value * factor;
  }
  return std::nullopt;
}

// "250ms", "10s", "5m", "2h", "7d": milliseconds.
std::optional<std::int64_t> parse_duration_ms(std::string_view text) {
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data() || value < 0) return std::nullopt;
  const std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  if (unit == "ms") return value;
  if (unit == "s") return value * 1000;
  if (unit == "m") return value * 60'000;
  if (unit == "h") return value * 3'600'000;
  if (unit == "d") return value * 86'400'000;
  return std::nullopt;
}

std::string format_duration(std::int64_t ms) {
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

// Reads one TOML table against declared keys. Every getter declares its key
// (describe mode records it; normal mode marks it known); finish() reports
// any key of the table that nobody declared.
class Section {
 public:
  Section(Context& ctx, const toml::table* table, std::string path, std::string doc_section)
      : ctx_(ctx), table_(table), path_(std::move(path)), doc_section_(std::move(doc_section)) {}

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

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
    declare(key, "duration (\"250ms\", \"10s\", \"5m\", \"2h\", \"7d\")", in_quotes(format_duration(def.count())), help);
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
    for (const auto& a : allowed) type += " " + in_quotes(a);
    declare(key, type, in_quotes(def), help);
    const std::string v = text_quiet(key, def);
    for (const auto& a : allowed) {
      if (v == a) return v;
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + in_quotes(a);
    ctx_.error(key_path(key), "unknown value " + in_quotes(v) + " (allowed: " + list + ")");
    return def;
  }

  std::vector<std::string> text_list(const std::string& key, const std::vector<std::string>& def,
                                     const std::string& help) {
    std::string d = "[";
    for (const auto& s : def) d += (d.size() > 1 ? ", " : "") + in_quotes(s);
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

  // MQTT subscriptions: a list whose entries are filter strings (with the
  // default QoS) or {filter = "...", qos = N} tables.
  std::vector<drivers::mqtt::Subscription> subscriptions(const std::string& key, std::uint8_t default_qos,
                                                         const std::string& help) {
    declare(key, "list of filters", "[\"sensors/#\"]", help);
    const toml::node* n = node(key);
    if (!n) return {{"sensors/#", default_qos}};
    const auto* arr = n->as_array();
    if (!arr) {
      ctx_.error(key_path(key), "expected a list of topic filters");
      return {};
    }
    std::vector<drivers::mqtt::Subscription> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string at = key_path(key) + "[" + std::to_string(i) + "]";
      const auto& entry = (*arr)[i];
      drivers::mqtt::Subscription sub{"", default_qos};
      if (auto text = entry.value_exact<std::string>()) {
        sub.filter = *text;
      } else if (const auto* t = entry.as_table()) {
        Section item(ctx_, t, at, doc_section_);
        sub.filter = item.text_quiet("filter", "");
        const auto q = t->get("qos") ? t->get("qos")->value_exact<std::int64_t>() : std::optional<std::int64_t>(default_qos);
        if (!q || *q < 0 || *q > 1) ctx_.error(at + ".qos", "expected 0 or 1");
        sub.qos = static_cast<std::uint8_t>(q.value_or(default_qos) == 0 ? 0 : 1);
        item.known_.insert("filter");
        item.known_.insert("qos");
        item.finish();
      } else {
        ctx_.error(at, "expected a topic filter string or {filter = \"...\", qos = N}");
        continue;
      }
      if (sub.filter.empty()) {
        ctx_.error(at, "empty topic filter");
        continue;
      }
      const auto hash = sub.filter.find('#');
      if (hash != std::string::npos && hash != sub.filter.size() - 1) {
        ctx_.error(at, "'#' must be the last character of a filter: \"" + sub.filter + "\"");
        continue;
      }
      out.push_back(std::move(sub));
    }
    return out;
  }

  // An array of tables ([[key]]); in describe mode, visit() sees one entry
  // with no table so that its keys get declared.
  template <typename Visit>
  void tables(const std::string& key, const std::string& doc_name, const std::string& help, Visit&& visit) {
    if (ctx_.docs) {
      ctx_.docs->push_back({doc_name, "", "", "", help});
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

 private:
  void declare(const std::string& key, const std::string& type, const std::string& def, const std::string& help) {
    known_.insert(key);
    if (ctx_.docs) ctx_.docs->push_back({doc_section_, key, type, def, help});
  }
  const toml::node* node(const std::string& key) const { return table_ ? table_->get(key) : nullptr; }
  std::string text_quiet(const std::string& key, const std::string& def) {
    const toml::node* n = node(key);
    if (!n) return def;
    if (auto v = n->value_exact<std::string>()) return *v;
    ctx_.error(key_path(key), "expected a string");
    return def;
  }

  Context& ctx_;
  const toml::table* table_;
  std::string path_;
  std::string doc_section_;
  std::set<std::string> known_;
};

void check_readable_file(Context& ctx, const std::string& key, const std::string& path, const char* what) {
  if (path.empty()) return;
  if (::access(path.c_str(), R_OK) != 0) ctx.error(key, std::string(what) + " " + in_quotes(path) + " is not readable");
}

// The buffer's directory must exist and be writable, or be creatable.
void check_buffer_path(Context& ctx, const std::string& key, const std::filesystem::path& path) {
  if (path.empty()) return ctx.error(key, "must not be empty");
  std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && ::access(path.c_str(), R_OK | W_OK) != 0) {
    return ctx.error(key, in_quotes(path.string()) + " exists but is not readable and writable");
  }
  while (!std::filesystem::exists(dir, ec)) {
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  if (!std::filesystem::is_directory(dir, ec) || ::access(dir.c_str(), W_OK | X_OK) != 0) {
    ctx.error(key, "directory " + in_quotes(dir.string()) + " is not writable, so " + in_quotes(path.string()) +
                       " cannot be created");
  }
}

buffer::LogLevel parse_level(const std::string& s) {
  if (s == "debug") return buffer::LogLevel::kDebug;
  if (s == "warning") return buffer::LogLevel::kWarning;
  if (s == "error") return buffer::LogLevel::kError;
  return buffer::LogLevel::kInfo;
}

// TIDEGATE_<KIND>_<NAME>_<WHAT>, NAME upper-cased with other characters as '_'.
std::string env_name(const char* kind, const std::string& name, const char* what) {
  std::string out = std::string("TIDEGATE_") + kind + "_";
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
  return out + "_" + what;
}

// "host:port", "[v6]:port", or either without the port (port_text empty).
void split_host_port(const std::string& text, std::string& host, std::string& port_text) {
  port_text.clear();
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) {  // unbalanced: no host at all
      host.clear();
      return;
    }
    host = text.substr(1, close - 1);
    if (close + 1 < text.size() && text[close + 1] == ':') port_text = text.substr(close + 2);
    return;
  }
  const auto colon = text.rfind(':');
  host = text.substr(0, colon);
  if (colon != std::string::npos) port_text = text.substr(colon + 1);
}

// A decimal port number from `min` to 65535, nothing else.
bool parse_port(const std::string& text, unsigned min, std::uint16_t& port) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < min || value > 65535) {
    return false;
  }
  port = static_cast<std::uint16_t>(value);
  return true;
}

// host:port from "mqtt://host:port" / "mqtts://host:port" / "host:port".
bool parse_broker_url(const std::string& url, std::string& host, std::uint16_t& port, bool& tls) {
  std::string rest = url;
  tls = false;
  if (rest.rfind("mqtts://", 0) == 0) {
    tls = true;
    rest = rest.substr(8);
  } else if (rest.rfind("mqtt://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return false;
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port_text;
  split_host_port(rest, host, port_text);
  if (host.empty()) return false;
  port = tls ? 8883 : 1883;
  return port_text.empty() || parse_port(port_text, 1, port);
}

void read_buffer(Section& s, buffer::BufferOptions& b) {
  b.path = s.text("path", "/var/lib/tidegate/buffer.db", "The SQLite buffer file. Its directory must be writable.");
  if (!s.context().docs) check_buffer_path(s.context(), s.key_path("path"), b.path);
  b.max_bytes = s.size("max_bytes", 256ull << 20,
                       "Cap on stored data (record bytes plus 48 bytes per record). 0 = no cap. Keep it well below "
                       "the free space of the card.");
  b.max_records = static_cast<std::uint64_t>(
      s.integer("max_records", 0, 0, std::numeric_limits<std::int64_t>::max(), "Cap on stored records. 0 = no cap."));
  b.full_policy = s.choice("full_policy", "drop-oldest", {"drop-oldest", "reject-new"},
                           "At the cap: evict the oldest records (counted per sink as lost) or refuse new ones "
                           "(sources stop acknowledging, so brokers keep the messages).") == "reject-new"
                      ? buffer::FullPolicy::kRejectNew
                      : buffer::FullPolicy::kDropOldest;
  b.durability = s.choice("durability", "crash-safe", {"crash-safe", "power-safe"},
                          "crash-safe: a record is acknowledged once its transaction is in the OS (survives kill -9; a "
                          "power cut loses at most sync_interval). power-safe: after fsync (survives power loss).") ==
                         "power-safe"
                     ? buffer::Durability::kPowerSafe
                     : buffer::Durability::kCrashSafe;
  b.commit_window = s.duration("commit_window", std::chrono::milliseconds(10),
                               "Group commit: how long a record may wait for others before its transaction "
                               "commits. Sources acknowledge after the commit, so this is their added latency.");
  b.commit_max_records = static_cast<std::size_t>(
      s.integer("commit_max_records", 8192, 1, 1'000'000, "Commit early once this many records wait."));
  b.sync_interval = s.duration("sync_interval", std::chrono::milliseconds(1000),
                               "crash-safe mode: fsync the WAL at least this often while records arrive, which "
                               "bounds what a power cut loses. \"0s\" leaves it to SQLite's checkpoints.");
  b.retention_time = std::chrono::duration_cast<std::chrono::seconds>(
      s.duration("retention", std::chrono::milliseconds(0),
                 "Keep records every sink acknowledged this long, for replay. \"0s\" deletes them once delivered."));
  b.retention_bytes = s.size("retention_bytes", 0, "Keep at most this much delivered data for replay. 0 = no limit "
                                                   "beyond retention and max_bytes.");
  b.disk_reserve_bytes = s.size("disk_reserve", 64ull << 20,
                                "Stop growing while the filesystem has less than this free, so the OS and the broker "
                                "keep working (full_policy applies).");
  const auto check = s.choice("integrity_check", "quick", {"quick", "full", "none"},
                              "Check at start: quick (PRAGMA quick_check), full (integrity_check, slower) or none. A "
                              "damaged file is moved aside and salvaged.");
  b.integrity_check = check == "full"   ? buffer::IntegrityCheck::kFull
                      : check == "none" ? buffer::IntegrityCheck::kNone
                                        : buffer::IntegrityCheck::kQuick;
}

// The [tls] table of an MQTT source or sink: files checked readable, a
// certificate needs its key, and TLS settings need an mqtts:// URL.
void read_tls(Section& t, bool url_is_tls, std::string& ca_file, std::string& cert_file, std::string& key_file,
              bool& insecure_skip_verify) {
  Context& ctx = t.context();
  ca_file = t.text("ca_file", "", "CA certificates to verify the broker. Empty: the system's trust store.");
  cert_file = t.text("cert_file", "", "Client certificate (PEM) for mutual TLS.");
  key_file = t.text("key_file", "", "Private key (PEM) of the client certificate.");
  insecure_skip_verify = t.boolean("insecure_skip_verify", false,
                                   "Do not verify the broker's certificate. For bench tests only; logged as a "
                                   "warning at every connect.");
  if (ctx.docs) return;
  check_readable_file(ctx, t.key_path("ca_file"), ca_file, "CA file");
  check_readable_file(ctx, t.key_path("cert_file"), cert_file, "certificate file");
  check_readable_file(ctx, t.key_path("key_file"), key_file, "key file");
  if (!cert_file.empty() && key_file.empty()) ctx.error(t.key_path("key_file"), "cert_file is set but key_file is not");
  if (t.present("ca_file") && !url_is_tls) {
    ctx.error(t.key_path("ca_file"), "TLS settings given but url is not mqtts://");
  }
}

void read_mqtt_source(Section& s, drivers::mqtt::MqttSourceOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "mqtt", "Name of this source: stored with each record, shown on the status page.");
  const std::string url = s.text("url", "mqtt://127.0.0.1:1883",
                                 "Broker address: mqtt://host:port, or mqtts://host:port for TLS (port 8883 if "
                                 "omitted).");
  bool url_tls = false;
  if (!ctx.docs && !parse_broker_url(url, o.host, o.port, url_tls)) {
    ctx.error(s.key_path("url"), "not a broker address: " + in_quotes(url) + " (expected mqtt://host:port or "
                                                                          "mqtts://host:port)");
  }
  o.tls.enabled = url_tls;
  o.version = s.choice("protocol", "5", {"5", "3.1.1"},
                       "MQTT version. 5 lets the gateway announce a large receive window, so waiting for commits "
                       "before PUBACK does not throttle the broker; with 3.1.1 raise mosquitto's "
                       "max_inflight_messages.") == "3.1.1"
                  ? drivers::mqtt::Version::kV311
                  : drivers::mqtt::Version::kV5;
  o.client_id = s.text("client_id", "", "Fixed client id, so the broker keeps the session while the gateway is "
                                        "down. Empty: \"tidegate-<name>\".");
  o.session_expiry_s = static_cast<std::uint32_t>(
      s.duration("session_expiry", std::chrono::hours(24 * 7),
                 "MQTT 5: how long the broker keeps the session (and queues messages) while the gateway is away.")
          .count() /
      1000);
  o.keepalive_s = static_cast<std::uint16_t>(
      s.duration("keepalive", std::chrono::seconds(30), "MQTT keep alive interval.").count() / 1000);
  o.receive_maximum = static_cast<std::uint16_t>(
      s.integer("receive_maximum", 4096, 1, 65535,
                "MQTT 5: QoS 1 messages the broker may send before our acknowledgements, which wait for the "
                "commit. Must cover a commit window of traffic; bounds the memory a burst takes."));
  const std::string username = s.text("username", "", "User name. Environment TIDEGATE_MQTT_<NAME>_USERNAME "
                                                      "overrides it.");
  const std::string password = s.text("password", "", "Password. Prefer the environment variable "
                                                      "TIDEGATE_MQTT_<NAME>_PASSWORD, which overrides it; it is never "
                                                      "logged.");
  if (!ctx.docs) {
    const auto env_user = ctx.env(env_name("MQTT", o.name, "USERNAME"));
    const auto env_pass = ctx.env(env_name("MQTT", o.name, "PASSWORD"));
    if (env_user || !username.empty()) o.username = env_user.value_or(username);
    if (env_pass || !password.empty()) o.password = env_pass.value_or(password);
  }
  s.table("tls", "sources.mqtt.tls", "TLS settings of an MQTT source (used with mqtts:// URLs).", [&](Section& t) {
    read_tls(t, o.tls.enabled, o.tls.ca_file, o.tls.cert_file, o.tls.key_file, o.tls.insecure_skip_verify);
  });
  const auto qos = s.integer("qos", 1, 0, 1,
                             "QoS of the subscriptions. 1: a message is acknowledged to the broker only after it is "
                             "committed to the buffer. 0: no acknowledgement; a gateway crash can lose messages.");
  o.subscriptions = s.subscriptions("topics", static_cast<std::uint8_t>(qos),
                                    "Topic filters to subscribe to: strings, which use `qos`, or tables with a QoS "
                                    "of their own, e.g. [\"sensors/#\", {filter = \"debug/#\", qos = 0}].");
  if (!ctx.docs && o.subscriptions.empty()) ctx.error(s.key_path("topics"), "at least one topic filter is needed");
  o.key_from_topic = s.text("key_from_topic", "",
                            "Partition key (device id) from the topic, e.g. \"sensors/{device}/#\": {name} captures "
                            "a level, + matches one, # the rest. Empty: the whole topic.");
  if (!ctx.docs && !o.key_from_topic.empty()) {
    try {
      drivers::TopicPattern p(o.key_from_topic);
      if (!p.has_capture()) ctx.error(s.key_path("key_from_topic"), "the pattern captures no level ({name})");
    } catch (const std::invalid_argument& e) {
      ctx.error(s.key_path("key_from_topic"), e.what());
    }
  }
  o.key_from_json = s.text("key_from_json", "", "Partition key from a JSON field of the payload (dotted path, e.g. "
                                                "\"meta.device\"); falls back to key_from_topic, then the topic.");
  o.device_time_from_json = s.text("device_time_from_json", "",
                                   "Device timestamp from a JSON field: epoch seconds, milliseconds or an RFC 3339 "
                                   "UTC string.");
  o.require_json = s.boolean("require_json", false, "Payloads that are not JSON go to the dead-letter table.");
  o.max_payload_bytes = s.memory_size("max_payload", 256 << 10, "Larger payloads go to the dead-letter table.");
  o.content_type = s.text("content_type", "", "Content type stored with records whose message names none.");
}

void read_sim_source(Section& s, drivers::sim::SimOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "sim", "Name of this source.");
  o.mode = s.choice("mode", "buffer", {"buffer", "mqtt"},
                    "buffer: write readings straight into the buffer. mqtt: publish them to a broker (like real "
                    "sensors), for an MQTT source to take in.") == "mqtt"
               ? drivers::sim::SimMode::kMqtt
               : drivers::sim::SimMode::kBuffer;
  o.devices = static_cast<std::uint32_t>(s.integer("devices", 8, 1, 100'000, "Number of simulated devices."));
  o.readings_per_device_per_s =
      s.number("rate", 1.0, 0.001, 100'000.0, "Readings per device per second.");
  o.kinds = s.text_list("kinds", {"temperature", "humidity", "co2", "power"},
                        "Sensor kinds, assigned to devices in turn.");
  for (const auto& k : o.kinds) {
    if (k != "temperature" && k != "humidity" && k != "co2" && k != "power") {
      ctx.error(s.key_path("kinds"), "unknown kind " + in_quotes(k) + " (temperature, humidity, co2, power)");
    }
  }
  if (!ctx.docs && o.kinds.empty()) ctx.error(s.key_path("kinds"), "at least one kind is needed");
  o.topic_prefix = s.text("topic_prefix", "sensors", "Topics are <topic_prefix>/<device>/<kind>.");
  const std::string url = s.text("url", "mqtt://127.0.0.1:1883", "mqtt mode: the broker to publish to.");
  bool tls = false;
  if (!ctx.docs && o.mode == drivers::sim::SimMode::kMqtt &&
      (!parse_broker_url(url, o.mqtt_host, o.mqtt_port, tls) || tls)) {
    ctx.error(s.key_path("url"), "expected mqtt://host:port (the simulator publishes without TLS)");
  }
  o.mqtt_qos = static_cast<int>(s.integer("qos", 1, 0, 1, "mqtt mode: QoS of the publishes."));
}

// Keys every sink has: how its forwarder batches, retries and paces.
void read_forwarder(Section& s, forward::ForwarderOptions& f) {
  f.start = s.choice("start", "earliest", {"earliest", "latest"},
                     "Where a new sink starts: the oldest record in the buffer (history plus live data) or only "
                     "records from now on. Ignored once the sink has a cursor.") == "latest"
                ? buffer::StartPosition::kLatest
                : buffer::StartPosition::kEarliest;
  f.max_records = static_cast<std::size_t>(
      s.integer("batch_max_records", 2000, 1, 100'000,
                "Records per send, at most, within the upstream's own limit (Kinesis 500, HTTP 1000, MQTT 2000 "
                "PUBACKs in flight, files 10000). Larger batches drain a backlog faster."));
  f.linger = s.duration("linger", std::chrono::milliseconds(20),
                        "How long a batch that is not full may wait for more records before it is sent, counted "
                        "from its oldest record's ingest (so the buffer's commit window is part of it).");
  f.retry_min = s.duration("retry_min", std::chrono::milliseconds(200), "First retry delay after a failed send.");
  f.retry_max = s.duration("retry_max", std::chrono::minutes(1),
                           "Longest retry delay; delays double up to it, with random jitter.");
  f.max_bytes_per_s = s.size("max_bandwidth", 0, "Bytes per second to this sink, at most (metered uplinks). 0 = no cap.");
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

void read_file_sink(Section& s, GatewayConfig::FileSinkConfig& c) {
  c.sink.name = s.text("name", "file", "Name of this sink: its cursor in the buffer and its label on the status page.");
  c.sink.directory = s.text("directory", "/var/lib/tidegate/out", "Where the files go (created if missing).");
  c.sink.prefix = s.text("prefix", "tidegate", "File names: <prefix>-<UTC time>-<first seq>.jsonl (or .pb).");
  c.sink.format = s.choice("format", "jsonl", {"jsonl", "protobuf"},
                           "jsonl: one JSON object per record. protobuf: length-delimited tidegate.v1.Batch "
                           "messages (proto/tidegate/v1/record.proto).") == "protobuf"
                      ? sinks::FileFormat::kProtobuf
                      : sinks::FileFormat::kJsonLines;
  c.sink.max_file_bytes = s.size("max_file_size", 64ull << 20, "Start a new file past this size.");
  c.sink.max_file_age = std::chrono::duration_cast<std::chrono::seconds>(
      s.duration("max_file_age", std::chrono::hours(1), "Start a new file after this long."));
  c.sink.max_files = static_cast<std::size_t>(
      s.integer("max_files", 0, 0, 1'000'000, "Keep at most this many complete files, deleting the oldest. 0 = all."));
  c.sink.fsync = s.boolean("fsync", true, "Acknowledge a batch only once it is on disk (fdatasync).");
  if (!s.context().docs) check_buffer_path(s.context(), s.key_path("directory"), c.sink.directory / "x");
  read_forwarder(s, c.forwarder);
}

void read_mqtt_sink(Section& s, GatewayConfig::MqttSinkConfig& c) {
  Context& ctx = s.context();
  auto& o = c.sink;
  o.name = s.text("name", "mqtt-upstream", "Name of this sink: its cursor in the buffer and its status label.");
  const std::string url = s.text("url", "mqtts://iot.example.com:8883",
                                 "Upstream broker: mqtt://host:port or mqtts://host:port (TLS).");
  if (!ctx.docs && !parse_broker_url(url, o.host, o.port, o.tls)) {
    ctx.error(s.key_path("url"), "not a broker address: " + in_quotes(url));
  }
  o.client_id = s.text("client_id", "", "Client id at the upstream. Empty: \"tidegate-<gateway id>-<name>\".");
  o.topic_template = s.text("topic", "tidegate/{gateway}/{topic}",
                            "Topic per record: {gateway}, {source}, {key} (partition key) and {topic} are replaced.");
  o.payload = s.choice("payload", "envelope", {"envelope", "raw"},
                       "envelope: the JSON envelope with gateway id and sequence (consumers can drop duplicates). "
                       "raw: the sensor's bytes only.") == "raw"
                  ? sinks::MqttPayload::kRaw
                  : sinks::MqttPayload::kEnvelope;
  o.timeout = s.duration("timeout", std::chrono::seconds(10), "Connect timeout, and how long to wait for PUBACKs.");
  const std::string username = s.text("username", "", "User name. TIDEGATE_SINK_<NAME>_USERNAME overrides it.");
  const std::string password = s.text("password", "", "Password. Prefer TIDEGATE_SINK_<NAME>_PASSWORD, which "
                                                      "overrides it; never logged.");
  if (!ctx.docs) {
    const auto env_user = ctx.env(env_name("SINK", o.name, "USERNAME"));
    const auto env_pass = ctx.env(env_name("SINK", o.name, "PASSWORD"));
    if (env_user || !username.empty()) o.username = env_user.value_or(username);
    if (env_pass || !password.empty()) o.password = env_pass.value_or(password);
  }
  s.table("tls", "sinks.mqtt.tls", "TLS of an upstream MQTT sink (mqtts:// URLs), e.g. AWS IoT Core's device "
                                   "certificate.", [&](Section& t) {
    read_tls(t, o.tls, o.ca_file, o.cert_file, o.key_file, o.insecure_skip_verify);
  });
  read_forwarder(s, c.forwarder);
}

void read_kinesis_sink(Section& s, GatewayConfig::KinesisSinkConfig& c) {
  Context& ctx = s.context();
  auto& o = c.sink;
  o.name = s.text("name", "kinesis", "Name of this sink: its cursor in the buffer and its status label.");
  o.stream = s.text("stream", "", "Kinesis data stream name (required).");
  o.region = s.text("region", "us-east-1", "AWS region of the stream.");
  o.endpoint = s.text("endpoint", "", "Endpoint override, http(s)://host[:port] (VPC endpoints, test peers). Empty: "
                                      "https://kinesis.<region>.amazonaws.com.");
  o.data = s.choice("data", "envelope", {"envelope", "raw"},
                    "envelope: each Kinesis record holds the JSON envelope (gateway id, sequence, metadata, payload). "
                    "raw: the sensor's bytes only.") == "raw"
               ? sinks::KinesisData::kRaw
               : sinks::KinesisData::kEnvelope;
  o.aggregate = s.boolean("aggregate", false,
                          "Pack each device's readings of a batch into KPL aggregated records (fewer, fuller Kinesis "
                          "records; consumers de-aggregate with the KCL or the KPL deaggregation libraries).");
  o.connections = static_cast<std::size_t>(s.integer(
      "connections", 4, 1, static_cast<std::int64_t>(sinks::KinesisSink::kMaxConnections),
      "PutRecords calls in flight at once while a backlog drains, each on its own connection. A device's readings "
      "of a batch all take one of them, in order; more overlap more round trips (draining over a slow uplink)."));
  o.timeout = s.duration("timeout", std::chrono::seconds(10), "Time allowed for one PutRecords call.");
  o.ca_file = s.text("ca_file", "", "CA certificates for the endpoint. Empty: the system's trust store.");
  const auto key_id = s.text("access_key_id", "", "AWS access key id. Empty: AWS_ACCESS_KEY_ID from the environment.");
  const auto secret = s.text("secret_access_key", "", "AWS secret access key. Empty: AWS_SECRET_ACCESS_KEY from the "
                                                      "environment (preferred: never logged).");
  const auto token = s.text("session_token", "", "Session token of temporary credentials. Empty: AWS_SESSION_TOKEN.");
  if (!ctx.docs) {
    o.credentials.access_key_id = !key_id.empty() ? key_id : ctx.env("AWS_ACCESS_KEY_ID").value_or("");
    o.credentials.secret_access_key = !secret.empty() ? secret : ctx.env("AWS_SECRET_ACCESS_KEY").value_or("");
    o.credentials.session_token = !token.empty() ? token : ctx.env("AWS_SESSION_TOKEN").value_or("");
    if (o.stream.empty()) ctx.error(s.key_path("stream"), "a stream name is required");
    if (o.credentials.access_key_id.empty() || o.credentials.secret_access_key.empty()) {
      ctx.error(s.key_path("access_key_id"), "no AWS credentials: set access_key_id and secret_access_key, or "
                                             "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
    }
    if (!o.endpoint.empty() && o.endpoint.rfind("http://", 0) != 0 && o.endpoint.rfind("https://", 0) != 0) {
      ctx.error(s.key_path("endpoint"), "must start with http:// or https://");
    }
    check_readable_file(ctx, s.key_path("ca_file"), o.ca_file, "CA file");
  }
  read_forwarder(s, c.forwarder);
}

void read_http_sink(Section& s, GatewayConfig::HttpSinkConfig& c) {
  Context& ctx = s.context();
  auto& o = c.sink;
  o.name = s.text("name", "http", "Name of this sink: its cursor in the buffer and its status label.");
  o.url = s.text("url", "", "Where batches are POSTed: http(s)://host[:port]/path (required).");
  o.format = s.choice("format", "protobuf", {"protobuf", "jsonl"},
                      "protobuf: one tidegate.v1.Batch per request (proto/tidegate/v1/record.proto). jsonl: one JSON "
                      "envelope per line.") == "jsonl"
                 ? sinks::HttpFormat::kJsonLines
                 : sinks::HttpFormat::kProtobuf;
  o.gzip = s.boolean("gzip", true, "Compress request bodies (Content-Encoding: gzip).");
  const auto token = s.text("bearer_token", "", "Sent as Authorization: Bearer. Prefer TIDEGATE_SINK_<NAME>_TOKEN, "
                                                "which overrides it; never logged.");
  o.timeout = s.duration("timeout", std::chrono::seconds(10), "Time allowed for one request.");
  o.ca_file = s.text("ca_file", "", "CA certificates for https. Empty: the system's trust store.");
  o.max_batch_bytes = s.memory_size("max_request_size", 1u << 20, "Records per request stop before this many bytes.");
  if (!ctx.docs) {
    o.bearer_token = ctx.env(env_name("SINK", o.name, "TOKEN")).value_or(token);
    if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
      ctx.error(s.key_path("url"), "expected http(s)://host[:port]/path, got " + in_quotes(o.url));
    }
    check_readable_file(ctx, s.key_path("ca_file"), o.ca_file, "CA file");
  }
  read_forwarder(s, c.forwarder);
}

// Reads every [[sinks.KIND]] table with `read` into `out`.
template <typename Config>
void add_sinks(Section& sinks, const std::string& kind, const std::string& help,
               void (*read)(Section&, Config&), std::vector<Config>& out) {
  sinks.tables(kind, "sinks." + kind, help, [&](Section& s, std::size_t) {
    Config c;
    read(s, c);
    out.push_back(std::move(c));
  });
}

// "host:port" or "[v6]:port"; the host must be a literal address, the port
// is required (0: any free port).
bool parse_listen(const std::string& text, std::string& address, std::uint16_t& port) {
  std::string host, port_text;
  split_host_port(text, host, port_text);
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec || !parse_port(port_text, 0, port)) return false;
  address = host;
  return true;
}

void read_status(Section& s, GatewayConfig::StatusConfig& o) {
  auto& ctx = s.context();
  o.enabled = s.boolean("enabled", true, "Serve the status page, /api/status, /metrics, /healthz and /readyz.");
  const auto listen = s.text("listen", "0.0.0.0:8080",
                             "Address and port of the status page. All interfaces by default, so a technician on "
                             "the site's network can open it; \"127.0.0.1:8080\" keeps it on the box (reach it with "
                             "an SSH tunnel). Pages are read-only without the token.");
  if (!parse_listen(listen, o.http.address, o.http.port)) {
    ctx.error(s.key_path("listen"), "expected ADDRESS:PORT with a literal address, e.g. \"0.0.0.0:8080\" or "
                                    "\"[::1]:8080\", not " + in_quotes(listen));
  }
  const auto token = s.text("token", "",
                            "Enables the operations that change state (pause or resume a sink, clear dead letters) "
                            "for requests with \"Authorization: Bearer <token>\". Empty: they are refused. "
                            "TIDEGATE_STATUS_TOKEN in the environment overrides it.");
  o.token = ctx.env("TIDEGATE_STATUS_TOKEN").value_or(token);
  o.http.tls_cert_file = s.text("tls_cert", "", "PEM certificate chain: serve HTTPS instead of HTTP.");
  o.http.tls_key_file = s.text("tls_key", "", "PEM private key of tls_cert.");
  if (!ctx.docs) {
    check_readable_file(ctx, s.key_path("tls_cert"), o.http.tls_cert_file, "certificate");
    check_readable_file(ctx, s.key_path("tls_key"), o.http.tls_key_file, "key");
    if (o.http.tls_cert_file.empty() != o.http.tls_key_file.empty()) {
      ctx.error(s.key_path("tls_cert"), "tls_cert and tls_key go together");
    }
  }
  o.http.max_connections = static_cast<std::size_t>(
      s.integer("max_connections", 32, 1, 10'000, "Open connections at once; more get 503 and are closed."));
  o.http.request_timeout = s.duration("request_timeout", std::chrono::milliseconds(10'000),
                                      "A request must arrive whole within this; also the keep-alive idle time.");
  auto seconds = [](std::chrono::milliseconds ms) { return static_cast<std::int64_t>(ms.count() / 1000); };
  o.thresholds.lag_amber_s = seconds(s.duration("lag_warning", std::chrono::minutes(5),
                                                "Amber when a sink's oldest undelivered record is older than this."));
  o.thresholds.failing_red_after_s = seconds(
      s.duration("failing_red_after", std::chrono::minutes(5),
                 "A failing sink (or a disconnected source) turns the page red after this long; before, amber."));
  o.thresholds.source_red_after_s = o.thresholds.failing_red_after_s;
}

void read_heartbeat(Section& s, GatewayConfig::HeartbeatConfig& o) {
  o.interval = s.duration("interval", std::chrono::seconds(60),
                          "Every interval the gateway stores a small health record of its own (version, uptime, "
                          "health, lag per sink, buffer use, errors) that every sink forwards. \"0s\": none.");
  o.topic = s.text("topic", "tidegate/heartbeat",
                   "Topic of the heartbeat record (source \"tidegate\", partition key = the gateway id).");
}

void read_document(Section& root, GatewayConfig& c) {
  root.table("gateway", "gateway", "The gateway itself.", [&](Section& g) {
    char host[256] = "tidegate";
    if (!g.context().docs) ::gethostname(host, sizeof host - 1);
    c.gateway_id = g.text("id", "", "Identity of this gateway in upstream records; with the sequence number it makes "
                                    "every record unique. Empty: the host name.");
    if (c.gateway_id.empty()) c.gateway_id = host;
    c.log_level = parse_level(g.choice("log_level", "info", {"debug", "info", "warning", "error"},
                                       "Least severe level written to the log (stderr, read by journald). Applied "
                                       "on SIGHUP without restart."));
  });
  root.table("buffer", "buffer", "The on-disk buffer between sources and sinks.",
             [&](Section& b) { read_buffer(b, c.buffer); });
  root.table("sources", "sources", "Where readings come from. Several of each kind may be configured.",
             [&](Section& sources) {
               sources.tables("mqtt", "sources.mqtt", "An MQTT source ([[sources.mqtt]]): subscribes to a broker.",
                              [&](Section& s, std::size_t) {
                                drivers::mqtt::MqttSourceOptions o;
                                read_mqtt_source(s, o);
                                c.mqtt_sources.push_back(std::move(o));
                              });
               sources.tables("sim", "sources.sim", "Simulated sensors ([[sources.sim]]).",
                              [&](Section& s, std::size_t) {
                                drivers::sim::SimOptions o;
                                read_sim_source(s, o);
                                o.seed = static_cast<std::uint32_t>(c.sim_sources.size() + 1);
                                c.sim_sources.push_back(std::move(o));
                              });
             });
  root.table("status", "status", "The local status page for field technicians, and health thresholds.",
             [&](Section& st) { read_status(st, c.status); });
  root.table("heartbeat", "heartbeat", "The gateway's own health record, sent upstream.",
             [&](Section& h) { read_heartbeat(h, c.heartbeat); });
  root.table("sinks", "sinks",
             "Where readings go. Each sink has its own cursor in the buffer and its own forwarder: a slow or broken "
             "sink never holds back another.",
             [&](Section& sinks) {
               add_sinks(sinks, "file", "Rotating local files ([[sinks.file]]).", read_file_sink, c.file_sinks);
               add_sinks(sinks, "mqtt",
                         "An upstream MQTT broker ([[sinks.mqtt]]), e.g. AWS IoT Core: QoS 1, a record counts as "
                         "delivered on the broker's PUBACK.",
                         read_mqtt_sink, c.mqtt_sinks);
               add_sinks(sinks, "kinesis",
                         "Amazon Kinesis Data Streams ([[sinks.kinesis]]): PutRecords signed with Signature V4; the "
                         "partition key is the device, so each device stays ordered within its shard.",
                         read_kinesis_sink, c.kinesis_sinks);
               add_sinks(sinks, "http",
                         "An HTTP(S) endpoint ([[sinks.http]]): batches POSTed as Protobuf or JSON lines; any 2xx "
                         "acknowledges; 5xx, 408, 429, 401, 403, 404 are retried; other 4xx dead-letter the batch.",
                         read_http_sink, c.http_sinks);
             });
}

void check_whole(Context& ctx, GatewayConfig& c) {
  std::set<std::string> names;
  auto check_name = [&](const std::string& kind, std::size_t i, const std::string& name) {
    const std::string key = "sources." + kind + "[" + std::to_string(i) + "].name";
    if (name.empty()) ctx.error(key, "must not be empty");
    if (!names.insert(name).second) ctx.error(key, "duplicate source name " + in_quotes(name));
  };
  for (std::size_t i = 0; i < c.mqtt_sources.size(); ++i) check_name("mqtt", i, c.mqtt_sources[i].name);
  for (std::size_t i = 0; i < c.sim_sources.size(); ++i) check_name("sim", i, c.sim_sources[i].name);
  std::set<std::string> sink_names;
  c.for_each_sink([&](const char* kind, std::size_t i, const std::string& name, std::string&) {
    const auto key = std::string("sinks.") + kind + "[" + std::to_string(i) + "].name";
    if (name.empty()) ctx.error(key, "must not be empty");
    if (!sink_names.insert(name).second) ctx.error(key, "duplicate sink name " + in_quotes(name));
  });
  std::set<std::string> client_ids;
  for (std::size_t i = 0; i < c.mqtt_sources.size(); ++i) {
    const auto& s = c.mqtt_sources[i];
    const std::string id = s.client_id.empty() ? "tidegate-" + s.name : s.client_id;
    if (!client_ids.insert(s.host + ":" + std::to_string(s.port) + "/" + id).second) {
      ctx.error("sources.mqtt[" + std::to_string(i) + "].client_id",
                "two sources use client id " + in_quotes(id) + " on the same broker: they would take each other's "
                                                             "session");
    }
  }
}

}  // namespace

std::string ConfigError::text() const {
  std::string out = file;
  if (!key.empty()) out += ": " + key;
  return out + ": " + reason;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
}

LoadResult parse_config(const std::string& toml_text, const std::string& file_name, const EnvLookup& env) {
  Context ctx;
  ctx.file = file_name;
  ctx.env = env;
  LoadResult result;
  toml::table doc;
  try {
    doc = toml::parse(toml_text, file_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    result.errors.push_back({file_name, "", "line " + std::to_string(where.line) + ", column " +
                                                std::to_string(where.column) + ": " + std::string(e.description())});
    return result;
  }
  for (const char* section : {"buffer", "sources", "sinks"}) {
    if (const auto* table = doc.get_as<toml::table>(section)) {
      std::ostringstream text;
      text << *table;
      result.restart_sections[section] = text.str();
    }
  }
  GatewayConfig config;
  Section root(ctx, &doc, "", "");
  read_document(root, config);
  root.finish();
  config.for_each_sink([&](const char*, std::size_t, const std::string&, std::string& gateway_id) {
    gateway_id = config.gateway_id;
  });
  check_whole(ctx, config);
  result.errors = std::move(ctx.errors);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_config(const std::filesystem::path& file, const EnvLookup& env) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back({file.string(), "", std::string("cannot read the file: ") + std::strerror(errno)});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file.string(), env);
}

std::string config_reference_markdown() {
  std::vector<KeyDoc> docs;
  Context ctx;
  ctx.docs = &docs;
  ctx.env = [](const std::string&) { return std::nullopt; };
  GatewayConfig config;
  Section root(ctx, nullptr, "", "");
  read_document(root, config);

  std::string out =
      "# Configuration reference\n\n"
      "Generated by `tidegate config-reference` from the same declarations that validate configuration files; "
      "`tests/unit/config_test.cpp` fails if this page and the code disagree.\n\n"
      "The file is TOML. `tidegate check-config --config FILE` validates it without running; every error names the "
      "file, the key and the reason. Unknown keys are errors.\n";
  // Group rows by section, sections in the order they were first declared.
  std::vector<std::string> order;
  std::map<std::string, std::string> help;
  std::map<std::string, std::vector<const KeyDoc*>> rows;
  for (const auto& d : docs) {
    if (!help.count(d.section) && !rows.count(d.section)) order.push_back(d.section);
    if (d.key.empty()) {
      help[d.section] = d.help;
    } else {
      rows[d.section].push_back(&d);
    }
  }
  for (const auto& section : order) {
    const bool array =
        section == "sources.mqtt" || section == "sources.sim" ||
        (section.rfind("sinks.", 0) == 0 && section.find('.', 6) == std::string::npos);
    out += "\n## `" + std::string(array ? "[[" : "[") + section + (array ? "]]" : "]") + "`\n\n" + help[section] + "\n";
    if (rows[section].empty()) continue;
    out += "\n| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const auto* d : rows[section]) {
      out += "| `" + d->key + "` | " + d->type + " | `" + d->default_text + "` | " + d->help + " |\n";
    }
  }
  return out;
}

}  // namespace tidegate::gateway
