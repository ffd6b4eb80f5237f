// Configuration files: what is accepted, and that every mistake names the
// file, the key and the reason.
#include "tidegate/drivers/modbus/modbus_source.h"
#include "tidegate/gateway/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "test_support.h"
#include "tidegate/config/env_file.h"
#include "tidegate/config/schema.h"
#include "tidegate/drivers/mqtt/mqtt_source.h"
#include "tidegate/drivers/sim/sim_source.h"
#include "tidegate/sinks/file_sink.h"
#include "tidegate/sinks/http_sink.h"
#include "tidegate/sinks/kinesis_sink.h"
#include "tidegate/sinks/mqtt_sink.h"

namespace tidegate::gateway {
namespace {

// The options of every table of one kind, in file order (copies).
template <typename Options>
std::vector<Options> sources_of(const GatewayConfig& c, const std::string& kind) {
  std::vector<Options> out;
  for (const auto& p : c.sources) {
    if (p.kind == kind) out.push_back(p.options_as<Options>());
  }
  return out;
}
template <typename Options>
struct SinkOf {
  Options sink;
  forward::ForwarderOptions forwarder;
};
template <typename Options>
std::vector<SinkOf<Options>> sinks_of(const GatewayConfig& c, const std::string& kind) {
  std::vector<SinkOf<Options>> out;
  for (const auto& p : c.sinks) {
    if (p.kind == kind) out.push_back({p.options_as<Options>(), p.forwarder});
  }
  return out;
}
auto mqtt_sources(const GatewayConfig& c) { return sources_of<drivers::mqtt::MqttSourceOptions>(c, "mqtt"); }
auto sim_sources(const GatewayConfig& c) { return sources_of<drivers::sim::SimOptions>(c, "sim"); }
auto file_sinks(const GatewayConfig& c) { return sinks_of<sinks::FileSinkOptions>(c, "file"); }
auto mqtt_sinks(const GatewayConfig& c) { return sinks_of<sinks::MqttSinkOptions>(c, "mqtt"); }
auto kinesis_sinks(const GatewayConfig& c) { return sinks_of<sinks::KinesisSinkOptions>(c, "kinesis"); }
auto http_sinks(const GatewayConfig& c) { return sinks_of<sinks::HttpSinkOptions>(c, "http"); }

class ConfigTest : public ::testing::Test {
 protected:
  LoadResult parse(const std::string& text) { return parse_config(text, "test.toml", env()); }
  EnvLookup env() {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  }
  std::string errors_of(const std::string& text) {
    std::string out;
    for (const auto& e : parse(text).errors) out += e.text() + "\n";
    return out;
  }
  std::string buffer_section() { return "[buffer]\npath = \"" + (dir_ / "b.db").string() + "\"\n"; }

