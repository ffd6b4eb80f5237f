// The CLI as an operator uses it, against real buffer files.
#include "tidegate/gateway/cli.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "test_support.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/gateway/operations.h"
#include "record.pb.h"

namespace tidegate::gateway {
namespace {

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

// `answer`: what the operator types when asked.
CliResult run(std::vector<std::string> args, const std::string& answer = "") {
  args.insert(args.begin(), "tidegate");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  std::istringstream in(answer);
  int code = run_cli(static_cast<int>(argv.size()), argv.data(), out, err, in);
  return {code, out.str(), err.str()};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buffer::BufferOptions o;
    o.path = db_;
    o.log = [](buffer::LogLevel, std::string_view) {};
    auto b = buffer::Buffer::open(o);
    ASSERT_EQ(b->ensure_sink("cloud", buffer::StartPosition::kEarliest), buffer::Status::kOk);
    auto text = testing::make_record("{\"t\":\"21\xc2\xb0\"}", "dev-\"1\"");
    auto binary = testing::make_record(std::string("\x00\xff", 2));
    ASSERT_TRUE(b->append_wait({text, binary, testing::make_record("third")}).ok());
    ASSERT_EQ(b->ack("cloud", 1), buffer::Status::kOk);
  }
  testing::TempDir dir_;
  std::string db_ = (dir_ / "buffer.db").string();
};

TEST_F(CliTest, VersionAndHelp) {
  auto v = run({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("tidegate ", 0), 0u);
  auto h = run({"--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("buffer stats"), std::string::npos);
  EXPECT_EQ(run({}).code, 2);
}

TEST_F(CliTest, UsageErrorsSayWhatIsWrong) {
  auto r = run({"buffer", "stats", "--config", (dir_ / "none.toml").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("none.toml: cannot read the file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("give --db FILE, or a valid --config FILE"), std::string::npos) << r.err;
  r = run({"buffer", "stats", "--bogus"});
  EXPECT_NE(r.err.find("unknown option --bogus"), std::string::npos);
  r = run({"buffer", "dump", "--db", db_, "--from", "abc"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--from expects a sequence number"), std::string::npos);
  r = run({"frobnicate"});
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos);
  r = run({"buffer", "stats", "--db", (dir_ / "missing.db").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.db"), std::string::npos);
}

TEST_F(CliTest, StatsPrintsJsonWithSinkLag) {
  auto r = run({"buffer", "stats", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"records\":3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"name\":\"cloud\",\"acked_seq\":1,\"lag_records\":2"), std::string::npos) << r.out;
}

// With --config, stats show the limits the gateway runs with, not defaults.
TEST_F(CliTest, StatsWithAConfigurationReportTheConfiguredLimits) {
  const auto config = dir_ / "tidegate.toml";
  std::ofstream(config) << "[buffer]\npath = \"" << db_
                        << "\"\nmax_bytes = \"64MiB\"\nmax_records = 5000\nfull_policy = \"reject-new\"\n";
  auto r = run({"buffer", "stats", "--config", config.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"max_bytes\":67108864,\"max_records\":5000,\"full_policy\":\"reject-new\""),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"limits_from\":\"configuration " + config.string() + "\"}"), std::string::npos) << r.out;
  // Without a configuration the output says the limits are only defaults.
  r = run({"buffer", "stats", "--db", db_});
  EXPECT_NE(r.out.find("\"limits_from\":\"defaults: give --config"), std::string::npos) << r.out;
}

TEST_F(CliTest, DumpPrintsJsonLinesFromASequence) {
  auto r = run({"buffer", "dump", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> got;
  for (std::string line; std::getline(lines, line);) got.push_back(line);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NE(got[0].find("\"seq\":1"), std::string::npos);
  EXPECT_NE(got[0].find("\"partition_key\":\"dev-\\\"1\\\"\""), std::string::npos) << got[0];
  EXPECT_NE(got[0].find("\"payload\":\"{\\\"t\\\":\\\"21\xc2\xb0\\\"}\""), std::string::npos) << got[0];
  EXPECT_NE(got[1].find("\"payload_base64\":\"AP8=\""), std::string::npos) << got[1];
  r = run({"buffer", "dump", "--db", db_, "--from", "3"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  r = run({"buffer", "dump", "--db", db_, "--limit", "2"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
}

TEST_F(CliTest, VerifyReportsOkAndDamage) {
  auto r = run({"buffer", "verify", "--db", db_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: ok\n");
  {
    std::ofstream f(dir_ / "junk.db", std::ios::binary);
    f << std::string(8192, '\x42');
  }
  r = run({"buffer", "verify", "--db", (dir_ / "junk.db").string()});
  EXPECT_EQ(r.code, 1);
  // Read-only: the damaged file is reported, not moved aside.
  EXPECT_TRUE(std::filesystem::exists(dir_ / "junk.db"));
}

// A sink taken out of the configuration leaves its cursor; the operator
// sees it flagged in the list and forgets it, after a question.
TEST_F(CliTest, SinkListFlagsARetiredSinkAndForgetRemovesItsCursorAfterAYes) {
  const auto config = dir_ / "tidegate.toml";
  std::ofstream(config) << "[buffer]\npath = \"" << db_ << "\"\n[[sinks.file]]\nname = \"local\"\ndirectory = \""
                        << (dir_ / "out").string() << "\"\n";
  auto r = run({"sink", "list", "--config", config.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cloud                NO (retired?)   1         2 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sink 'local' is configured but has not run on this buffer yet"), std::string::npos) << r.out;

  r = run({"sink", "forget", "cloud", "--config", config.string()}, "n\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("sink 'cloud': 2 records"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("not confirmed: nothing changed"), std::string::npos) << r.err;
  r = run({"sink", "forget", "cloud", "--config", config.string()});  // no answer at all: no
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(run({"sink", "list", "--db", db_}).out.find("cloud"), std::string::npos);

  r = run({"sink", "forget", "cloud", "--config", config.string()}, "y\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("forgot sink 'cloud', on the buffer file (no gateway was running)"), std::string::npos)
      << r.out;
  EXPECT_NE(run({"sink", "list", "--db", db_}).out.find("no cursors"), std::string::npos);

  r = run({"sink", "forget", "cloud", "--db", db_, "--yes"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("has no cursor for sink 'cloud'"), std::string::npos) << r.err;
}

TEST_F(CliTest, AConfiguredSinkIsNotForgotten) {
  const auto config = dir_ / "tidegate.toml";
  std::ofstream(config) << "[buffer]\npath = \"" << db_ << "\"\n[[sinks.file]]\nname = \"cloud\"\ndirectory = \""
                        << (dir_ / "out").string() << "\"\n";
  auto r = run({"sink", "forget", "cloud", "--config", config.string(), "--yes"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("sink 'cloud' is configured"), std::string::npos) << r.err;
  EXPECT_NE(run({"sink", "list", "--db", db_}).out.find("cloud"), std::string::npos);
  EXPECT_EQ(run({"sink", "forget", "--db", db_}).code, 2);  // no name
  EXPECT_EQ(run({"sink", "rename", "--db", db_}).code, 2);
}

TEST_F(CliTest, AcknowledgeLossesRecordsWhatWasSeen) {
  {
    buffer::BufferOptions o;
    o.path = db_;
    o.max_records = 3;
    o.log = [](buffer::LogLevel, std::string_view) {};
    auto b = buffer::Buffer::open(o);
    // Evicts 1 (delivered to "cloud": expired) and 2 (not delivered: lost).
    ASSERT_TRUE(b->append_wait({testing::make_record("4"), testing::make_record("5")}).ok());
    ASSERT_EQ(b->stats().evicted_total, 1u);
  }
  auto r = run({"buffer", "acknowledge-losses", "--db", db_}, "yes\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("1 undelivered records were lost to the buffer's cap since the buffer was made"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("acknowledged 1 lost records, on the buffer file"), std::string::npos) << r.out;
  r = run({"buffer", "stats", "--db", db_});
  EXPECT_NE(r.out.find("\"evicted_total\":1,\"evicted_acknowledged\":1"), std::string::npos) << r.out;
  r = run({"buffer", "acknowledge-losses", "--db", db_});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("nothing to acknowledge"), std::string::npos) << r.out;
}

TEST_F(CliTest, RewindOnAStoppedGatewayMovesTheCursorBackAfterAYes) {
  auto r = run({"sink", "rewind", "cloud", "--db", db_, "--to-earliest"}, "y\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("sink 'cloud' has acknowledged up to sequence 1; it goes back to the oldest record"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("rewound sink 'cloud' to the oldest record, on the buffer file"), std::string::npos) << r.out;
  EXPECT_NE(run({"buffer", "stats", "--db", db_}).out.find("\"name\":\"cloud\",\"acked_seq\":0"),
            std::string::npos);
  r = run({"sink", "rewind", "cloud", "--db", db_, "--to-seq", "3", "--yes"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(run({"buffer", "stats", "--db", db_}).out.find("\"name\":\"cloud\",\"acked_seq\":2"),
            std::string::npos);
  EXPECT_EQ(run({"sink", "rewind", "cloud", "--db", db_}).code, 2);  // no target
  EXPECT_EQ(run({"sink", "rewind", "cloud", "--db", db_, "--to-seq", "3", "--to-earliest"}).code, 2);
  r = run({"sink", "rewind", "cloud", "--db", db_, "--to-time", "yesterday"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--to-time expects UTC"), std::string::npos) << r.err;
}

// Dead letters on a stopped gateway: listed with a preview, shown and
// exported whole, replayed into the buffer for the sink that refused them,
// cleared by id; every change asks first.
TEST_F(CliTest, DeadLettersAreListedShownExportedReplayedAndCleared) {
  {
    buffer::BufferOptions o;
    o.path = db_;
    o.log = [](buffer::LogLevel, std::string_view) {};
    auto b = buffer::Buffer::open(o);
    auto big = testing::make_record(std::string(500, 'p'));
    ASSERT_EQ(b->add_dead_letter("cloud", 2, big, "HTTP 400: bad field"), buffer::Status::kOk);
    ASSERT_EQ(b->add_dead_letter("", std::nullopt, testing::make_record(std::string("\x00\xff", 2)),
                                 "payload is not valid JSON"),
              buffer::Status::kOk);
  }
  auto r = run({"dead-letters", "list", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("HTTP 400: bad field"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sink 'cloud'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(at ingest)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("... (500 bytes)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("base64:AP8="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 dead letter(s)"), std::string::npos) << r.out;

  r = run({"dead-letters", "show", "1", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(std::string(500, 'p')), std::string::npos);
  EXPECT_EQ(run({"dead-letters", "show", "9", "--db", db_}).code, 1);
  EXPECT_EQ(run({"dead-letters", "show", "--db", db_}).code, 2);

  r = run({"dead-letters", "export", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
  EXPECT_NE(r.out.find("\"payload_base64\":\"AP8=\""), std::string::npos) << r.out;

  EXPECT_EQ(run({"dead-letters", "replay", "--db", db_}).code, 2);  // which?
  r = run({"dead-letters", "replay", "1", "--db", db_}, "n\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("1 refused by sink 'cloud'"), std::string::npos) << r.out;
  r = run({"dead-letters", "replay", "1", "--db", db_, "--yes"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("replayed 1 dead letter(s), on the buffer file"), std::string::npos) << r.out;
  r = run({"buffer", "dump", "--db", db_, "--from", "4"});
  EXPECT_NE(r.out.find(std::string(500, 'p')), std::string::npos) << r.out;

  r = run({"dead-letters", "clear", "--all", "--db", db_}, "y\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cleared 1 dead letter(s)"), std::string::npos) << r.out;
  EXPECT_NE(run({"dead-letters", "list", "--db", db_}).out.find("no dead letters"), std::string::npos);
  EXPECT_EQ(run({"dead-letters", "clear", "--older-than", "soon", "--db", db_}).code, 2);
}

TEST_F(CliTest, ExportWritesTheRetainedRecordsInTheSinksEnvelope) {
  auto r = run({"export", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3);
  EXPECT_NE(r.err.find("exported 3 records"), std::string::npos);
  r = run({"export", "--db", db_, "--device", "dev-\"1\""});
  EXPECT_NE(r.err.find("exported 1 records"), std::string::npos) << r.err;
  r = run({"export", "--db", db_, "--to", "1970-01-02"});
  EXPECT_NE(r.err.find("exported 0 records"), std::string::npos) << r.err;
  // A file that fills the disk is an error, not an export that looks complete.
  r = run({"export", "--db", db_, "--output", "/dev/full"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("writing /dev/full failed (is the disk full?)"), std::string::npos) << r.err;
  r = run({"export", "--db", db_, "--output", (dir_ / "no-such-dir" / "x.jsonl").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
  r = run({"export", "--db", db_, "--format", "protobuf"});
  ASSERT_EQ(r.code, 0);
  ASSERT_FALSE(r.out.empty());
  std::size_t length = 0, at = 0;  // a varint, then that many bytes: one batch
  for (int shift = 0; at < r.out.size(); shift += 7) {
    const auto byte = static_cast<unsigned char>(r.out[at++]);
    length |= static_cast<std::size_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) break;
  }
  EXPECT_EQ(at + length, r.out.size());
  tidegate::v1::Batch batch;
  ASSERT_TRUE(batch.ParseFromString(r.out.substr(at)));
  EXPECT_EQ(batch.records_size(), 3);
  EXPECT_EQ(run({"export", "--db", db_, "--format", "xml"}).code, 2);
  EXPECT_EQ(run({"export", "--db", db_, "--from", "noon"}).code, 2);
}

TEST_F(CliTest, APauseOnAStoppedGatewayIsKeptInTheFile) {
  auto r = run({"sink", "pause", "cloud", "--db", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("paused sink 'cloud' until 'tidegate sink resume cloud'"), std::string::npos) << r.out;
  auto held = [&] {
    buffer::BufferOptions o;
    o.path = db_;
    o.read_only = true;
    o.log = [](buffer::LogLevel, std::string_view) {};
    return buffer::Buffer::open(o)->sink_held("cloud");
  };
  EXPECT_TRUE(held());
  ASSERT_EQ(run({"sink", "resume", "cloud", "--db", db_}).code, 0);
  EXPECT_FALSE(held());
  EXPECT_EQ(run({"sink", "pause", "nobody", "--db", db_}).code, 1);
}

TEST(OperatorTime, AcceptsUtcDatesTimesAndUnixSeconds) {
  constexpr std::int64_t kS = 1'000'000'000;
  EXPECT_EQ(parse_operator_time("2026-11-30T08:00:00Z"), 1796025600 * kS);
  EXPECT_EQ(parse_operator_time("2026-11-30 08:00"), 1796025600 * kS);
  EXPECT_EQ(parse_operator_time("2026-11-30"), (1796025600 - 8 * 3600) * kS);
  EXPECT_EQ(parse_operator_time("1796025600"), 1796025600 * kS);
  // Past 2038, where a 32-bit time_t (armhf) ends: computed in 64 bits.
  EXPECT_EQ(parse_operator_time("2040-02-29T12:00:00Z"), 2214129600 * kS);
  EXPECT_FALSE(parse_operator_time("2026-11-30 08:00 tomorrow").has_value());
  // Outside 1970..2262 (found by fuzz/operator_text_fuzz: the year 20 overflowed).
  EXPECT_FALSE(parse_operator_time("20-11-30 08:00").has_value());
  EXPECT_FALSE(parse_operator_time("9300000000000").has_value());
  EXPECT_FALSE(parse_operator_time("-5").has_value());
  EXPECT_FALSE(parse_operator_time("").has_value());
}

// While a gateway holds the file, a change goes through its status API; with
// --db there is no configuration to find it, and the operator is told.
TEST_F(CliTest, AChangeToABufferHeldByAGatewayNeedsItsConfiguration) {
  buffer::BufferOptions o;
  o.path = db_;
  o.log = [](buffer::LogLevel, std::string_view) {};
  auto held = buffer::Buffer::open(o);
  auto r = run({"sink", "forget", "cloud", "--db", db_, "--yes"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("a gateway holds the file: give --config"), std::string::npos) << r.err;
  EXPECT_EQ(held->sinks().size(), 1u);
  // Reading is fine beside it.
  EXPECT_EQ(run({"sink", "list", "--db", db_}).code, 0);
}

// TLS files the configuration names are loaded at start-up, by check-config
// and run alike: a bad one is exit 2 with a line naming the configuration
// file, the key and the reason (never an abort once the gateway runs).
class TlsFilesTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const auto d = dir_.path().string();
    auto sh = [](const std::string& cmd) { ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd; };
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh("openssl req -x509" + key + " -keyout " + d + "/client.key -out " + d + "/client.pem -days 2 -subj /CN=gw");
    sh("openssl req -x509" + key + " -keyout " + d + "/other.key -out " + d + "/other.pem -days 2 -subj /CN=other");
    std::ofstream(dir_ / "empty-ca.pem") << "# the CA bundle was never copied here\n";
    std::filesystem::create_directory(dir_ / "keys");  // unreadable as a key file, even for root
  }
  // check-config and run on a configuration whose MQTT source has this [tls].
  void expect_both_refuse(const std::string& tls, const std::string& expected_line) {
    const auto config = dir_ / "tidegate.toml";
    std::ofstream(config) << "[buffer]\npath = \"" << db_ << "\"\n[[sources.mqtt]]\nurl = \"mqtts://127.0.0.1:8883\"\n"
                          << "[sources.mqtt.tls]\n" << tls;
    for (const char* command : {"check-config", "run"}) {
      auto r = run({command, "--config", config.string()});
      EXPECT_EQ(r.code, 2) << command << ": " << r.err;
      EXPECT_NE(r.err.find(config.string() + ": " + expected_line), std::string::npos) << command << ": " << r.err;
    }
  }
  std::string file(const char* name) { return (dir_ / name).string(); }
};

TEST_F(TlsFilesTest, ACaFileWithoutACertificateIsRefused) {
  expect_both_refuse("ca_file = \"" + file("empty-ca.pem") + "\"\n",
                     "sources.mqtt[0].tls.ca_file: CA file \"" + file("empty-ca.pem") +
                         "\" holds no usable certificate: no certificate or crl found");
}

TEST_F(TlsFilesTest, AnUnreadableKeyIsRefused) {
  expect_both_refuse("cert_file = \"" + file("client.pem") + "\"\nkey_file = \"" + file("keys") + "\"\n",
                     "sources.mqtt[0].tls.key_file: key file \"" + file("keys") + "\" is not readable: Is a directory");
  expect_both_refuse("cert_file = \"" + file("client.pem") + "\"\nkey_file = \"" + file("missing.key") + "\"\n",
                     "sources.mqtt[0].tls.key_file: key file \"" + file("missing.key") +
                         "\" is not readable: No such file or directory");
}

TEST_F(TlsFilesTest, AKeyThatDoesNotMatchItsCertificateIsRefused) {
  expect_both_refuse("cert_file = \"" + file("client.pem") + "\"\nkey_file = \"" + file("other.key") + "\"\n",
                     "sources.mqtt[0].tls.key_file: key file \"" + file("other.key") +
                         "\" does not match the certificate \"" + file("client.pem") + "\"");
  // The matching pair passes.
  const auto config = dir_ / "ok.toml";
  std::ofstream(config) << "[buffer]\npath = \"" << db_ << "\"\n[[sources.mqtt]]\nurl = \"mqtts://127.0.0.1:8883\"\n"
                        << "[sources.mqtt.tls]\ncert_file = \"" << file("client.pem") << "\"\nkey_file = \""
                        << file("client.key") << "\"\nca_file = \"" << file("other.pem") << "\"\n";
  auto r = run({"check-config", "--config", config.string()});
  EXPECT_EQ(r.code, 0) << r.err;
}

}  // namespace
}  // namespace tidegate::gateway
