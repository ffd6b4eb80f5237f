// Where the Kinesis sink's AWS credentials come from: keys given in the
// configuration or the environment, or temporary credentials the box is
// entitled to — an EC2 instance role (instance metadata service, IMDSv2)
// or a web identity (a token file and a role, assumed through STS, as on
// EKS or with an OIDC provider). Temporary credentials are fetched when
// first needed and again five minutes before they expire, so the gateway
// runs for months without anyone renewing a key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "tidegate/sinks/sigv4.h"

namespace tidegate::sinks::aws {

// Credentials could not be had now (the service did not answer, refused, or
// answered nonsense); the send is retried later. The text says from where.
class CredentialsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class CredentialSource {
  kKeys,         // access key id and secret (and a session token) as given
  kInstance,     // the EC2 instance role, from the instance metadata service (IMDSv2)
  kWebIdentity,  // AssumeRoleWithWebIdentity with a token file
};

struct CredentialOptions {
  CredentialSource source = CredentialSource::kKeys;
  sigv4::Credentials keys;  // kKeys
  // kInstance: the metadata service (AWS_EC2_METADATA_SERVICE_ENDPOINT, as the
  // AWS SDKs read it; default http://169.254.169.254).
  std::string metadata_endpoint = "http://169.254.169.254";
  // kWebIdentity: the role, the file with the identity token (re-read at
  // each refresh: the issuer rotates it) and STS.
  std::string role_arn;
  std::string token_file;
  std::string session_name = "tidegate";
  std::string sts_endpoint;  // https://sts.<region>.amazonaws.com
  std::string ca_file;       // for an https STS endpoint; empty: the system's
  std::chrono::milliseconds timeout{5'000};
  // Seconds since the epoch (tests move it).
  std::function<std::int64_t()> now;
};

class CredentialsProvider {
 public:
  explicit CredentialsProvider(CredentialOptions options);
  ~CredentialsProvider();
  CredentialsProvider(const CredentialsProvider&) = delete;
  CredentialsProvider& operator=(const CredentialsProvider&) = delete;

  // The credentials to sign with now; fetches or refreshes temporary ones
  // when due. Safe from several threads. Throws CredentialsError.
  sigv4::Credentials get();
  // The upstream said the token expired (clocks disagree): fetch anew.
  void invalidate();
  // For the log and the status page: "keys", "instance role NAME", ...
  std::string describe() const;
  // Fetches so far (1 for many sends while the credentials last).
  std::uint64_t fetches() const;

 private:
  struct Fetched {
    sigv4::Credentials credentials;
    std::int64_t expires_s = 0;  // 0: does not expire
  };
  Fetched fetch_instance();
  Fetched fetch_web_identity();
  static Fetched complete(const std::string& where, sigv4::Credentials credentials, const std::string& expiration);

  CredentialOptions opts_;
  mutable std::mutex mu_;
  std::optional<Fetched> current_;
  std::string role_name_;  // the instance's role, once known
  std::uint64_t fetches_ = 0;
};

// "2026-12-05T10:00:00Z" (as IMDS and STS write expirations) to seconds
// since the epoch; nullopt if it is not that form.
std::optional<std::int64_t> parse_iso8601_utc(const std::string& text);

}  // namespace tidegate::sinks::aws