  testing::TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, AFullFileParsesIntoTheOptions) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIDFROMENV";
  env_["AWS_SECRET_ACCESS_KEY"] = "secret";
  env_["TIDEGATE_SINK_COLLECTOR_TOKEN"] = "tok-from-env";
  auto text = buffer_section() + R"(
max_bytes = "32MiB"
max_records = 100000
full_policy = "reject-new"
durability = "power-safe"
commit_window = "25ms"
commit_max_bytes = "8KiB"
maintenance_interval = "30s"
page_size = 4096
retention = "2h"
retention_bytes = 1048576
disk_reserve = "128MiB"
integrity_check = "full"

[gateway]
id = "plant-3"
log_level = "debug"

[[sources.mqtt]]
name = "floor-1"
url = "mqtt://10.0.0.5:1884"
protocol = "3.1.1"
topics = ["sensors/#", {filter = "meters/+/kwh", qos = 1}]
qos = 0
key_from_topic = "sensors/{device}/#"
session_expiry = "1d"
username = "gw"
password = "from-file"

[[sources.sim]]
name = "sim"
devices = 3
rate = 0.5
kinds = ["co2"]

[[sinks.file]]
name = "archive"
directory = "DIR/out"
format = "protobuf"
max_file_size = "8MiB"
max_file_age = "15m"
max_files = 10
linger = "50ms"
max_bandwidth = "16KiB"

[[sinks.kinesis]]
name = "stream"
stream = "plant-readings"
region = "eu-central-1"
data = "raw"

[[sinks.http]]
name = "collector"
url = "https://collector.example.com/v1/ingest"
format = "jsonl"
gzip = false

[[sinks.mqtt]]
name = "iot-core"
url = "mqtts://iot.example.com:8883"
topic = "dt/{gateway}/{key}"
payload = "raw"
start = "latest"
retry_max = "5m"
)";
  text.replace(text.find("DIR/out"), 7, (dir_ / "out").string());
  auto r = parse(text);
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].text());
  const auto& c = *r.config;
  EXPECT_EQ(c.gateway_id, "plant-3");
  EXPECT_EQ(c.log_level, buffer::LogLevel::kDebug);
  EXPECT_EQ(c.buffer.max_bytes, 32u << 20);
  EXPECT_EQ(c.buffer.max_records, 100000u);
  EXPECT_EQ(c.buffer.full_policy, buffer::FullPolicy::kRejectNew);
  EXPECT_EQ(c.buffer.durability, buffer::Durability::kPowerSafe);
  EXPECT_EQ(c.buffer.commit_window, std::chrono::milliseconds(25));
  EXPECT_EQ(c.buffer.commit_max_bytes, 8u << 10);
  EXPECT_EQ(c.buffer.maintenance_interval, std::chrono::seconds(30));
  EXPECT_EQ(c.buffer.page_size, 4096u);
  EXPECT_EQ(c.buffer.retention_time, std::chrono::hours(2));
  EXPECT_EQ(c.buffer.retention_bytes, 1048576u);
  EXPECT_EQ(c.buffer.disk_reserve_bytes, 128u << 20);
  EXPECT_EQ(c.buffer.integrity_check, buffer::IntegrityCheck::kFull);
  ASSERT_EQ(mqtt_sources(c).size(), 1u);
  const auto m = mqtt_sources(c)[0];
  EXPECT_EQ(m.name, "floor-1");
  EXPECT_EQ(m.host, "10.0.0.5");
  EXPECT_EQ(m.port, 1884);
  EXPECT_EQ(m.version, drivers::mqtt::Version::kV311);
  ASSERT_EQ(m.subscriptions.size(), 2u);
  EXPECT_EQ(m.subscriptions[0].filter, "sensors/#");
  EXPECT_EQ(m.subscriptions[0].qos, 0);  // the source's qos
  EXPECT_EQ(m.subscriptions[1].filter, "meters/+/kwh");
  EXPECT_EQ(m.subscriptions[1].qos, 1);  // its own
  EXPECT_EQ(m.session_expiry_s, 86400u);
  EXPECT_EQ(m.password, "from-file");
  ASSERT_EQ(sim_sources(c).size(), 1u);
  EXPECT_EQ(sim_sources(c)[0].devices, 3u);
  EXPECT_EQ(sim_sources(c)[0].kinds, std::vector<std::string>{"co2"});
  ASSERT_EQ(file_sinks(c).size(), 1u);
  const auto f = file_sinks(c)[0];
  EXPECT_EQ(f.sink.name, "archive");
  EXPECT_EQ(f.sink.format, sinks::FileFormat::kProtobuf);
  EXPECT_EQ(f.sink.max_file_bytes, 8u << 20);
  EXPECT_EQ(f.sink.max_file_age, std::chrono::minutes(15));
  EXPECT_EQ(f.sink.max_files, 10u);
  EXPECT_EQ(c.gateway_id, "plant-3");  // given to every sink when it is made
  EXPECT_EQ(f.forwarder.linger, std::chrono::milliseconds(50));
  EXPECT_EQ(f.forwarder.max_bytes_per_s, 16u << 10);
  ASSERT_EQ(kinesis_sinks(c).size(), 1u);
  EXPECT_EQ(kinesis_sinks(c)[0].sink.stream, "plant-readings");
  EXPECT_EQ(kinesis_sinks(c)[0].sink.region, "eu-central-1");
  EXPECT_EQ(kinesis_sinks(c)[0].sink.credentials.access_key_id, "AKIDFROMENV");  // from AWS_ACCESS_KEY_ID
  EXPECT_EQ(kinesis_sinks(c)[0].sink.data, sinks::KinesisData::kRaw);
  ASSERT_EQ(http_sinks(c).size(), 1u);
  EXPECT_EQ(http_sinks(c)[0].sink.url, "https://collector.example.com/v1/ingest");
  EXPECT_EQ(http_sinks(c)[0].sink.format, sinks::HttpFormat::kJsonLines);
  EXPECT_FALSE(http_sinks(c)[0].sink.gzip);
  EXPECT_EQ(http_sinks(c)[0].sink.bearer_token, "tok-from-env");  // TIDEGATE_SINK_COLLECTOR_TOKEN
  ASSERT_EQ(mqtt_sinks(c).size(), 1u);
  const auto up = mqtt_sinks(c)[0];
  EXPECT_EQ(up.sink.host, "iot.example.com");
  // linger unset: per kind. One PUBLISH per record gains nothing by waiting;
  // requests upstream (Kinesis, HTTP) do.
  EXPECT_EQ(up.forwarder.linger, std::chrono::milliseconds(0));
  EXPECT_EQ(kinesis_sinks(c)[0].forwarder.linger, std::chrono::milliseconds(20));
  EXPECT_EQ(http_sinks(c)[0].forwarder.linger, std::chrono::milliseconds(20));
  EXPECT_EQ(up.sink.port, 8883);
  EXPECT_TRUE(up.sink.tls);
  EXPECT_EQ(up.sink.topic_template, "dt/{gateway}/{key}");
  EXPECT_EQ(up.sink.payload, sinks::MqttPayload::kRaw);
  EXPECT_EQ(up.forwarder.start, buffer::StartPosition::kLatest);
  EXPECT_EQ(up.forwarder.retry_max, std::chrono::minutes(5));
}

