#include "tidegate/sinks/aws_credentials.h"

#include <cctype>
#include <ctime>
#include <iomanip>
#include <iterator>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tidegate/common/civil_time.h"
#include "tidegate/net/http_client.h"

namespace tidegate::sinks::aws {
namespace {

// Fetch again this long before the credentials expire: a send signed just
// before expiry may still be in flight (and retried) for a while.
constexpr std::int64_t kRefreshMarginS = 300;

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The text between <tag> and </tag>, the first occurrence; empty if none.
// STS's answers are flat XML whose values never contain '<'.
std::string xml_value(const std::string& xml, const std::string& tag) {
  const auto open = xml.find("<" + tag + ">");
  if (open == std::string::npos) return {};
  const auto begin = open + tag.size() + 2;
  const auto close = xml.find("</" + tag + ">", begin);
  return close == std::string::npos ? std::string() : xml.substr(begin, close - begin);
}

std::string form_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string first_line(const std::string& text) {
  auto line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

std::optional<std::int64_t> parse_iso8601_utc(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::nullopt;
  return common::unix_seconds(tm);
}

// Credentials as a service answered them, checked whole.
CredentialsProvider::Fetched CredentialsProvider::complete(const std::string& where, sigv4::Credentials credentials,
                                                           const std::string& expiration) {
  const auto expires = parse_iso8601_utc(expiration);
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty() || !expires) {
    throw CredentialsError(where + ": the answer lacks AccessKeyId, SecretAccessKey or Expiration");
  }
  return Fetched{std::move(credentials), *expires};
}

CredentialsProvider::CredentialsProvider(CredentialOptions options) : opts_(std::move(options)) {
  if (!opts_.now) opts_.now = system_now;
  if (opts_.source == CredentialSource::kKeys) current_ = Fetched{opts_.keys, 0};
}

CredentialsProvider::~CredentialsProvider() = default;

sigv4::Credentials CredentialsProvider::get() {
  std::lock_guard lock(mu_);
  if (current_ && (current_->expires_s == 0 || opts_.now() < current_->expires_s - kRefreshMarginS)) {
    return current_->credentials;
  }
  Fetched fresh = opts_.source == CredentialSource::kInstance ? fetch_instance() : fetch_web_identity();
  fetches_ += 1;
  current_ = std::move(fresh);
  return current_->credentials;
}

void CredentialsProvider::invalidate() {
  std::lock_guard lock(mu_);
  if (opts_.source != CredentialSource::kKeys) current_.reset();
}

std::string CredentialsProvider::describe() const {
  std::lock_guard lock(mu_);
  switch (opts_.source) {
    case CredentialSource::kKeys:
      return "access keys";
    case CredentialSource::kInstance:
      return "instance role" + (role_name_.empty() ? std::string() : " " + role_name_);
    case CredentialSource::kWebIdentity:
      return "web identity for " + opts_.role_arn;
  }
  return "?";
}

std::uint64_t CredentialsProvider::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

// IMDSv2: a session token by PUT, then the role's name and its credentials
// by GET with that token (IMDSv1's plain GETs are refused on hardened
// instances and not used).
CredentialsProvider::Fetched CredentialsProvider::fetch_instance() {
  const std::string where = "credentials from the instance metadata service " + opts_.metadata_endpoint;
  try {
    net::HttpClient imds(net::Url::parse(opts_.metadata_endpoint), opts_.timeout);
    const auto token = imds.request("PUT", "/latest/api/token", {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}}, "");
    if (token.status != 200) throw CredentialsError(where + ": session token refused with HTTP " + std::to_string(token.status));
    const std::vector<std::pair<std::string, std::string>> auth = {{"X-aws-ec2-metadata-token", token.body}};
    const std::string base = "/latest/meta-data/iam/security-credentials/";
    if (role_name_.empty()) {
      const auto roles = imds.request("GET", base, auth, "");
      if (roles.status == 404) throw CredentialsError(where + ": this instance has no IAM role attached");
      if (roles.status != 200) throw CredentialsError(where + ": role lookup answered HTTP " + std::to_string(roles.status));
      role_name_ = first_line(roles.body);
      if (role_name_.empty()) throw CredentialsError(where + ": this instance has no IAM role attached");
    }
    const auto answer = imds.request("GET", base + role_name_, auth, "");
    if (answer.status != 200) {
      const auto status = answer.status;
      role_name_.clear();  // the role may have been replaced: look it up again next time
      throw CredentialsError(where + ": credentials of role answered HTTP " + std::to_string(status));
    }
    const auto doc = nlohmann::json::parse(answer.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || doc.value("Code", "") != "Success") {
      throw CredentialsError(where + ": unexpected answer: " + answer.body.substr(0, 200));
    }
    return complete(where, {doc.value("AccessKeyId", ""), doc.value("SecretAccessKey", ""), doc.value("Token", "")},
                    doc.value("Expiration", ""));
  } catch (const net::HttpError& e) {
    throw CredentialsError(where + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw CredentialsError(where + ": " + e.what());
  }
}

// STS AssumeRoleWithWebIdentity: an unsigned call (the token is the proof).
CredentialsProvider::Fetched CredentialsProvider::fetch_web_identity() {
  const std::string where = "credentials for " + opts_.role_arn + " from STS " + opts_.sts_endpoint;
  std::ifstream file(opts_.token_file, std::ios::binary);
  std::string token((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!file && token.empty()) throw CredentialsError(where + ": cannot read the token file " + opts_.token_file);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) throw CredentialsError(where + ": the token file " + opts_.token_file + " is empty");
  try {
    net::HttpClient sts(net::Url::parse(opts_.sts_endpoint), opts_.timeout, opts_.ca_file);
    const std::string body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + form_encode(opts_.role_arn) +
                             "&RoleSessionName=" + form_encode(opts_.session_name) +
                             "&WebIdentityToken=" + form_encode(token);
    const auto answer = sts.request("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}, body);
    if (answer.status != 200) {
      const auto code = xml_value(answer.body, "Code");
      const auto message = xml_value(answer.body, "Message");
      throw CredentialsError(where + ": HTTP " + std::to_string(answer.status) + (code.empty() ? "" : " " + code) +
                             (message.empty() ? "" : ": " + message));
    }
    return complete(where,
                    {xml_value(answer.body, "AccessKeyId"), xml_value(answer.body, "SecretAccessKey"),
                     xml_value(answer.body, "SessionToken")},
                    xml_value(answer.body, "Expiration"));
  } catch (const net::HttpError& e) {
    throw CredentialsError(where + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw CredentialsError(where + ": " + e.what());
  }
}

}  // namespace tidegate::sinks::aws
