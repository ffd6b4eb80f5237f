#include "tidegate/gateway/cli.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/config/env_file.h"
#include "tidegate/config/schema.h"
#include "tidegate/gateway/buffer_report.h"
#include "tidegate/gateway/config.h"
#include "tidegate/gateway/daemon.h"
#include "tidegate/gateway/dead_letters.h"
#include "tidegate/gateway/export.h"
#include "tidegate/gateway/operations.h"
#include "tidegate/gateway/version.h"
#include "tidegate/proto/envelope.h"
#include "tidegate/proto/json.h"

namespace tidegate::gateway {
namespace {

constexpr const char* kDefaultConfig = "/etc/tidegate/tidegate.toml";
constexpr const char* kDefaultEnvFile = "/etc/default/tidegate";

constexpr const char* kUsage = R"(tidegate - edge ingestion gateway: sensors in, durable buffer, cloud out

Usage:
  tidegate run          [--config FILE] [--env-file FILE]
                                          run the gateway in the foreground
                                          (SIGTERM/SIGINT stop it cleanly,
                                          SIGHUP re-reads the configuration)
  tidegate check-config [--config FILE] [--env-file FILE]
                                          validate the configuration, run nothing
  tidegate config-reference               every configuration key, as Markdown

  tidegate buffer stats  [--config FILE | --db FILE]
                                          buffer figures as JSON
  tidegate buffer dump   [--config FILE | --db FILE] [--from SEQ] [--limit N]
                                          stored records as JSON lines
  tidegate buffer verify [--config FILE | --db FILE] [--quick]
                                          integrity check (full by default)
  tidegate buffer acknowledge-losses [--config FILE | --db FILE] [--yes]
                                          the records lost to the cap so far
                                          were seen: the verdict turns green

  tidegate sink list     [--config FILE | --db FILE]
                                          every sink's cursor and what waits
                                          for it; flags retired sinks
  tidegate sink forget NAME [--config FILE | --db FILE] [--yes]
                                          drop the cursor of a sink no longer
                                          configured, so it holds nothing back
  tidegate sink rewind NAME (--to-seq N | --to-time TIME | --to-earliest)
                         [--config FILE | --db FILE] [--yes]
                                          send the retained records from there
                                          again (replay), then live data; TIME
                                          is UTC: 2026-11-30T08:00:00Z,
                                          "2026-11-30 08:00", or Unix seconds
  tidegate sink pause NAME | resume NAME [--config FILE | --db FILE]
                                          hold or release a sink (kept across
                                          restarts); records wait in the buffer

  tidegate dead-letters list [--limit N] [--config FILE | --db FILE]
                                          what was refused for good: by which
                                          sink or source, why, a preview
  tidegate dead-letters show ID           one dead letter, the whole payload
  tidegate dead-letters export [--output FILE]
                                          all of them as JSON lines
  tidegate dead-letters replay (ID... | --all | --older-than AGE)
                         [--to-sink NAME] [--yes]
                                          back into the buffer as new records
                                          (ingest time kept), for the sink that
                                          refused each, or NAME
  tidegate dead-letters clear (ID... | --all | --older-than AGE) [--yes]
                                          remove them for good (AGE: 7d, 12h)

  tidegate export [--from TIME] [--to TIME] [--format jsonl|protobuf]
                  [--source NAME] [--device ID] [--output FILE]
                                          retained records (delivered or not)
                                          in the envelope the sinks send

  tidegate --version | --help

FILE defaults to /etc/tidegate/tidegate.toml. stats, dump, verify and sink
list open the database read-only, so they are safe beside a running gateway.
acknowledge-losses, sink forget and rewind, dead-letters replay and clear ask first (unless --yes), then change the
file directly when no gateway runs, or go through the running gateway's
status API, which needs [status] token in the configuration.

With the service's configuration (the default FILE), every command also
reads the service's environment file /etc/default/tidegate (skipped if it
does not exist) for variables the process environment does not set, as
systemd's EnvironmentFile= gives them to the service; --env-file FILE names
another one, with any configuration. The file is readable by root and the
tidegate group only: run these commands with sudo.

Exit status: 0 ok; 1 runtime failure (run), integrity check failed (buffer
verify), refused or not confirmed (nothing changed); 2 usage error,
configuration error, a file or the running gateway that cannot be reached.
)";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // "--db" -> "FILE"; flags map to ""
};