// Sizes and durations: what fits, and what would overflow later (found by
// fuzz/operator_text_fuzz) is refused instead.
TEST(ConfigValues, SizesAndDurationsParseAndRefuseWhatDoesNotFit) {
  EXPECT_EQ(config::parse_size("64MiB"), 64u << 20);
  EXPECT_EQ(config::parse_size("2 GB"), 2'000'000'000u);
  EXPECT_EQ(config::parse_size("99999999999999999999GiB"), std::nullopt);
  EXPECT_EQ(config::parse_duration_ms("250ms"), 250);
  EXPECT_EQ(config::parse_duration_ms("7d"), 7 * 86'400'000);
  EXPECT_EQ(config::parse_duration_ms("100000d"), 100000LL * 86'400'000);
  EXPECT_EQ(config::parse_duration_ms("2006742056742050006m"), std::nullopt);
  EXPECT_EQ(config::parse_duration_ms("200000d"), std::nullopt);  // past what nanoseconds hold
  EXPECT_EQ(config::parse_duration_ms("5 s"), std::nullopt);
  EXPECT_EQ(config::parse_duration_ms("-1s"), std::nullopt);
}

TEST_F(ConfigTest, DefaultsApplyToAnEmptyFile) {
  auto r = parse(buffer_section());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->buffer.max_bytes, 256u << 20);
  EXPECT_EQ(r.config->buffer.durability, buffer::Durability::kCrashSafe);
  EXPECT_FALSE(r.config->gateway_id.empty());  // the host name
  EXPECT_TRUE(mqtt_sources(*r.config).empty());
}

TEST_F(ConfigTest, SecretsComeFromTheEnvironment) {
  env_["TIDEGATE_MQTT_FLOOR_1_PASSWORD"] = "from-env";
  auto r = parse(buffer_section() + "[[sources.mqtt]]\nname = \"floor-1\"\npassword = \"from-file\"\n");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(mqtt_sources(*r.config)[0].password, "from-env");
  EXPECT_FALSE(mqtt_sources(*r.config)[0].username.has_value());
}

// An instance role or a web identity needs no keys; their settings come from
// the variables the AWS SDKs read when the file leaves them out.
TEST_F(ConfigTest, TemporaryCredentialSourcesNeedNoKeysAndReadTheSdkVariables) {
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1338";
  env_["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/r";
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = "/var/run/secrets/token";
  auto r = parse(buffer_section() +
                 "[[sinks.kinesis]]\nname = \"a\"\nstream = \"s\"\ncredentials = \"instance\"\n"
                 "[[sinks.kinesis]]\nname = \"b\"\nstream = \"s\"\nregion = \"eu-west-1\"\n"
                 "credentials = \"web-identity\"\n");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].text());
  const auto a = kinesis_sinks(*r.config)[0].sink.credential_source;
  EXPECT_EQ(a.source, sinks::aws::CredentialSource::kInstance);
  EXPECT_EQ(a.metadata_endpoint, "http://127.0.0.1:1338");
  const auto b = kinesis_sinks(*r.config)[1].sink.credential_source;
  EXPECT_EQ(b.source, sinks::aws::CredentialSource::kWebIdentity);
  EXPECT_EQ(b.role_arn, "arn:aws:iam::1:role/r");
  EXPECT_EQ(b.token_file, "/var/run/secrets/token");
  EXPECT_EQ(b.sts_endpoint, "https://sts.eu-west-1.amazonaws.com");
}

