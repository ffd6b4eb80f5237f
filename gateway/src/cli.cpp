#include "tidegate/gateway/cli.h"

#include <charconv>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "tidegate/buffer/buffer.h"
#include "tidegate/gateway/buffer_report.h"
#include "tidegate/gateway/version.h"

namespace tidegate::gateway {
namespace {

constexpr const char* kUsage = R"(tidegate - edge ingestion gateway: sensors in, durable buffer, cloud out

Usage:
  tidegate buffer stats  --db FILE              buffer figures as JSON
  tidegate buffer dump   --db FILE [--from SEQ] [--limit N]
                                                stored records as JSON lines,
                                                from sequence SEQ (default 1)
  tidegate buffer verify --db FILE [--quick]    integrity check (full by default);
                                                exit status 1 if damaged
  tidegate --version
  tidegate --help

The buffer commands open the database read-only, so they are safe to run
beside a running gateway. Exit status: 0 ok, 1 check failed, 2 usage or
I/O error.
)";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // "--db" -> "FILE"; flags map to ""
};

bool parse(int argc, const char* const* argv, Args& args, std::string& error) {
  static const std::map<std::string, bool> kKnown = {
      {"--db", true}, {"--from", true}, {"--limit", true}, {"--quick", false},
      {"--help", false}, {"-h", false}, {"--version", false}};
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

std::unique_ptr<buffer::Buffer> open_for_inspection(const std::string& db, buffer::IntegrityCheck check) {
  buffer::BufferOptions opts;
  opts.path = db;
  opts.read_only = true;
  opts.integrity_check = check;
  return buffer::Buffer::open(std::move(opts));
}

int buffer_command(const Args& args, std::ostream& out, std::ostream& err) {
  const std::string sub = args.positional.size() > 1 ? args.positional[1] : "";
  auto db = args.options.find("--db");
  if (db == args.options.end()) {
    err << "tidegate buffer " << sub << ": --db FILE is required\n";
    return 2;
  }
  try {
    if (sub == "stats") {
      auto buf = open_for_inspection(db->second, buffer::IntegrityCheck::kNone);
      out << stats_json(buf->stats()) << "\n";
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
      auto buf = open_for_inspection(db->second, buffer::IntegrityCheck::kNone);
      std::uint64_t after = from > 0 ? from - 1 : 0;
      while (limit > 0) {
        auto batch = buf->read_after(after, static_cast<std::size_t>(std::min<std::uint64_t>(limit, 1000)),
                                     SIZE_MAX);
        if (batch.status != buffer::Status::kOk) {
          err << "tidegate buffer dump: " << batch.error << "\n";
          return 2;
        }
        if (batch.records.empty()) break;
        for (const auto& r : batch.records) out << record_json(r) << "\n";
        after = batch.records.back().seq;
        limit -= batch.records.size();
      }
      return 0;
    }
    if (sub == "verify") {
      const auto depth = args.options.count("--quick") ? buffer::IntegrityCheck::kQuick : buffer::IntegrityCheck::kFull;
      auto buf = open_for_inspection(db->second, buffer::IntegrityCheck::kNone);
      auto report = buf->verify(depth);
      out << (report.ok ? "ok" : "damaged") << ": " << report.detail << "\n";
      return report.ok ? 0 : 1;
    }
  } catch (const buffer::BufferError& e) {
    err << "tidegate buffer " << sub << ": " << e.what() << "\n";
    return sub == "verify" ? 1 : 2;
  }
  err << "tidegate buffer: unknown command '" << sub << "' (stats, dump, verify)\n";
  return 2;
}

}  // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
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
  if (args.positional[0] == "buffer") return buffer_command(args, out, err);
  err << "tidegate: unknown command '" << args.positional[0] << "'\n\n" << kUsage;
  return 2;
}

}  // namespace tidegate::gateway