bool parse(int argc, const char* const* argv, Args& args, std::string& error) {
  static const std::map<std::string, bool> kKnown = {{"--db", true},    {"--config", true},  {"--from", true}, {"--env-file", true},
                                                     {"--limit", true}, {"--quick", false},  {"--help", false},
                                                     {"-h", false},     {"--version", false}, {"--yes", false},
                                                     {"--to-seq", true}, {"--to-time", true}, {"--to-earliest", false},
                                                     {"--all", false}, {"--to-sink", true}, {"--older-than", true},
                                                     {"--output", true}, {"--to", true}, {"--format", true},
                                                     {"--source", true}, {"--device", true}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-", 0) != 0) {
      args.positional.push_back(a);
      continue;
    }
    auto it = kKnown.find(a);
    if (it == kKnown.end()) {
      error = "unknown option " + a;
      return false;
    }
    if (it->second) {
      if (i + 1 >= argc) {
        error = "option " + a + " needs a value";
        return false;
      }
      args.options[a] = argv[++i];
    } else {
      args.options[a] = "";
    }
  }
  return true;
}

bool parse_u64(const std::string& text, std::uint64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Read-only, with the configured options when a configuration names the
// file, so that stats report the limits the gateway runs with.
std::unique_ptr<buffer::Buffer> open_for_inspection(buffer::BufferOptions opts, buffer::IntegrityCheck check) {
  opts.read_only = true;
  opts.integrity_check = check;
  return buffer::Buffer::open(std::move(opts));
}

std::string config_file(const Args& args) {
  auto it = args.options.find("--config");
  return it == args.options.end() ? kDefaultConfig : it->second;
}

// The variables a configuration may name: the process environment, then the
// service's environment file. nullopt (reported) if the file is unreadable
// or has errors: a check that silently missed the credentials the service
// gets would mislead.
std::optional<EnvLookup> environment(const Args& args, std::ostream& err) {
  auto it = args.options.find("--env-file");
  const bool named = it != args.options.end();
  // The service's file goes with the service's configuration only: a test or
  // development configuration elsewhere does not pick up its credentials.
  if (!named && config_file(args) != kDefaultConfig) return process_env();
  const std::filesystem::path path = named ? it->second : kDefaultEnvFile;
  std::string error;
  auto file = config::read_env_file(path, named, error);
  if (!file) {
    err << "tidegate: " << error << " (the service's environment file; run with sudo, or give --env-file)\n";
    return std::nullopt;
  }
  for (const auto& e : file->errors)
    err << e << "\n";
  if (!file->errors.empty()) return std::nullopt;
  return process_env_then(std::move(file->vars));
}

void print_errors(const std::vector<ConfigError>& errors, std::ostream& err) {
  for (const auto& e : errors)
    err << e.text() << "\n";
}

// The buffer and, with a configuration, the configured sinks and the way to
// the running gateway. nullopt (reported) when the configuration is bad.
std::optional<OperatorContext> operator_context(const Args& args, std::istream& in, std::ostream& out,
                                                std::ostream& err) {
  OperatorContext ctx;
  ctx.in = &in;
  ctx.out = &out;
  ctx.err = &err;
  ctx.assume_yes = args.options.count("--yes") > 0;
  if (auto db = args.options.find("--db"); db != args.options.end()) {
    ctx.buffer.path = db->second;
    return ctx;
  }
  const auto env = environment(args, err);
  if (!env) return std::nullopt;
  auto loaded = load_config(config_file(args), *env);
  if (!loaded.config) {
    print_errors(loaded.errors, err);
    err << "tidegate: give --db FILE, or a valid --config FILE\n";
    return std::nullopt;
  }
  ctx.have_config = true;
  ctx.buffer = loaded.config->buffer;
  ctx.status = loaded.config->status;
  for (const auto& plan : loaded.config->sinks)
    ctx.configured_sinks.insert(plan.name);
  ctx.gateway_id = loaded.config->gateway_id;
  return ctx;
}

int sink_command(const Args& args, std::istream& in, std::ostream& out, std::ostream& err) {
  const std::string sub = args.positional.size() > 1 ? args.positional[1] : "";
  static const std::set<std::string> kCommands = {"list", "forget", "rewind", "pause", "resume"};
  if (!kCommands.count(sub)) {
    err << "tidegate sink: unknown command '" << sub << "' (list, forget, rewind, pause, resume)\n";
    return 2;
  }
  if (sub != "list" && args.positional.size() != 3) {
    err << "tidegate sink " << sub << ": name the sink: tidegate sink " << sub << " NAME\n";
    return 2;
  }
  forward::RewindTarget target;
  std::string target_text;
  if (sub == "rewind") {
    const auto seq = args.options.find("--to-seq");
    const auto time = args.options.find("--to-time");
    const bool earliest = args.options.count("--to-earliest") > 0;
    if ((seq != args.options.end()) + (time != args.options.end()) + earliest != 1) {
      err << "tidegate sink rewind: give one of --to-seq N, --to-time TIME, --to-earliest\n";
      return 2;
    }
    if (seq != args.options.end()) {
      target.kind = forward::RewindTarget::Kind::kSeq;
      if (!parse_u64(seq->second, target.seq) || target.seq == 0) {
        err << "tidegate sink rewind: --to-seq expects a sequence number from 1, got '" << seq->second << "'\n";
        return 2;
      }
      target_text = "sequence " + seq->second;
    } else if (time != args.options.end()) {
      target.kind = forward::RewindTarget::Kind::kTime;
      const auto ns = parse_operator_time(time->second);
      if (!ns) {
        err << "tidegate sink rewind: --to-time expects UTC as 2026-11-30T08:00:00Z, \"2026-11-30 08:00\", "
               "2026-11-30 or Unix seconds, got '" << time->second << "'\n";
        return 2;
      }
      target.ingest_ns = *ns;
      target_text = "the first record ingested at or after " + time->second;
    } else {
      target_text = "the oldest record";
    }
  }
  const auto ctx = operator_context(args, in, out, err);
  if (!ctx) return 2;
  try {
    if (sub == "list") return list_sinks(*ctx);
    if (sub == "forget") return forget_sink(*ctx, args.positional[2]);
    if (sub == "rewind") return rewind_sink(*ctx, args.positional[2], target, target_text);
    return hold_sink(*ctx, args.positional[2], sub == "pause");
  } catch (const buffer::BufferError& e) {
    err << "tidegate sink " << sub << ": " << e.what() << "\n";
    return 2;
  }
}

// Runs `write` into --output FILE, or into `out` without one. A file that
// cannot be opened, or whose writing fails (a full disk), is an error with
// exit code 2, never a short export that looks complete.
template <typename Write>
int with_output(const Args& args, std::ostream& out, std::ostream& err, const char* command, Write&& write) {
  const auto it = args.options.find("--output");
  if (it == args.options.end()) return write(out);
  std::ofstream file(it->second, std::ios::binary | std::ios::trunc);
  if (!file) {
    err << command << ": cannot write " << it->second << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  const int code = write(file);
  file.close();
  if (!file) {
    err << command << ": writing " << it->second << " failed (is the disk full?); the file is incomplete\n";
    return 2;
  }
  return code;
}

int dead_letters_command(const Args& args, std::istream& in, std::ostream& out, std::ostream& err) {
  const std::string sub = args.positional.size() > 1 ? args.positional[1] : "";
  static const std::set<std::string> kCommands = {"list", "show", "export", "replay", "clear"};
  if (!kCommands.count(sub)) {
    err << "tidegate dead-letters: unknown command '" << sub << "' (list, show, export, replay, clear)\n";
    return 2;
  }
  // IDs after the command; replay and clear also take --all or --older-than.
  buffer::DeadLetterSelection which;
  for (std::size_t i = 2; i < args.positional.size(); ++i) {
    std::uint64_t id = 0;
    if (!parse_u64(args.positional[i], id) || id == 0 || id > INT64_MAX) {
      err << "tidegate dead-letters " << sub << ": '" << args.positional[i] << "' is not a dead letter id\n";
      return 2;
    }
    which.ids.push_back(static_cast<std::int64_t>(id));
  }
  which.all = args.options.count("--all") > 0;
  if (auto it = args.options.find("--older-than"); it != args.options.end()) {
    const auto ms = config::parse_duration_ms(it->second);
    if (!ms || *ms <= 0) {
      err << "tidegate dead-letters " << sub << ": --older-than expects an age such as 7d, 12h or 30m, got '"
          << it->second << "'\n";
      return 2;
    }
    const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    which.failed_before_ns = now_ns - *ms * 1'000'000;
  }
  const bool selects = which.all || !which.ids.empty() || which.failed_before_ns;
  if ((sub == "replay" || sub == "clear") && !selects) {
    err << "tidegate dead-letters " << sub << ": say which: IDs, --all or --older-than AGE\n";
    return 2;
  }
  if (sub == "show" && which.ids.size() != 1) {
    err << "tidegate dead-letters show: name one id: tidegate dead-letters show ID\n";
    return 2;
  }
  std::uint64_t limit = 50;
  if (auto it = args.options.find("--limit"); it != args.options.end() && !parse_u64(it->second, limit)) {
    err << "tidegate dead-letters list: --limit expects a count, got '" << it->second << "'\n";
    return 2;
  }
  const auto ctx = operator_context(args, in, out, err);
  if (!ctx) return 2;
  try {
    if (sub == "list") return list_dead_letters(*ctx, limit);
    if (sub == "show") return show_dead_letter(*ctx, which.ids.front());
    if (sub == "export") {
      return with_output(args, out, err, "tidegate dead-letters export",
                         [&](std::ostream& to) { return export_dead_letters(*ctx, to); });
    }
    const auto to = args.options.find("--to-sink");
    if (sub == "replay") return replay_dead_letters(*ctx, which, to == args.options.end() ? "" : to->second);
    return clear_dead_letters(*ctx, which);
  } catch (const buffer::BufferError& e) {
    err << "tidegate dead-letters " << sub << ": " << e.what() << "\n";
    return 2;
  }
}

int export_command(const Args& args, std::istream& in, std::ostream& out, std::ostream& err) {
  ExportRequest request;
  for (const auto& [option, field] : {std::pair{"--from", &request.from_ns}, std::pair{"--to", &request.to_ns}}) {
    auto it = args.options.find(option);
    if (it == args.options.end()) continue;
    *field = parse_operator_time(it->second);
    if (!*field) {
      err << "tidegate export: " << option << " expects UTC as 2026-11-30T08:00:00Z, \"2026-11-30 08:00\", "
          << "2026-11-30 or Unix seconds, got '" << it->second << "'\n";
      return 2;
    }
  }
  // --from is a sequence number for `buffer dump`, a time here.
  if (auto it = args.options.find("--format"); it != args.options.end()) {
    if (it->second == "protobuf") {
      request.format = ExportFormat::kProtobuf;
    } else if (it->second != "jsonl") {
      err << "tidegate export: --format is jsonl or protobuf, got '" << it->second << "'\n";
      return 2;
    }
  }
  if (auto it = args.options.find("--source"); it != args.options.end()) request.source = it->second;
  if (auto it = args.options.find("--device"); it != args.options.end()) request.device = it->second;
  if (args.positional.size() != 1) {
    err << "tidegate export: unexpected argument '" << args.positional[1] << "'\n";
    return 2;
  }
  const auto ctx = operator_context(args, in, out, err);
  if (!ctx) return 2;
  try {
    return with_output(args, out, err, "tidegate export",
                       [&](std::ostream& to) { return export_records(*ctx, request, to); });
  } catch (const buffer::BufferError& e) {
    err << "tidegate export: " << e.what() << "\n";
    return 2;
  }
}

int buffer_command(const Args& args, std::istream& in, std::ostream& out, std::ostream& err) {
  const std::string sub = args.positional.size() > 1 ? args.positional[1] : "";
  if (sub == "acknowledge-losses") {
    const auto ctx = operator_context(args, in, out, err);
    if (!ctx) return 2;
    try {
      return acknowledge_losses(*ctx);
    } catch (const buffer::BufferError& e) {
      err << "tidegate buffer acknowledge-losses: " << e.what() << "\n";
      return 2;
    }
  }
  std::map<std::string, std::string>::const_iterator db = args.options.find("--db");
  buffer::BufferOptions options;  // --db: the limits are not known, the defaults are shown
  std::string limits_from = "defaults: give --config for the configured limits";
  if (db != args.options.end()) {
    options.path = db->second;
  } else {
    const auto env = environment(args, err);
    if (!env) return 2;
    auto loaded = load_config(config_file(args), *env);
    if (!loaded.config) {
      print_errors(loaded.errors, err);
      err << "tidegate buffer " << sub << ": give --db FILE, or a valid --config FILE\n";
      return 2;
    }
    options = loaded.config->buffer;
    limits_from = "configuration " + config_file(args);
  }
  try {
    if (sub == "stats") {
      auto buf = open_for_inspection(options, buffer::IntegrityCheck::kNone);
      auto json = stats_json(buf->stats());
      json.insert(json.size() - 1, ",\"limits_from\":" + proto::json::quote(limits_from));
      out << json << "\n";
      return 0;
    }
    if (sub == "dump") {
      std::uint64_t from = 1;
      std::uint64_t limit = UINT64_MAX;
      if (auto it = args.options.find("--from"); it != args.options.end() && !parse_u64(it->second, from)) {
        err << "tidegate buffer dump: --from expects a sequence number, got '" << it->second << "'\n";
        return 2;
      }
      if (auto it = args.options.find("--limit"); it != args.options.end() && !parse_u64(it->second, limit)) {
        err << "tidegate buffer dump: --limit expects a count, got '" << it->second << "'\n";
        return 2;
      }
      auto buf = open_for_inspection(options, buffer::IntegrityCheck::kNone);
      std::uint64_t after = from > 0 ? from - 1 : 0;
      while (limit > 0) {
        auto batch = buf->read_after(after, static_cast<std::size_t>(std::min<std::uint64_t>(limit, 1000)), SIZE_MAX);
        if (batch.status != buffer::Status::kOk) {
          err << "tidegate buffer dump: " << batch.error << "\n";
          return 2;
        }
        if (batch.records.empty()) break;
        for (const auto& r : batch.records)
          out << proto::record_json(r) << "\n";
        after = batch.records.back().seq;
        limit -= batch.records.size();
      }
      return 0;
    }
    if (sub == "verify") {
      const auto depth = args.options.count("--quick") ? buffer::IntegrityCheck::kQuick : buffer::IntegrityCheck::kFull;
      auto buf = open_for_inspection(options, buffer::IntegrityCheck::kNone);
      auto report = buf->verify(depth);
      out << (report.ok ? "ok" : "damaged") << ": " << report.detail << "\n";
      return report.ok ? 0 : 1;
    }
  } catch (const buffer::BufferError& e) {
    err << "tidegate buffer " << sub << ": " << e.what() << "\n";
    return sub == "verify" ? 1 : 2;
  }
  err << "tidegate buffer: unknown command '" << sub << "' (stats, dump, verify, acknowledge-losses)\n";
  return 2;
}

}  // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  return run_cli(argc, argv, out, err, std::cin);
}

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err, std::istream& in) {
  Args args;
  std::string error;
  if (!parse(argc, argv, args, error)) {
    err << "tidegate: " << error << "\n\n" << kUsage;
    return 2;
  }
  if (args.options.count("--version")) {
    out << "tidegate " << kVersion << "\n";
    return 0;
  }
  if (args.options.count("--help") || args.options.count("-h") || args.positional.empty()) {
    out << kUsage;
    return args.positional.empty() && !args.options.count("--help") && !args.options.count("-h") ? 2 : 0;
  }
  const std::string& command = args.positional[0];
  if (command == "buffer") return buffer_command(args, in, out, err);
  if (command == "sink") return sink_command(args, in, out, err);
  if (command == "dead-letters") return dead_letters_command(args, in, out, err);
  if (command == "export") return export_command(args, in, out, err);
  if (command == "run") {
    auto env = environment(args, err);
    return env ? run_daemon(config_file(args), err, std::move(*env)) : 2;
  }
  if (command == "config-reference") {
    out << config_reference_markdown();
    return 0;
  }
  if (command == "check-config") {
    const auto file = config_file(args);
    const auto env = environment(args, err);
    if (!env) return 2;
    auto loaded = load_config(file, *env);
    if (!loaded.config) {
      print_errors(loaded.errors, err);
      err << loaded.errors.size() << " error(s) in " << file << "\n";
      return 2;
    }
    const auto& c = *loaded.config;
    auto list = [](const auto& plans) {
      std::string text;
      for (const auto& p : plans)
        text += (text.empty() ? "" : ", ") + p.kind + " '" + p.name + "'";
      return text.empty() ? std::string("none") : text;
    };
    out << file << ": ok (gateway '" << c.gateway_id << "', buffer " << c.buffer.path.string()
        << "; sources: " << list(c.sources) << "; sinks: " << list(c.sinks) << ")\n";
    return 0;
  }
  err << "tidegate: unknown command '" << args.positional[0] << "'\n\n" << kUsage;
  return 2;
}

}  // namespace tidegate::gateway