TEST_F(ConfigTest, EveryMistakeNamesFileKeyAndReason) {
  struct Case {
    std::string toml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"[buffer]\ncolour = 1\n", "test.toml: buffer.colour: unknown key"},
      {"[bufer]\n", "test.toml: bufer: unknown key"},
      {"[buffer]\nmax_records = \"many\"\n", "test.toml: buffer.max_records: expected an integer"},
      {"[buffer]\nmax_bytes = \"12 parsecs\"\n", "test.toml: buffer.max_bytes: expected a size"},
      {"[buffer]\ncommit_window = 10\n", "test.toml: buffer.commit_window: expected a duration"},
      {"[buffer]\npage_size = 1000\n", "test.toml: buffer.page_size: expected a power of two from 512 to 65536, not 1000"},
      {"[buffer]\nfull_policy = \"drop-newest\"\n",
       "test.toml: buffer.full_policy: unknown value \"drop-newest\" (allowed: \"drop-oldest\", \"reject-new\")"},
      {"[buffer]\ncommit_max_records = 0\n",
       "test.toml: buffer.commit_max_records: out of range: 0 (allowed 1 to 1000000)"},
      {"[buffer]\npath = \"/proc/1/nope/b.db\"\n", "test.toml: buffer.path: "},
      {"[[sources.mqtt]]\nurl = \"mqtts://broker:8883\"\n[sources.mqtt.tls]\nca_file = \"/nonexistent/ca.pem\"\n",
       "test.toml: sources.mqtt[0].tls.ca_file: CA file \"/nonexistent/ca.pem\" is not readable"},
      {"[[sources.mqtt]]\nurl = \"http://broker\"\n", "test.toml: sources.mqtt[0].url: not a broker address"},
      {"[[sources.mqtt]]\nqos = 2\n", "test.toml: sources.mqtt[0].qos: out of range: 2 (allowed 0 to 1)"},
      {"[[sources.mqtt]]\nkey_from_topic = \"sensors/#/x\"\n",
       "test.toml: sources.mqtt[0].key_from_topic: '#' must be the last level"},
      {"[[sources.mqtt]]\ntopics = []\n", "test.toml: sources.mqtt[0].topics: at least one topic filter is needed"},
      {"[[sources.mqtt]]\ntopics = [{filter = \"a\", qos = 2}]\n", "test.toml: sources.mqtt[0].topics[0].qos: expected 0 or 1"},
      {"[[sources.mqtt]]\ntopics = [{filter = \"a\", qso = 1}]\n", "test.toml: sources.mqtt[0].topics[0].qso: unknown key"},
      {"[[sources.mqtt]]\ntopics = [\"a/#/b\"]\n", "test.toml: sources.mqtt[0].topics[0]: '#' must be the last"},
      {"[[sources.mqtt]]\ntopics = [7]\n", "test.toml: sources.mqtt[0].topics[0]: expected a topic filter string"},
      {"[[sources.mqtt]]\nname = \"a\"\n[[sources.sim]]\nname = \"a\"\n",
       "test.toml: sources.sim[0].name: duplicate source name \"a\""},
      {"[[sources.sim]]\nkinds = [\"radiation\"]\n", "test.toml: sources.sim[0].kinds: unknown kind \"radiation\""},
      {"[[sources.mqtt_listener]]\nlisten = \"localhost:1883\"\n",
       "test.toml: sources.mqtt_listener[0].listen: expected ADDRESS:PORT with a literal address"},
      {"[[sources.mqtt_listener]]\nlisten = \"127.0.0.1:1884\"\n[[sources.mqtt_listener]]\nname = \"b\"\n"
       "listen = \"127.0.0.1:1884\"\n",
       "test.toml: sources.mqtt_listener[1].listen: two listeners on the same address and port"},
      {"[[sources.mqtt_listener]]\npassword_file = \"/nonexistent/passwd\"\n",
       "test.toml: sources.mqtt_listener[0].password_file: /nonexistent/passwd: cannot be read"},
      {"[[sources.mqtt_listener]]\n[sources.mqtt_listener.tls]\nrequire_client_certificate = true\n",
       "test.toml: sources.mqtt_listener[0].tls.ca_file: client certificates need the CA that signs them"},
      {"[[sources.mqtt_listener]]\nkey_fallback = \"mac\"\n",
       "test.toml: sources.mqtt_listener[0].key_fallback: unknown value \"mac\""},
      {"[[sinks.mqtt]]\nname = \"a\"\nurl = \"mqtt://x\"\n[[sinks.mqtt]]\nname = \"a\"\nurl = \"mqtt://y\"\n",
       "test.toml: sinks.mqtt[1].name: duplicate sink name \"a\""},
      {"[[sinks.mqtt]]\nurl = \"mqtt://x\"\npayload = \"xml\"\n", "test.toml: sinks.mqtt[0].payload: unknown value"},
      {"[[sinks.file]]\ndirectory = \"/proc/1/nope\"\nformat = \"csv\"\n", "test.toml: sinks.file[0].format: unknown value"},
      {"[[sinks.kinesis]]\nstream = \"s\"\n", "test.toml: sinks.kinesis[0].access_key_id: no AWS credentials"},
      {"[[sinks.kinesis]]\nstream = \"s\"\ncredentials = \"web-identity\"\nweb_identity_token_file = \"/t\"\n",
       "test.toml: sinks.kinesis[0].role_arn: credentials = \"web-identity\" needs role_arn"},
      {"[[sinks.kinesis]]\nstream = \"s\"\ncredentials = \"instance\"\nmetadata_endpoint = \"169.254.169.254\"\n",
       "test.toml: sinks.kinesis[0].metadata_endpoint: must start with http:// or https://"},
      {"[[sinks.kinesis]]\nstream = \"s\"\ncredentials = \"sso\"\n", "test.toml: sinks.kinesis[0].credentials: unknown value"},
      {"[[sinks.http]]\nurl = \"ftp://x\"\n", "test.toml: sinks.http[0].url: expected http(s)://"},
      {"[[sinks.mqtt]]\nurl = \"mqtts://x\"\n[sinks.mqtt.tls]\ncert_file = \"/proc/self/status\"\n",
       "test.toml: sinks.mqtt[0].tls.key_file: cert_file is set but key_file is not"},
      {"[[sinks.kinesis]]\naccess_key_id = \"a\"\nsecret_access_key = \"b\"\n",
       "test.toml: sinks.kinesis[0].stream: a stream name is required"},
      {"[[processors.window]]\nname = \"w\"\nfields = [\"v\"]\n[[sinks.mqtt]]\nurl = \"mqtt://x\"\nprocessors = [\"w\"]\n",
       "test.toml: sinks.mqtt[0].processors[0]: \"w\" is a window processor, which makes records of its own: select "
       "them with route.sources = [\"w\"]"},
      {"[[processors.window]]\nname = \"w\"\n", "test.toml: processors.window[0].fields: required"},
      {"[[processors.window]]\nname = \"w\"\nfields = [\"v\"]\nsize = \"1m\"\nhop = \"7s\"\n",
       "test.toml: processors.window[0].hop: size must be a multiple of hop"},
      {"[[processors.window]]\nname = \"w\"\nfields = [\"v\"]\naggregates = [\"median\"]\n",
       "test.toml: processors.window[0].aggregates[0]: unknown aggregate \"median\""},
      {"[[sources.sim]]\nname = \"rooms\"\n[[processors.deadband]]\nname = \"rooms\"\nfields = [\"t\"]\n",
       "test.toml: processors.deadband[0].name: a source is named \"rooms\" too"},
      {"[[sources.modbus]]\n[[sources.modbus.devices]]\nname = \"m1\"\nurl = \"tcp://10.0.0.5:502\"\nmap = \"em24\"\n",
       "test.toml: sources.modbus[0].devices[0].map: no map named \"em24\""},
      {"[[sources.modbus]]\n[[sources.modbus.maps]]\nname = \"m\"\n[[sources.modbus.maps.points]]\nname = \"p\"\n"
       "register = 50001\n",
       "test.toml: sources.modbus[0].maps[0].points[0].register: 50001 is not a register number"},
      {"[[sources.modbus]]\n[[sources.modbus.maps]]\nname = \"m\"\n[[sources.modbus.maps.points]]\nname = \"p\"\n"
       "register = 30001\naddress = 0\n",
       "test.toml: sources.modbus[0].maps[0].points[0].register: give `register` (data sheet number) or `table` and "
       "`address`, not both"},
      {"[[sources.modbus]]\n[[sources.modbus.maps]]\nname = \"m\"\n[[sources.modbus.maps.points]]\nname = \"p\"\n"
       "register = 10001\ntype = \"f32\"\n",
       "test.toml: sources.modbus[0].maps[0].points[0].type: coils and discrete inputs are bits"},
      {"[[sources.modbus]]\n[[sources.modbus.devices]]\nname = \"m1\"\nurl = \"tcp://meter.local:502\"\n",
       "test.toml: sources.modbus[0].devices[0].url: expected tcp://ADDRESS[:PORT]"},
      {"[gateway\n", "test.toml: line 1"},
  };
  for (const auto& c : cases) {
    // The buffer path default (/var/lib/tidegate) may not be writable here.
    std::string toml = c.toml;
    if (toml.find("[buffer]") == std::string::npos && toml.find("[gateway\n") == std::string::npos) {
      toml = buffer_section() + toml;
    } else if (toml.find("path =") == std::string::npos && toml.find("[buffer]") != std::string::npos) {
      toml.insert(toml.find("[buffer]\n") + 9, "path = \"" + (dir_ / "b.db").string() + "\"\n");
    }
    const std::string errors = errors_of(toml);
    EXPECT_NE(errors.find(c.expected), std::string::npos) << "for:\n" << toml << "got:\n" << errors;
    EXPECT_FALSE(parse(toml).config.has_value());
  }
}

