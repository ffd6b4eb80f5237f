// Temporary AWS credentials for the Kinesis sink, against real HTTP servers
// on loopback that answer as the EC2 instance metadata service (IMDSv2) and
// STS do (the documented requests and answers; the real services are not
// reachable from a test). The sink's signature is checked on a scripted
// Kinesis endpoint that records what it was sent.
#include "tidegate/sinks/aws_credentials.h"

#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "http_server.h"
#include "mosquitto.h"  // free_loopback_port
#include "test_support.h"
#include "tidegate/sinks/kinesis_sink.h"

namespace tidegate::sinks {
namespace {

using aws::CredentialOptions;
using aws::CredentialsError;
using aws::CredentialSource;
using aws::CredentialsProvider;
using testing::LoopbackHttpServer;

std::string iso8601(std::int64_t s) {
  const std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string header(const LoopbackHttpServer::Request& r, const std::string& name) {
  auto it = r.find(name);
  return it == r.end() ? std::string() : std::string(it->value());
}

// IMDSv2 as documented: a PUT for a session token (with its TTL header), then
// GETs carrying the token; without it, 401. Each credentials answer gives a
// new key id and expires an hour after `now`.
class FakeInstance {
 public:
  explicit FakeInstance(std::string role = "gateway-role")
      : role_(std::move(role)), server_([this](const auto& r, int) { return answer(r); }) {}
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  std::atomic<std::int64_t> now{1'800'000'000};
  std::atomic<int> credential_answers{0};
  std::atomic<int> token_puts{0};

 private:
  std::pair<int, std::string> answer(const LoopbackHttpServer::Request& r) {
    const std::string target(r.target());
    if (r.method_string() == "PUT" && target == "/latest/api/token") {
      if (header(r, "X-aws-ec2-metadata-token-ttl-seconds").empty()) return {400, ""};
      token_puts++;
      return {200, "session-token-of-imds"};
    }
    if (header(r, "X-aws-ec2-metadata-token") != "session-token-of-imds") return {401, ""};
    const std::string base = "/latest/meta-data/iam/security-credentials/";
    if (target == base) return role_.empty() ? std::pair<int, std::string>{404, ""} : std::pair{200, role_ + "\n"};
    if (target == base + role_) {
      const int n = ++credential_answers;
      return {200, nlohmann::json{{"Code", "Success"},
                                  {"Type", "AWS-HMAC"},
                                  {"AccessKeyId", "ASIA" + std::to_string(n)},
                                  {"SecretAccessKey", "secret-" + std::to_string(n)},
                                  {"Token", "session-" + std::to_string(n)},
                                  {"Expiration", iso8601(now.load() + 3600)}}
                       .dump()};
    }
    return {404, ""};
  }
  std::string role_;
  LoopbackHttpServer server_;
};

CredentialOptions instance_options(const FakeInstance& imds) {
  CredentialOptions o;
  o.source = CredentialSource::kInstance;
  o.metadata_endpoint = imds.endpoint();
  o.now = [&imds] { return imds.now.load(); };
  return o;
}

TEST(AwsCredentials, AnInstanceRoleIsFetchedWithImdsV2AndRenewedBeforeItExpires) {
  FakeInstance imds;
  CredentialsProvider p(instance_options(imds));
  auto c = p.get();
  EXPECT_EQ(c.access_key_id, "ASIA1");
  EXPECT_EQ(c.secret_access_key, "secret-1");
  EXPECT_EQ(c.session_token, "session-1");
  EXPECT_EQ(p.describe(), "instance role gateway-role");
  imds.now += 3000;  // 10 minutes left: still good
  EXPECT_EQ(p.get().access_key_id, "ASIA1");
  EXPECT_EQ(p.fetches(), 1u);
  imds.now += 400;  // under 5 minutes left: renewed
  EXPECT_EQ(p.get().access_key_id, "ASIA2");
  EXPECT_EQ(p.fetches(), 2u);
  p.invalidate();  // the upstream said the token expired
  EXPECT_EQ(p.get().access_key_id, "ASIA3");
  EXPECT_EQ(imds.token_puts.load(), 3);
}

TEST(AwsCredentials, AnInstanceWithoutARoleOrMetadataServiceSaysSo) {
  FakeInstance imds("");
  CredentialsProvider p(instance_options(imds));
  try {
    p.get();
    FAIL() << "expected CredentialsError";
  } catch (const CredentialsError& e) {
    EXPECT_NE(std::string(e.what()).find("this instance has no IAM role attached"), std::string::npos) << e.what();
  }
  CredentialOptions o;
  o.source = CredentialSource::kInstance;
  o.metadata_endpoint = "http://127.0.0.1:" + std::to_string(testing::free_loopback_port());  // nothing there
  o.timeout = std::chrono::milliseconds(500);
  CredentialsProvider nowhere(o);
  EXPECT_THROW(nowhere.get(), CredentialsError);
}

// STS as documented: a form-encoded AssumeRoleWithWebIdentity, answered in XML.
TEST(AwsCredentials, AWebIdentityIsExchangedAtStsAndItsRefusalIsNamed) {
  testing::TempDir dir;
  const auto token_file = dir / "token";
  std::ofstream(token_file) << "eyJhbGciOi.identity+token/=\n";
  std::mutex mu;
  std::string seen;
  bool refuse = false;
  LoopbackHttpServer sts([&](const LoopbackHttpServer::Request& r, int) -> std::pair<int, std::string> {
    std::lock_guard lock(mu);
    seen = r.body();
    if (refuse) {
      return {400, "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                   "<Message>Couldn't retrieve verification key from your identity provider</Message></Error>"
                   "</ErrorResponse>"};
    }
    return {200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                 "<AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>web-secret</SecretAccessKey>"
                 "<SessionToken>web-session</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"
                 "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"};
  });
  CredentialOptions o;
  o.source = CredentialSource::kWebIdentity;
  o.role_arn = "arn:aws:iam::123456789012:role/tidegate-kinesis";
  o.token_file = token_file.string();
  o.sts_endpoint = "http://127.0.0.1:" + std::to_string(sts.port());
  CredentialsProvider p(o);
  const auto c = p.get();
  EXPECT_EQ(c.access_key_id, "ASIAWEB");
  EXPECT_EQ(c.secret_access_key, "web-secret");
  EXPECT_EQ(c.session_token, "web-session");
  {
    std::lock_guard lock(mu);
    EXPECT_NE(seen.find("Action=AssumeRoleWithWebIdentity"), std::string::npos) << seen;
    EXPECT_NE(seen.find("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftidegate-kinesis"), std::string::npos)
        << seen;
    EXPECT_NE(seen.find("WebIdentityToken=eyJhbGciOi.identity%2Btoken%2F%3D"), std::string::npos) << seen;
    refuse = true;
  }
  p.invalidate();
  try {
    p.get();
    FAIL() << "expected CredentialsError";
  } catch (const CredentialsError& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 400 InvalidIdentityToken: Couldn't retrieve"), std::string::npos)
        << e.what();
  }
}

// The sink signs with the role's temporary credentials and sends their
// session token; an ExpiredTokenException makes it fetch new ones.
TEST(AwsCredentials, TheKinesisSinkSignsWithTheInstanceRoleAndRenewsOnAnExpiredToken) {
  FakeInstance imds;
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;  // authorization, security token
  LoopbackHttpServer kinesis([&](const LoopbackHttpServer::Request& r, int call) -> std::pair<int, std::string> {
    std::lock_guard lock(mu);
    seen.emplace_back(header(r, "authorization"), header(r, "x-amz-security-token"));
    if (call == 0) {  // the first call: the token has expired
      return {400, R"({"__type":"ExpiredTokenException","message":"The security token included in the request is expired"})"};
    }
    return {200, R"({"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]})"};
  });
  KinesisSinkOptions k;
  k.stream = "s";
  k.endpoint = "http://127.0.0.1:" + std::to_string(kinesis.port());
  k.credential_source = instance_options(imds);
  KinesisSink sink(k);
  EXPECT_NE(sink.describe().find("instance role"), std::string::npos) << sink.describe();
  buffer::Record reading;
  static_cast<buffer::NewRecord&>(reading) = testing::make_record("21.5");
  reading.seq = 1;
  const std::vector<buffer::Record> batch = {reading};
  EXPECT_EQ(sink.send(batch).batch, forward::Outcome::kRetry);  // expired
  EXPECT_EQ(sink.send(batch).batch, forward::Outcome::kOk);
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].first.find("Credential=ASIA1/"), std::string::npos) << seen[0].first;
  EXPECT_EQ(seen[0].second, "session-1");
  EXPECT_NE(seen[1].first.find("Credential=ASIA2/"), std::string::npos) << seen[1].first;
  EXPECT_EQ(seen[1].second, "session-2");
}

TEST(AwsCredentials, ExpirationsInIso8601Parse) {
  EXPECT_EQ(aws::parse_iso8601_utc("1970-01-01T00:01:40Z"), 100);
  EXPECT_EQ(aws::parse_iso8601_utc("2026-12-05T10:00:00Z"), 1796464800);
  EXPECT_EQ(aws::parse_iso8601_utc("2100-01-01T00:00:00Z"), 4102444800);  // past a 32-bit time_t
  EXPECT_FALSE(aws::parse_iso8601_utc("tomorrow").has_value());
}

}  // namespace
}  // namespace tidegate::sinks
