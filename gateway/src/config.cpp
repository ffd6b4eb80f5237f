#include "tidegate/gateway/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "tidegate/config/tls_files.h"
#include "tidegate/gateway/plugins.h"

namespace tidegate::gateway {
namespace {

using config::Context;
using config::in_quotes;
using config::KeyDoc;
using config::Section;

void read_buffer(Section& s, buffer::BufferOptions& b) {
  b.path = s.text("path", "/var/lib/tidegate/buffer.db", "The SQLite buffer file. Its directory must be writable.");
  if (!s.context().docs) config::check_creatable_file(s.context(), s.key_path("path"), b.path);
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
  b.durability =
      s.choice("durability", "crash-safe", {"crash-safe", "power-safe"},
               "crash-safe: a record is acknowledged once its transaction is in the OS (survives kill -9; a "
               "power cut loses at most sync_interval). power-safe: after fsync (survives power loss).") == "power-safe"
          ? buffer::Durability::kPowerSafe
          : buffer::Durability::kCrashSafe;
  b.commit_window = s.duration("commit_window", std::chrono::milliseconds(10),
                               "Group commit: how long a record may wait for others before its transaction "
                               "commits. Sources acknowledge after the commit, so this is their added latency.");
  b.commit_max_records = static_cast<std::size_t>(
      s.integer("commit_max_records", 8192, 1, 1'000'000, "Commit early once this many records wait."));
  b.commit_max_bytes = s.size("commit_max_bytes", 0,
                              "Commit early once this many bytes wait (record bytes plus 48 per record). With a long "
                              "commit_window it keeps busy periods fast while quiet ones write a page per window "
                              "instead of a page per record. 0 = no byte limit.");
  b.sync_interval = s.duration("sync_interval", std::chrono::milliseconds(1000),
                               "crash-safe mode: fsync the WAL at least this often while records arrive, which "
                               "bounds what a power cut loses. \"0s\" leaves it to SQLite's checkpoints.");
  b.retention_time = std::chrono::duration_cast<std::chrono::seconds>(
      s.duration("retention", std::chrono::milliseconds(0),
                 "Keep records every sink acknowledged this long, for replay. \"0s\" deletes them once delivered."));
  b.retention_bytes = s.size("retention_bytes", 0,
                             "Keep at most this much delivered data for replay. 0 = no limit "
                             "beyond retention and max_bytes.");
  b.maintenance_interval = s.duration(
      "maintenance_interval", std::chrono::milliseconds(10000),
      "How often delivered records are deleted and the sinks' positions written, in one transaction: sooner once "
      "4096 delivered records wait, later (up to ten intervals) while fewer than 64 do. Longer means fewer writes; "
      "after a crash a sink re-sends what it delivered since the last pass (a clean stop writes every position).");
  const auto page_size = s.integer(
      "page_size", 1024, 512, 65536,
      "SQLite page size of a new buffer file, a power of two (an existing file keeps its own). Each commit writes "
      "whole pages, so small pages write less to the card at low rates; 4096 appends about 1.4x faster at full "
      "speed, far above what the sources deliver.");
  if ((page_size & (page_size - 1)) != 0) {
    s.context().error(s.key_path("page_size"), "expected a power of two from 512 to 65536, not " +
                                                   std::to_string(page_size));
  }
  b.page_size = static_cast<std::uint32_t>(page_size);
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

buffer::LogLevel parse_level(const std::string& s) {
  if (s == "debug") return buffer::LogLevel::kDebug;
  if (s == "warning") return buffer::LogLevel::kWarning;
  if (s == "error") return buffer::LogLevel::kError;
  return buffer::LogLevel::kInfo;
}

void read_status(Section& s, GatewayConfig::StatusConfig& o) {
  auto& ctx = s.context();
  o.enabled = s.boolean("enabled", true, "Serve the status page, /api/status, /metrics, /healthz and /readyz.");
  const auto listen = s.text("listen", "0.0.0.0:8080",
                             "Address and port of the status page. All interfaces by default, so a technician on "
                             "the site's network can open it; \"127.0.0.1:8080\" keeps it on the box (reach it with "
                             "an SSH tunnel). Pages are read-only without the token.");
  if (!config::parse_listen(listen, o.http.address, o.http.port)) {
    ctx.error(s.key_path("listen"),
              "expected ADDRESS:PORT with a literal address, e.g. \"0.0.0.0:8080\" or "
              "\"[::1]:8080\", not " +
                  in_quotes(listen));
  }
  const auto token = s.text("token", "",
                            "Enables the operations that change state (pause or resume a sink, clear dead letters) "
                            "for requests with \"Authorization: Bearer <token>\". Empty: they are refused. "
                            "TIDEGATE_STATUS_TOKEN in the environment overrides it.");
  o.token = ctx.env("TIDEGATE_STATUS_TOKEN").value_or(token);
  o.http.tls_cert_file = s.text("tls_cert", "", "PEM certificate chain: serve HTTPS instead of HTTP.");
  o.http.tls_key_file = s.text("tls_key", "", "PEM private key of tls_cert.");
  if (!ctx.docs) {
    if (o.http.tls_cert_file.empty() != o.http.tls_key_file.empty()) {
      ctx.error(s.key_path("tls_cert"), "tls_cert and tls_key go together");
    } else {
      config::check_certificate_and_key(ctx, s.key_path("tls_cert"), o.http.tls_cert_file, s.key_path("tls_key"),
                                        o.http.tls_key_file);
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
    c.gateway_id = g.text("id", "",
                          "Identity of this gateway in upstream records; with the sequence number it makes "
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
               for (const auto& kind : source_kinds()) {
                 sources.tables(kind.kind, "sources." + kind.kind, kind.help, [&](Section& s, std::size_t index) {
                   auto plan = kind.read(s, index);
                   plan.kind = kind.kind;
                   plan.written = s.written();
                   c.sources.push_back(std::move(plan));
                 });
               }
             });
  root.table("status", "status", "The local status page for field technicians, and health thresholds.",
             [&](Section& st) { read_status(st, c.status); });
  root.table("heartbeat", "heartbeat", "The gateway's own health record, sent upstream.",
             [&](Section& h) { read_heartbeat(h, c.heartbeat); });
  root.table("processors", "processors",
             "Per-record processing on the way out (docs/processing.md). A processor does nothing until a sink "
             "names it in its `processors` list; each sink runs its own chain, and the buffer keeps every record "
             "as the source delivered it.",
             [&](Section& procs) {
               for (const auto& kind : processor_kinds()) {
                 procs.tables(kind.kind, "processors." + kind.kind, kind.help, [&](Section& s, std::size_t) {
                   auto plan = kind.read(s);
                   plan.kind = kind.kind;
                   c.processors.push_back(std::move(plan));
                 });
               }
             });
  root.table("sinks", "sinks",
             "Where readings go. Each sink has its own cursor in the buffer and its own forwarder: a slow or broken "
             "sink never holds back another.",
             [&](Section& sinks) {
               for (const auto& kind : sink_kinds()) {
                 sinks.tables(kind.kind, "sinks." + kind.kind, kind.help, [&](Section& s, std::size_t) {
                   auto plan = kind.read(s);
                   plan.kind = kind.kind;
                   plugins::read_forwarder_keys(s, plan.forwarder, kind.default_linger);
                   plugins::read_routing_keys(s, plan);
                   plan.written = s.written();
                   c.sinks.push_back(std::move(plan));
                 });
               }
             });
}

const plugins::ProcessorPlan* find_processor(const GatewayConfig& c, const std::string& name) {
  for (const auto& p : c.processors) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// Each sink's processors exist; a sink's text for reloads includes theirs,
// so a changed processor (or enrich table, or Lua file) restarts the sinks
// that use it.
void resolve_chains(Context& ctx, GatewayConfig& c) {
  for (auto& sink : c.sinks) {
    for (std::size_t i = 0; i < sink.processors.size(); ++i) {
      const auto* p = find_processor(c, sink.processors[i]);
      if (!p) {
        ctx.error(sink.processors_key + "[" + std::to_string(i) + "]",
                  "no processor named " + in_quotes(sink.processors[i]) + " (declare it as [[processors.KIND]] "
                  "with that name)");
        continue;
      }
      if (p->create_stream) {
        ctx.error(sink.processors_key + "[" + std::to_string(i) + "]",
                  in_quotes(p->name) + " is a " + p->kind + " processor, which makes records of its own: select "
                  "them with route.sources = [" + in_quotes(p->name) + "] instead of listing it in processors");
        continue;
      }
      sink.written += "\n# processor " + p->kind + "\n" + p->written;
    }
  }
}

// Window and deadband processors run as sources of their own (after the
// configured sources): the daemon starts, reloads and reports them as such.
void add_derived_streams(GatewayConfig& c) {
  std::vector<std::string> names;
  for (const auto& p : c.processors) {
    if (p.create_stream) names.push_back(p.name);
  }
  for (const auto& p : c.processors) {
    if (!p.create_stream) continue;
    plugins::SourcePlan plan;
    plan.kind = p.kind;
    plan.name = p.name;
    plan.name_key = p.name_key;
    plan.written = p.written;
    plan.create = [create = p.create_stream, names](buffer::Buffer& buffer, buffer::LogFn log) {
      return create(buffer, std::move(log), names);
    };
    c.sources.push_back(std::move(plan));
  }
}

// What no single table can check: unique names, and resources (an MQTT
// session, a port) claimed by two instances.
void check_whole(Context& ctx, const GatewayConfig& c) {
  auto unique_names = [&](const auto& plans, const char* what) {
    std::set<std::string> names;
    for (const auto& p : plans) {
      if (p.name.empty()) ctx.error(p.name_key, "must not be empty");
      if (!names.insert(p.name).second)
        ctx.error(p.name_key, std::string("duplicate ") + what + " name " + in_quotes(p.name));
    }
  };
  unique_names(c.sources, "source");
  unique_names(c.sinks, "sink");
  unique_names(c.processors, "processor");
  // A derived stream's records carry its name as their source.
  for (const auto& p : c.processors) {
    if (!p.create_stream) continue;
    for (const auto& src : c.sources) {
      if (src.name == p.name)
        ctx.error(p.name_key, "a source is named " + in_quotes(p.name) + " too: the " + p.kind +
                                  " processor's records carry its name as their source, so the names must differ");
    }
    if (p.name == "tidegate") ctx.error(p.name_key, "\"tidegate\" is the heartbeat's source name");
  }
  std::set<std::string> claimed;
  for (const auto& p : c.sources) {
    for (const auto& claim : p.claims) {
      if (!claimed.insert(claim.resource).second) ctx.error(claim.key, claim.conflict);
    }
  }
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
}

EnvLookup process_env_then(std::map<std::string, std::string> file_vars) {
  return [env = process_env(), vars = std::move(file_vars)](const std::string& name) -> std::optional<std::string> {
    if (auto v = env(name)) return v;
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
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
    result.errors.push_back({file_name, "",
                             "line " + std::to_string(where.line) + ", column " + std::to_string(where.column) + ": " +
                                 std::string(e.description())});
    return result;
  }
  for (const char* section : {"buffer", "sources", "sinks", "status", "heartbeat"}) {
    if (const auto* table = doc.get_as<toml::table>(section)) {
      std::ostringstream text;
      text << *table;
      result.section_text[section] = text.str();
    }
  }
  GatewayConfig config;
  Section root(ctx, &doc, "", "");
  read_document(root, config);
  root.finish();
  resolve_chains(ctx, config);
  check_whole(ctx, config);
  add_derived_streams(config);
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

std::unique_ptr<processing::Chain> make_chain(const GatewayConfig& config, const plugins::SinkPlan& sink) {
  std::vector<processing::NamedProcessor> chain;
  for (const auto& name : sink.processors) {
    const auto* p = find_processor(config, name);
    if (!p) throw std::runtime_error("no processor named " + in_quotes(name));
    if (!p->create) throw std::runtime_error(in_quotes(name) + " is a " + p->kind + " processor: select its records by route");
    chain.push_back({p->name, p->kind, p->create()});
  }
  return std::make_unique<processing::Chain>(sink.route, std::move(chain));
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
  std::set<std::string> array_tables;  // [[sources.KIND]], [[sources.modbus.maps]], ...
  for (const auto& d : docs) {
    if (d.array) array_tables.insert(d.section);
  }
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
    const bool array = array_tables.count(section) > 0;
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