// A register map given once serves many devices; data sheet numbers and
// protocol addresses name the same registers.
TEST_F(ConfigTest, ModbusMapsAndDevices) {
  const auto r = parse(buffer_section() +
                       "[[sources.modbus]]\nname = \"plant\"\nmax_gap = 4\ninterval = \"2s\"\n"
                       "[[sources.modbus.maps]]\nname = \"em24\"\n"
                       "[[sources.modbus.maps.points]]\nname = \"power_kw\"\nregister = 30041\ntype = \"f32\"\n"
                       "order = \"CDAB\"\nscale = 0.001\nunit = \"kW\"\n"
                       "[[sources.modbus.maps.points]]\nname = \"alarm\"\ntable = \"coil\"\naddress = 3\ntype = \"bool\"\n"
                       "[[sources.modbus.devices]]\nname = \"m1\"\nurl = \"tcp://10.0.0.5\"\nunit_id = 2\nmap = \"em24\"\n"
                       "[[sources.modbus.devices]]\nname = \"m2\"\nurl = \"tcp://10.0.0.5:1502\"\nmap = \"em24\"\n"
                       "interval = \"500ms\"\n");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].text());
  const auto& o = r.config->sources.at(0).options_as<drivers::modbus::ModbusOptions>();
  ASSERT_EQ(o.maps.size(), 1u);
  const auto& p = o.maps[0].points[0];
  EXPECT_EQ(p.table, drivers::modbus::Table::kInputRegister);
  EXPECT_EQ(p.address, 40);
  EXPECT_EQ(p.order, drivers::modbus::ByteOrder::kCDAB);
  EXPECT_EQ(o.maps[0].points[1].table, drivers::modbus::Table::kCoil);
  ASSERT_EQ(o.devices.size(), 2u);
  EXPECT_EQ(o.devices[0].link.port, 502);
  EXPECT_EQ(o.devices[0].unit_id, 2);
  EXPECT_EQ(o.devices[0].interval, std::chrono::seconds(2));
  EXPECT_EQ(o.devices[1].link.port, 1502);
  EXPECT_EQ(o.devices[1].interval, std::chrono::milliseconds(500));
}

