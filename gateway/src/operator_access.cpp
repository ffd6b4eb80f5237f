#include "operator_access.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <istream>
#include <memory>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tidegate/gateway/version.h"
#include "tidegate/net/http_client.h"

namespace tidegate::gateway::ops {
namespace {

// "tidegate-cli/0.1.0 (user alice)": the gateway logs it with the request.
// Under sudo the operator is SUDO_USER, not root.
std::string cli_identity() {
  std::string user;
  if (const char* sudo = std::getenv("SUDO_USER"); sudo && *sudo) {
    user = sudo;
  } else if (const passwd* pw = ::getpwuid(::getuid())) {
    user = pw->pw_name;
  }
  return std::string("tidegate-cli/") + kVersion + (user.empty() ? "" : " (user " + user + ")");
}

}  // namespace

std::string utc_text(std::int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::ostringstream o;
  o << std::put_time(&tm, "%Y-%m-%d %H:%M:%S UTC");
  return o.str();
}

std::unique_ptr<buffer::Buffer> open_read_only(const OperatorContext& ctx) {
  auto opts = ctx.buffer;
  opts.read_only = true;
  opts.integrity_check = buffer::IntegrityCheck::kNone;
  return buffer::Buffer::open(std::move(opts));
}

buffer::BufferStats read_stats(const OperatorContext& ctx) { return open_read_only(ctx)->stats(); }

const buffer::SinkStats* find_cursor(const buffer::BufferStats& s, const std::string& sink) {
  for (const auto& k : s.sinks) {
    if (k.name == sink) return &k;
  }
  return nullptr;
}

bool confirmed(const OperatorContext& ctx, const std::string& question) {
  if (ctx.assume_yes) return true;
  *ctx.out << question << " [y/N] " << std::flush;
  std::string answer;
  if (!ctx.in || !std::getline(*ctx.in, answer)) answer.clear();
  if (answer == "y" || answer == "Y" || answer == "yes") return true;
  *ctx.err << "not confirmed: nothing changed (give --yes to skip the question)\n";
  return false;
}

// The change, on the file itself. Caps, retention and the disk reserve are
// off: this command changes one thing, the gateway applies its limits at its
// next start. Throws BufferInUse while a gateway holds the file.
std::string apply_directly(const OperatorContext& ctx, const std::function<buffer::Status(buffer::Buffer&)>& change) {
  auto opts = ctx.buffer;
  opts.read_only = false;
  opts.integrity_check = buffer::IntegrityCheck::kNone;
  opts.max_bytes = 0;
  opts.max_records = 0;
  opts.retention_time = std::chrono::seconds(0);
  opts.retention_bytes = 0;
  opts.disk_reserve_bytes = 0;
  opts.maintenance_interval = std::chrono::hours(24);
  std::ostream& err = *ctx.err;
  opts.log = [&err](buffer::LogLevel level, std::string_view text) {
    if (level >= buffer::LogLevel::kWarning) err << "buffer: " << text << "\n";
  };
  auto buf = buffer::Buffer::open(std::move(opts));
  const auto st = change(*buf);
  return st == buffer::Status::kOk ? "" : std::string("the buffer refused: ") + buffer::to_string(st);
}

// The change, through the running gateway's status API. Empty on success.
std::string apply_through_gateway(const OperatorContext& ctx, const std::string& path) {
  if (!ctx.have_config) return "a gateway holds the file: give --config so that its status API can be used";
  if (!ctx.status.enabled) {
    return "a gateway holds the file and its status server is off ([status] enabled = false): stop the gateway "
           "(sudo systemctl stop tidegate) and run this again";
  }
  if (ctx.status.token.empty()) {
    return "a gateway holds the file and its status API takes no operations without a token: set [status] token "
           "(or TIDEGATE_STATUS_TOKEN), or stop the gateway (sudo systemctl stop tidegate) and run this again";
  }
  const auto& http = ctx.status.http;
  const bool tls = !http.tls_cert_file.empty();
  std::string host = http.address;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  const std::string url = std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(http.port) + path;
  try {
    // Over TLS the status server's own certificate is the trust anchor (it
    // is usually self-signed for the box).
    net::HttpClient client(net::Url::parse(url), std::chrono::seconds(10), tls ? http.tls_cert_file : "");
    const auto r = client.post({{"Authorization", "Bearer " + ctx.status.token}, {"User-Agent", cli_identity()}}, "");
    if (r.status == 200) return "";
    std::string reason = r.body;
    try {
      reason = nlohmann::json::parse(r.body).value("error", r.body);
    } catch (const nlohmann::json::exception&) {
    }
    return "the gateway answered " + std::to_string(r.status) + ": " + reason;
  } catch (const std::exception& e) {
    return "no gateway answered at its status API " + url + ": " + e.what();
  }
}

// Directly when the file is free, else through the gateway. Returns the exit
// status and reports the outcome.
int apply(const OperatorContext& ctx, const std::function<buffer::Status(buffer::Buffer&)>& change,
          const std::string& api_path, const std::string& done) {
  std::string error;
  std::string how;
  try {
    error = apply_directly(ctx, change);
    how = "on the buffer file (no gateway was running)";
  } catch (const buffer::BufferInUse&) {
    error = apply_through_gateway(ctx, api_path);
    how = "through the running gateway";
  } catch (const buffer::BufferError& e) {
    error = e.what();
  }
  if (!error.empty()) {
    *ctx.err << "tidegate: " << error << "\n";
    return error.rfind("the gateway answered 409", 0) == 0 ? 1 : 2;
  }
  *ctx.out << done << ", " << how << "\n";
  return 0;
}

bool buffer_exists(const OperatorContext& ctx) {
  if (std::filesystem::exists(ctx.buffer.path)) return true;
  *ctx.err << "tidegate: no buffer at " << ctx.buffer.path.string() << "\n";
  return false;
}

}  // namespace tidegate::gateway::ops
