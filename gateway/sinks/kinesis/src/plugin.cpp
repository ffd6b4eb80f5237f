// [[sinks.kinesis]]: the sink's keys, checks and factory.
#include "tidegate/config/tls_files.h"
#include "tidegate/plugins/sink_plugin.h"
#include "tidegate/sinks/kinesis_sink.h"

namespace tidegate::sinks {
namespace {

using config::Context;
using config::in_quotes;
using config::Section;

void read_options(Section& s, KinesisSinkOptions& o) {
  Context& ctx = s.context();
  o.name = s.text("name", "kinesis", "Name of this sink: its cursor in the buffer and its status label.");
  o.stream = s.text("stream", "", "Kinesis data stream name (required).");
  o.region = s.text("region", "us-east-1", "AWS region of the stream.");
  o.endpoint = s.text("endpoint", "",
                      "Endpoint override, http(s)://host[:port] (VPC endpoints, test peers). Empty: "
                      "https://kinesis.<region>.amazonaws.com.");
  o.data = s.choice("data", "envelope", {"envelope", "raw"},
                    "envelope: each Kinesis record holds the JSON envelope (gateway id, sequence, metadata, payload). "
                    "raw: the sensor's bytes only.") == "raw"
               ? KinesisData::kRaw
               : KinesisData::kEnvelope;
  o.aggregate = s.boolean("aggregate", false,
                          "Pack each device's readings of a batch into KPL aggregated records (fewer, fuller Kinesis "
                          "records; consumers de-aggregate with the KCL or the KPL deaggregation libraries).");
  o.connections = static_cast<std::size_t>(s.integer(
      "connections", 4, 1, static_cast<std::int64_t>(KinesisSink::kMaxConnections),
      "PutRecords calls in flight at once while a backlog drains, each on its own connection. A device's readings "
      "of a batch all take one of them, in order; more overlap more round trips (draining over a slow uplink)."));
  o.timeout = s.duration("timeout", std::chrono::seconds(10), "Time allowed for one PutRecords call.");
  o.ca_file = s.text("ca_file", "", "CA certificates for the endpoint. Empty: the system's trust store.");
  const auto key_id = s.text("access_key_id", "", "AWS access key id. Empty: AWS_ACCESS_KEY_ID from the environment.");
  const auto secret = s.text("secret_access_key", "",
                             "AWS secret access key. Empty: AWS_SECRET_ACCESS_KEY from the "
                             "environment (preferred: never logged).");
  const auto token = s.text("session_token", "", "Session token of temporary credentials. Empty: AWS_SESSION_TOKEN.");
  const auto source = s.choice(
      "credentials", "keys", {"keys", "instance", "web-identity"},
      "Where the credentials come from. keys: access_key_id and secret_access_key (or AWS_ACCESS_KEY_ID and "
      "AWS_SECRET_ACCESS_KEY). instance: the EC2 instance's IAM role, from the instance metadata service (IMDSv2). "
      "web-identity: a role assumed with an identity token file (AssumeRoleWithWebIdentity, as on EKS). Temporary "
      "credentials are renewed before they expire.");
  auto& from = o.credential_source;
  const auto metadata = s.text("metadata_endpoint", "",
                               "credentials = \"instance\": the instance metadata service. Empty: "
                               "AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254.");
  const auto role = s.text("role_arn", "", "credentials = \"web-identity\": the role to assume. Empty: AWS_ROLE_ARN.");
  const auto token_file = s.text("web_identity_token_file", "",
                                 "credentials = \"web-identity\": the file holding the identity token (re-read at "
                                 "each renewal). Empty: AWS_WEB_IDENTITY_TOKEN_FILE.");
  const auto sts = s.text("sts_endpoint", "",
                          "credentials = \"web-identity\": the STS endpoint. Empty: https://sts.<region>.amazonaws.com.");
  if (!ctx.docs) {
    o.credentials.access_key_id = !key_id.empty() ? key_id : ctx.env("AWS_ACCESS_KEY_ID").value_or("");
    o.credentials.secret_access_key = !secret.empty() ? secret : ctx.env("AWS_SECRET_ACCESS_KEY").value_or("");
    o.credentials.session_token = !token.empty() ? token : ctx.env("AWS_SESSION_TOKEN").value_or("");
    if (o.stream.empty()) ctx.error(s.key_path("stream"), "a stream name is required");
    from.source = source == "instance"       ? aws::CredentialSource::kInstance
                  : source == "web-identity" ? aws::CredentialSource::kWebIdentity
                                             : aws::CredentialSource::kKeys;
    from.metadata_endpoint = !metadata.empty() ? metadata
                                               : ctx.env("AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or(
                                                     "http://169.254.169.254");
    from.role_arn = !role.empty() ? role : ctx.env("AWS_ROLE_ARN").value_or("");
    from.token_file = !token_file.empty() ? token_file : ctx.env("AWS_WEB_IDENTITY_TOKEN_FILE").value_or("");
    from.sts_endpoint = !sts.empty() ? sts : "https://sts." + o.region + ".amazonaws.com";
    from.ca_file = o.ca_file;
    if (from.source == aws::CredentialSource::kKeys &&
        (o.credentials.access_key_id.empty() || o.credentials.secret_access_key.empty())) {
      ctx.error(s.key_path("access_key_id"),
                "no AWS credentials: set access_key_id and secret_access_key, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or credentials = \"instance\" "
                "or \"web-identity\"");
    }
    if (from.source == aws::CredentialSource::kWebIdentity) {
      if (from.role_arn.empty()) {
        ctx.error(s.key_path("role_arn"), "credentials = \"web-identity\" needs role_arn (or AWS_ROLE_ARN)");
      }
      if (from.token_file.empty()) {
        ctx.error(s.key_path("web_identity_token_file"),
                  "credentials = \"web-identity\" needs web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE)");
      }
    }
    for (const auto& [key, url] : {std::pair<const char*, std::string>{"metadata_endpoint", from.metadata_endpoint},
                                   {"sts_endpoint", from.sts_endpoint}}) {
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        ctx.error(s.key_path(key), "must start with http:// or https://");
      }
    }
    if (!o.endpoint.empty() && o.endpoint.rfind("http://", 0) != 0 && o.endpoint.rfind("https://", 0) != 0) {
      ctx.error(s.key_path("endpoint"), "must start with http:// or https://");
    }
    config::check_ca_file(ctx, s.key_path("ca_file"), o.ca_file);
  }
}

}  // namespace

}  // namespace tidegate::sinks

namespace tidegate::plugins {

// Named in gateway/src/plugin_list.inc.
SinkDescriptor kinesis_sink_plugin() {
  using sinks::KinesisSink;
  return sink_descriptor<KinesisSink, sinks::KinesisSinkOptions>(
      "kinesis",
      "Amazon Kinesis Data Streams ([[sinks.kinesis]]): PutRecords signed with Signature V4; the partition key is the "
      "device, so each device stays ordered within its shard. A batch of up to " +
          std::to_string(4 * KinesisSink::kMaxCallRecords) + " records goes as calls of at most " +
          std::to_string(KinesisSink::kMaxCallRecords) + ".",
      sinks::read_options);
}

}  // namespace tidegate::plugins