// Window and deadband processors run as sources of their own, after the
// configured ones; their whole table is their definition.
TEST_F(ConfigTest, StatefulProcessorsBecomeDerivedStreams) {
  const auto r = parse(buffer_section() +
                       "[[sources.sim]]\nname = \"meters\"\n"
                       "[[processors.window]]\nname = \"power_1m\"\nfields = [\"kw\"]\nsize = \"1m\"\nhop = \"15s\"\n"
                       "route = { sources = [\"meters\"] }\n"
                       "[[processors.deadband]]\nname = \"changes\"\nfields = [\"t\"]\nband = 0.5\n"
                       "[[sinks.mqtt]]\nurl = \"mqtt://x\"\nroute = { sources = [\"power_1m\", \"changes\"] }\n");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].text());
  ASSERT_EQ(r.config->sources.size(), 3u);
  EXPECT_EQ(r.config->sources[1].name, "power_1m");
  EXPECT_EQ(r.config->sources[1].kind, "window");
  EXPECT_NE(r.config->sources[1].written.find("hop"), std::string::npos);
  EXPECT_EQ(r.config->sources[2].kind, "deadband");
  EXPECT_TRUE(r.config->sources[2].create);
}

// What a reload compares to name the settings that need a restart.
TEST_F(ConfigTest, RestartSectionsIgnoreLayoutButNotValues) {
  const std::string sink = "\n[[sinks.file]]\nname = \"local\"\ndirectory = \"" + (dir_ / "out").string() + "\"\n";
  const auto a = parse(buffer_section() + "max_records = 10\ncommit_window = \"5ms\"\n" + sink);
  const auto b = parse("# the same, laid out differently\n" + buffer_section() +
                       "commit_window   =   \"5ms\"\nmax_records = 10 # a comment\n" + sink);
  const auto c = parse(buffer_section() + "max_records = 11\ncommit_window = \"5ms\"\n" + sink);
  ASSERT_TRUE(a.config && b.config && c.config);
  EXPECT_EQ(a.section_text, b.section_text);
  EXPECT_NE(a.section_text.at("buffer"), c.section_text.at("buffer"));
  EXPECT_EQ(a.section_text.at("sinks"), c.section_text.at("sinks"));
  EXPECT_EQ(a.section_text.count("sources"), 0u);  // not in the file
}

// A size the code holds in std::size_t is refused on a 32-bit platform
// (armhf) when it does not fit, with the key named, never truncated.
TEST_F(ConfigTest, SizesAbove4GiBFitOnlyA64BitPlatform) {
  const auto text = buffer_section() + R"(
[[sources.mqtt]]
max_payload = "5GiB"
[[sinks.http]]
url = "http://127.0.0.1:9/"
max_request_size = 6442450944
)";
  if constexpr (sizeof(std::size_t) >= 8) {
    const auto r = parse(text);
    ASSERT_TRUE(r.config) << errors_of(text);
    EXPECT_EQ(mqtt_sources(*r.config)[0].mapping.max_payload_bytes, 5ull << 30);
    EXPECT_EQ(http_sinks(*r.config)[0].sink.max_batch_bytes, 6ull << 30);
  } else {
    const auto errors = errors_of(text);
    EXPECT_NE(errors.find("test.toml: sources.mqtt[0].max_payload: 5GiB (5368709120 bytes) does not fit this 32-bit "
                          "platform"),
              std::string::npos)
        << errors;
    EXPECT_NE(errors.find("test.toml: sinks.http[0].max_request_size: 6GiB"), std::string::npos) << errors;
  }
  // The 64-bit sizes (the buffer's caps) take more than 4 GiB everywhere.
  const auto caps = parse(buffer_section() + "max_bytes = \"6GiB\"\n");
  ASSERT_TRUE(caps.config);
  EXPECT_EQ(caps.config->buffer.max_bytes, 6ull << 30);
  // A size whose unit would wrap 64 bits is an error, not a small number.
  EXPECT_NE(errors_of(buffer_section() + "max_bytes = \"20000000000GiB\"\n").find("buffer.max_bytes: expected a size"),
            std::string::npos);
}

TEST_F(ConfigTest, AMissingFileIsAnError) {
  auto r = load_config(dir_ / "missing.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].text().find("missing.toml: cannot read the file"), std::string::npos);
}

TEST_F(ConfigTest, ShippedConfigurationsAreValid) {
  for (const char* file : {"packaging/tidegate.toml", "examples/demo.toml"}) {
    auto text = [&] {
      std::ifstream in(std::string(TIDEGATE_SOURCE_DIR) + "/" + file);
      std::stringstream s;
      s << in.rdbuf();
      return s.str();
    }();
    ASSERT_FALSE(text.empty()) << file;
    // Point the buffer somewhere writable (and fill in the demo's
    // placeholders as scripts/run does); everything else as shipped.
    for (const std::string from : {"/var/lib/tidegate/buffer.db", "@STATE@/buffer.db"}) {
      testing::replace_all(text, from, (dir_ / "b.db").string());
    }
    testing::replace_all(text, "@STATE@", dir_.path().string());
    testing::replace_all(text, "@PORT@", "1883");
    testing::replace_all(text, "@STATUS_PORT@", "8080");
    auto r = parse(text);
    EXPECT_TRUE(r.config) << file << ": " << (r.errors.empty() ? "" : r.errors[0].text());
  }
}

TEST_F(ConfigTest, StatusAndHeartbeatSettings) {
  auto r = parse(buffer_section() +
                 "[status]\nlisten = \"[::1]:9090\"\ntoken = \"abc\"\nlag_warning = \"1m\"\n"
                 "failing_red_after = \"30s\"\nmax_connections = 5\n[heartbeat]\ninterval = \"0s\"\n");
  ASSERT_TRUE(r.config) << r.errors[0].text();
  EXPECT_EQ(r.config->status.http.address, "::1");
  EXPECT_EQ(r.config->status.http.port, 9090);
  EXPECT_EQ(r.config->status.token, "abc");
  EXPECT_EQ(r.config->status.http.max_connections, 5u);
  EXPECT_EQ(r.config->status.thresholds.lag_amber_s, 60);
  EXPECT_EQ(r.config->status.thresholds.failing_red_after_s, 30);
  EXPECT_EQ(r.config->heartbeat.interval.count(), 0);

  auto defaults = parse(buffer_section());
  ASSERT_TRUE(defaults.config);
  EXPECT_TRUE(defaults.config->status.enabled);
  EXPECT_EQ(defaults.config->status.http.address, "0.0.0.0");
  EXPECT_EQ(defaults.config->status.http.port, 8080);
  EXPECT_TRUE(defaults.config->status.token.empty());
  EXPECT_EQ(defaults.config->heartbeat.interval, std::chrono::seconds(60));

  for (const char* bad : {"localhost:8080", "0.0.0.0", "1.2.3.4:99999", "[::1]8080"}) {
    auto e = parse(buffer_section() + "[status]\nlisten = \"" + bad + "\"\n");
    ASSERT_FALSE(e.config) << bad;
    EXPECT_NE(e.errors[0].text().find("status.listen: expected ADDRESS:PORT"), std::string::npos) << e.errors[0].text();
  }
  auto half_tls = parse(buffer_section() + "[status]\ntls_cert = \"/etc/hostname\"\n");
  ASSERT_FALSE(half_tls.config);
  EXPECT_NE(half_tls.errors[0].text().find("tls_cert and tls_key go together"), std::string::npos);
}

TEST_F(ConfigTest, TheReferencePageIsGeneratedFromTheDeclarations) {
  std::ifstream in(std::string(TIDEGATE_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream committed;
  committed << in.rdbuf();
  EXPECT_EQ(committed.str(), config_reference_markdown())
      << "docs/configuration.md is stale: run build/gateway/tidegate config-reference > docs/configuration.md";
}

// /etc/default/tidegate is read as systemd's EnvironmentFile= reads it.
TEST(EnvFile, ReadsWhatSystemdReads) {
  const auto f = config::parse_env_file(
      "# comment\n; also a comment\n\n  AWS_ACCESS_KEY_ID = AKIA123  \nSECRET=\"a \\\"quoted\\\" value\"\n"
      "SINGLE='x y'\nEMPTY=\nLONG=one\\\ntwo\n",
      "env");
  EXPECT_TRUE(f.errors.empty()) << f.errors.front();
  EXPECT_EQ(f.vars.at("AWS_ACCESS_KEY_ID"), "AKIA123");
  EXPECT_EQ(f.vars.at("SECRET"), "a \"quoted\" value");
  EXPECT_EQ(f.vars.at("SINGLE"), "x y");
  EXPECT_EQ(f.vars.at("EMPTY"), "");
  EXPECT_EQ(f.vars.at("LONG"), "onetwo");
}

TEST(EnvFile, NamesTheLineOfEachMistakeAndKeepsTheRest) {
  const auto f = config::parse_env_file("A=1\nexport B=2\n3C=x\nD=\"open\nE=5\n", "env");
  ASSERT_EQ(f.errors.size(), 3u);
  EXPECT_EQ(f.errors[0], "env:2: 'export B' is not a variable name (letters, digits, _; 'export' is not allowed)");
  EXPECT_EQ(f.errors[1].rfind("env:3: '3C'", 0), 0u) << f.errors[1];
  EXPECT_EQ(f.errors[2], "env:4: the quoted value of D is not closed");
  EXPECT_EQ(f.vars.at("A"), "1");
  EXPECT_EQ(f.vars.at("E"), "5");
}

// The process environment wins over the file, as an operator's one-off
// override should.
TEST(EnvFile, TheProcessEnvironmentComesFirst) {
  ::setenv("TIDEGATE_TEST_ENV_ORDER", "from-process", 1);
  auto env = process_env_then({{"TIDEGATE_TEST_ENV_ORDER", "from-file"}, {"TIDEGATE_TEST_ONLY_FILE", "file"}});
  EXPECT_EQ(env("TIDEGATE_TEST_ENV_ORDER"), "from-process");
  EXPECT_EQ(env("TIDEGATE_TEST_ONLY_FILE"), "file");
  EXPECT_EQ(env("TIDEGATE_TEST_NEITHER"), std::nullopt);
  ::unsetenv("TIDEGATE_TEST_ENV_ORDER");
}

}  // namespace
}  // namespace tidegate::gateway
