// Routes, the filter language and every processor kind, on records made in
// the test (the forwarder's use of a chain is in forwarder_test.cpp, the
// whole path through real sinks in tests/integration/processing_test.cpp).
#include <gtest/gtest.h>

#include <charconv>
#include <cstring>
#include <fstream>

#include "test_support.h"
#include "tidegate/common/patterns.h"
#include "tidegate/gateway/config.h"
#include "tidegate/processing/chain.h"
#include "tidegate/processing/condition.h"
#include "tidegate/processing/regex.h"
#include "tidegate/processors/convert.h"
#include "tidegate/processors/enrich.h"
#include "tidegate/processors/fields.h"
#include "tidegate/processors/filter.h"
#include "tidegate/processors/lua.h"
#include "tidegate/processors/redact.h"

namespace tidegate::processing {
namespace {

using processors::LuaOptions;

buffer::Record record(std::string payload, std::string topic = "site/north/ahu-1/temperature",
                      std::string device = "ahu-1") {
  buffer::Record r;
  r.seq = 7;
  r.ingest_ns = 1'700'000'000'000'000'000;
  r.source = "building";
  r.partition_key = std::move(device);
  r.topic = std::move(topic);
  r.payload = std::move(payload);
  r.content_type = "application/json";
  return r;
}

// Runs one processor on a record; the record's payload afterwards.
struct Run {
  Verdict verdict;
  buffer::Record out;
};
Run run(Processor& p, buffer::Record r) {
  Message m(r);
  Run result{p.process(m), {}};
  m.finish();
  result.out = std::move(r);
  return result;
}

TEST(Patterns, TopicFiltersAndGlobs) {
  using common::glob_matches;
  using common::topic_matches;
  EXPECT_TRUE(topic_matches("site/+/ahu-1/#", "site/north/ahu-1/temperature"));
  EXPECT_TRUE(topic_matches("site/#", "site"));
  EXPECT_FALSE(topic_matches("site/+", "site/a/b"));
  EXPECT_FALSE(topic_matches("#", "$SYS/broker"));
  EXPECT_TRUE(topic_matches("+/+", "/x"));
  EXPECT_TRUE(glob_matches("ahu-*", "ahu-12"));
  EXPECT_TRUE(glob_matches("meter-??", "meter-07"));
  EXPECT_FALSE(glob_matches("meter-??", "meter-7"));
  EXPECT_TRUE(glob_matches("*", ""));
  EXPECT_TRUE(glob_matches("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_matches("a*b*c", "axxbyy"));
}

TEST(Route, SelectsByEveryListGivenAndEverythingWithoutOne) {
  Route everything;
  EXPECT_TRUE(everything.everything());
  EXPECT_TRUE(everything.selects(record("{}")));
  Route r;
  r.topics = {"site/+/+/temperature", "alarms/#"};
  r.devices = {"ahu-*"};
  EXPECT_TRUE(r.selects(record("{}")));
  EXPECT_FALSE(r.selects(record("{}", "site/north/ahu-1/humidity")));
  EXPECT_FALSE(r.selects(record("{}", "alarms/x", "door-3")));
  r.content_types = {"text/*"};
  EXPECT_FALSE(r.selects(record("{}")));
  Route by_source;
  by_source.sources = {"build*"};
  EXPECT_TRUE(by_source.selects(record("{}")));
}

bool holds(const std::string& condition, const std::string& payload, std::string* error = nullptr) {
  auto c = Condition::parse(condition);
  auto r = record(payload);
  Message m(r);
  std::string why;
  auto v = c.evaluate(m, why);
  if (error) *error = why;
  if (!v) throw std::runtime_error(why);
  return *v;
}

TEST(Condition, ComparesFieldsAndRecordAttributes) {
  const std::string p = R"({"temperature": 31.5, "status": "alarm", "ok": false, "meta": {"room": "B12"}})";
  EXPECT_TRUE(holds(".temperature > 30", p));
  EXPECT_FALSE(holds(".temperature <= 30", p));
  EXPECT_TRUE(holds(".status == \"alarm\" and .meta.room =~ \"^B[0-9]+$\"", p));
  EXPECT_TRUE(holds("topic =~ \"^site/north/\" and device == \"ahu-1\" and source == \"building\"", p));
  EXPECT_TRUE(holds("not .ok", p));
  EXPECT_TRUE(holds("exists(.meta.room) and not exists(.badge)", p));
  EXPECT_TRUE(holds("(.temperature < 0 or .status != \"ok\") and content_type == \"application/json\"", p));
  EXPECT_TRUE(holds(".meta.room !~ \"^A\"", p));
  // A missing field is null: equal to null, unequal to anything else, never ordered.
  EXPECT_TRUE(holds(".humidity == null", p));
  EXPECT_TRUE(holds(".humidity != 3", p));
  EXPECT_FALSE(holds(".humidity > 3", p));
  EXPECT_FALSE(holds(".humidity < 3", p));
  // Escapes: \" inside a string, a backslash kept for the regex.
  EXPECT_TRUE(holds(R"(.status =~ "^al\.?arm$")", p));
}

TEST(Condition, ATypeMismatchOrAPayloadWithoutFieldsIsAnErrorNotAVerdict) {
  std::string error;
  EXPECT_THROW(holds(".status > 3", R"({"status": "alarm"})", &error), std::runtime_error);
  EXPECT_THROW(holds(".t > 3", "21.5 degC"), std::runtime_error);
  try {
    holds(".t > 3", "21.5 degC");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the payload is not JSON");
  }
  try {
    holds(".status > 3", R"({"status": "alarm"})");
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "type mismatch: .status is a string, compared with 3, a number");
  }
  // Conditions over the record only work on any payload.
  EXPECT_TRUE(holds("device == \"ahu-1\"", "\x01\x02 binary"));
  // Unequal types are simply unequal.
  EXPECT_FALSE(holds(".status == 3", R"({"status": "alarm"})"));
}

TEST(Condition, ParseErrorsSayWhereAndWhat) {
  auto error_of = [](const std::string& text) {
    try {
      Condition::parse(text);
    } catch (const ConditionError& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  EXPECT_NE(error_of(".t >").find("at character 5"), std::string::npos) << error_of(".t >");
  EXPECT_NE(error_of("temperature > 3").find("unknown name 'temperature' (fields start with a dot"),
            std::string::npos);
  EXPECT_NE(error_of(".s =~ \"(\"").find("invalid regular expression"), std::string::npos);
  EXPECT_NE(error_of("(.a == 1").find("expected ')'"), std::string::npos);
  EXPECT_NE(error_of(".a == \"open").find("not closed"), std::string::npos);
  EXPECT_NE(error_of(".a == 1 .b").find("expected 'and', 'or' or the end"), std::string::npos);
  EXPECT_NE(error_of(std::string(200, '(') + ".a" + std::string(200, ')')).find("nested more than"),
            std::string::npos);
}

TEST(Regex, ReplacesEveryMatchAndHandlesEmptyMatchesAndNuls) {
  Regex mac("([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}");
  EXPECT_EQ(mac.replace_all("a 00:1A:2b:3C:4d:5E b 11:22:33:44:55:66", [](std::string_view) { return "<mac>"; }),
            "a <mac> b <mac>");
  Regex anchored("^x");
  EXPECT_EQ(anchored.replace_all("xxx", [](std::string_view) { return "y"; }), "yxx");  // ^ only at the start
  Regex empty("z*");
  EXPECT_EQ(empty.replace_all("ab", [](std::string_view) { return "-"; }), "-a-b-");
  const std::string with_nul("a\0b 00:11:22:33:44:55", 21);
  EXPECT_TRUE(mac.search(with_nul));
  EXPECT_THROW(Regex("a{"), RegexError);
}

TEST(Filter, KeepsOrDropsAndDeadLettersWhatItCannotJudge) {
  processors::FilterOptions o;
  o.condition = ".temperature > 30";
  processors::Filter keep(o);
  EXPECT_EQ(run(keep, record(R"({"temperature": 31})")).verdict.kind, Verdict::Kind::kPass);
  EXPECT_EQ(run(keep, record(R"({"temperature": 20})")).verdict.kind, Verdict::Kind::kDrop);
  const auto bad = run(keep, record("not json"));
  EXPECT_EQ(bad.verdict.kind, Verdict::Kind::kDeadLetter);
  EXPECT_EQ(bad.verdict.reason, "the payload is not JSON");
  o.keep_matching = false;
  processors::Filter drop(o);
  EXPECT_EQ(run(drop, record(R"({"temperature": 31})")).verdict.kind, Verdict::Kind::kDrop);
  EXPECT_EQ(run(drop, record(R"({"temperature": 20})")).verdict.kind, Verdict::Kind::kPass);
}

TEST(Enrich, AddsTheFieldsOfEveryMatchingRuleInOrderWithoutOverwritingTheDevice) {
  processors::EnrichOptions o;
  processors::EnrichRule all{"", "", {{"site", "plant-3"}}};
  processors::EnrichRule ahu{"ahu-*", "", {{"building", "B"}, {"meta.floor", 2}}};
  processors::EnrichRule north{"", "site/north/#", {{"building", "B-north"}, {"zone", "N"}}};
  o.rules = {all, ahu, north};
  processors::Enrich e(o);
  const auto r = run(e, record(R"({"temperature": 21.5, "site": "device-says"})"));
  ASSERT_EQ(r.verdict.kind, Verdict::Kind::kPass);
  EXPECT_EQ(r.out.payload,
            R"({"temperature":21.5,"site":"device-says","building":"B-north","meta":{"floor":2},"zone":"N"})");
  o.overwrite = true;
  processors::Enrich over(o);
  EXPECT_NE(run(over, record(R"({"site": "device-says"})")).out.payload.find(R"("site":"plant-3")"),
            std::string::npos);
  // A device no rule names passes untouched, JSON or not.
  processors::EnrichOptions only_ahu;
  only_ahu.rules = {ahu};
  processors::Enrich narrow(only_ahu);
  const auto other = run(narrow, record("raw bytes", "t", "door-1"));
  EXPECT_EQ(other.verdict.kind, Verdict::Kind::kPass);
  EXPECT_EQ(other.out.payload, "raw bytes");
  EXPECT_EQ(run(narrow, record("raw bytes")).verdict.kind, Verdict::Kind::kDeadLetter);
}

TEST(Enrich, ReadsCsvAndTomlTablesAndSaysWhereOneIsWrong) {
  auto rules = processors::load_enrich_file(
      "assets.csv", "# the site's meters\ndevice,building,floor,note\nmeter-*,B,3,\"main, east\"\nahu-1,C,,\n");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].device, "meter-*");
  EXPECT_EQ(rules[0].fields, Json({{"building", "B"}, {"floor", 3}, {"note", "main, east"}}));
  EXPECT_EQ(rules[1].fields, Json({{"building", "C"}}));  // empty cells add nothing
  auto toml = processors::load_enrich_file(
      "assets.toml", "[[rules]]\ntopic = \"site/+/chiller/#\"\nfields = { asset = \"CH-1\", kw = 350 }\n");
  ASSERT_EQ(toml.size(), 1u);
  EXPECT_EQ(toml[0].topic, "site/+/chiller/#");
  EXPECT_EQ(toml[0].fields, Json({{"asset", "CH-1"}, {"kw", 350}}));
  auto error_of = [](const std::string& path, const std::string& text) {
    try {
      processors::load_enrich_file(path, text);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  EXPECT_EQ(error_of("a.csv", "name,building\nx,B\n"), "a.csv:1: the first column must be \"device\" or \"topic\", not \"name\"");
  EXPECT_EQ(error_of("a.csv", "device,building\nx,B,extra\n"), "a.csv:2: 3 cells where the header has 2");
  EXPECT_EQ(error_of("a.csv", "device,building\n\"x,B\n"), "a.csv:2: a quoted cell is not closed");
  EXPECT_NE(error_of("a.toml", "[[rules]]\ndevice = 3\n").find("device: expected a string"), std::string::npos);
}

TEST(Fields, RenameDropAndKeep) {
  processors::RenameOptions ro;
  ro.renames = {{"temp", "temperature"}, {"meta.rm", "room"}, {"absent", "x"}};
  processors::Rename rename(ro);
  EXPECT_EQ(run(rename, record(R"({"temp": 21, "meta": {"rm": "B1", "f": 2}})")).out.payload,
            R"({"temperature":21,"meta":{"f":2},"room":"B1"})");  // a rename in place keeps the field's place
  processors::FieldListOptions lo;
  lo.fields = {"debug", "meta.raw"};
  processors::DropFields drop(lo);
  EXPECT_EQ(run(drop, record(R"({"t": 1, "debug": "x", "meta": {"raw": "..", "ok": 1}})")).out.payload,
            R"({"t":1,"meta":{"ok":1}})");
  lo.fields = {"t", "meta.ok", "absent"};
  processors::KeepFields keep(lo);
  EXPECT_EQ(run(keep, record(R"({"t": 1, "debug": "x", "meta": {"raw": "..", "ok": 1}})")).out.payload,
            R"({"t":1,"meta":{"ok":1}})");
  EXPECT_EQ(run(keep, record("[1,2]")).verdict.reason, "the payload is JSON but not an object: it has no fields");
}

TEST(Convert, UnitsScaleTypesAndTheUnitRecorded) {
  auto map = processors::unit_conversion("degF", "degC");
  ASSERT_TRUE(map);
  EXPECT_NEAR(212 * map->scale + map->offset, 100.0, 1e-9);
  EXPECT_NEAR(32 * map->scale + map->offset, 0.0, 1e-9);
  auto psi = processors::unit_conversion("psi", "kPa");
  EXPECT_NEAR(psi->scale, 6.894757293168, 1e-9);
  EXPECT_FALSE(processors::unit_conversion("degC", "kPa"));  // different things
  EXPECT_FALSE(processors::unit_conversion("furlong", "m"));

  processors::ConvertOptions o;
  processors::ConvertRule f2c;
  f2c.field = "t";
  f2c.scale = map->scale;
  f2c.offset = map->offset;
  f2c.unit = "degC";
  processors::ConvertRule power;
  power.field = "p";
  power.scale = 0.001;
  power.type = processors::ConvertRule::Type::kInt;
  power.unit = "kW";
  power.unit_field = "units.p";
  processors::ConvertRule on;
  on.field = "fan";
  on.type = processors::ConvertRule::Type::kBool;
  o.rules = {f2c, power, on};
  processors::Convert c(o);
  const auto r = run(c, record(R"({"t": 212, "p": "15600", "fan": "on"})"));
  ASSERT_EQ(r.verdict.kind, Verdict::Kind::kPass) << r.verdict.reason;
  EXPECT_EQ(r.out.payload, R"({"t":100.0,"p":16,"fan":true,"t_unit":"degC","units":{"p":"kW"}})");
  // A reading without the field passes; one whose value is not a number is dead-lettered with it.
  EXPECT_EQ(run(c, record(R"({"x": 1})")).verdict.kind, Verdict::Kind::kPass);
  const auto bad = run(c, record(R"({"t": "warm"})"));
  EXPECT_EQ(bad.verdict.kind, Verdict::Kind::kDeadLetter);
  EXPECT_EQ(bad.verdict.reason, ".t is \"warm\", not a number");
  EXPECT_EQ(run(c, record(R"({"fan": "maybe"})")).verdict.reason,
            ".fan is \"maybe\", not a boolean (true/false, on/off, 1/0)");
}

TEST(Redact, HmacMatchesTheRfc4231Vector) {
  // RFC 4231, test case 2.
  EXPECT_EQ(processors::hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Redact, RemovesMasksOrHashesFieldsAndPatterns) {
  processors::RedactOptions o;
  o.fields = {"badge", "occupant.name", "absent"};
  o.patterns = {"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}"};
  const std::string p = R"({"badge": "B-1234", "occupant": {"name": "Ann"}, "note": "seen 00:11:22:33:44:55", "n": 3})";
  o.mode = processors::RedactOptions::Mode::kMask;
  processors::Redact mask(o);
  EXPECT_EQ(run(mask, record(p)).out.payload,
            R"({"badge":"****","occupant":{"name":"****"},"note":"seen ****","n":3})");
  o.mode = processors::RedactOptions::Mode::kRemove;
  processors::Redact remove(o);
  EXPECT_EQ(run(remove, record(p)).out.payload, R"({"occupant":{},"note":"seen ","n":3})");
  o.mode = processors::RedactOptions::Mode::kHash;
  o.key = "0123456789abcdef-site-key";
  processors::Redact hash(o);
  const auto hashed = run(hash, record(p)).out.payload;
  EXPECT_NE(hashed.find("\"badge\":\"" + processors::hmac_sha256_hex(o.key, "B-1234") + "\""), std::string::npos)
      << hashed;
  EXPECT_NE(hashed.find("seen " + processors::hmac_sha256_hex(o.key, "00:11:22:33:44:55")), std::string::npos);
  EXPECT_EQ(hashed.find("Ann"), std::string::npos);
  // The same value hashes the same in another record: joinable upstream.
  EXPECT_NE(run(hash, record(R"({"badge": "B-1234"})")).out.payload.find(processors::hmac_sha256_hex(o.key, "B-1234")),
            std::string::npos);
  // Named fields need JSON; patterns alone work on raw text.
  EXPECT_EQ(run(hash, record("raw")).verdict.kind, Verdict::Kind::kDeadLetter);
  processors::RedactOptions text_only;
  text_only.patterns = o.patterns;
  processors::Redact raw(text_only);
  EXPECT_EQ(run(raw, record("mac=00:11:22:33:44:55;t=3")).out.payload, "mac=****;t=3");
}

LuaOptions lua(const std::string& script) {
  LuaOptions o;
  o.name = "test";
  o.script = script;
  o.chunk_name = "test.lua";
  o.instruction_limit = 100'000;
  o.memory_limit = 2u << 20;
  return o;
}

TEST(Lua, TransformsDropsAndPassesRecords) {
  processors::Lua l(lua(R"(
    function process(r)
      if r.fields == nil then return r end          -- not JSON: unchanged
      if r.fields.t == nil then return nil end      -- drop
      r.fields.t_f = r.fields.t * 9 / 5 + 32
      r.fields.where = r.device .. "@" .. string.upper(r.source)
      r.topic = "out/" .. r.topic
      return r
    end)"));
  const auto r = run(l, record(R"({"t": 100})"));
  ASSERT_EQ(r.verdict.kind, Verdict::Kind::kPass) << r.verdict.reason;
  const auto doc = Json::parse(r.out.payload);
  EXPECT_EQ(doc["t"], 100);
  EXPECT_EQ(doc["t_f"], 212.0);
  EXPECT_EQ(doc["where"], "ahu-1@BUILDING");
  EXPECT_EQ(r.out.topic, "out/site/north/ahu-1/temperature");
  EXPECT_EQ(run(l, record(R"({"x": 1})")).verdict.kind, Verdict::Kind::kDrop);
  EXPECT_EQ(run(l, record("raw")).out.payload, "raw");

  processors::Lua payload(lua("function process(r) r.payload = r.payload:gsub('secret', 'x') return r end"));
  EXPECT_EQ(run(payload, record("a secret b")).out.payload, "a x b");
  processors::Lua keep(lua("function process(r) return true end"));
  EXPECT_EQ(run(keep, record(R"({"a" : 1})")).out.payload, R"({"a" : 1})");  // untouched, byte for byte
}

TEST(Lua, TheSandboxRefusesFilesProcessesModulesAndBytecode) {
  auto fails = [](const std::string& body) {
    processors::Lua l(lua("function process(r) " + body + " return r end"));
    const auto r = run(l, record("{}"));
    EXPECT_EQ(r.verdict.kind, Verdict::Kind::kDeadLetter) << body;
    return r.verdict.reason;
  };
  EXPECT_NE(fails("io.open('/etc/passwd')").find("attempt to index a nil value (global 'io')"), std::string::npos);
  EXPECT_NE(fails("os.execute('touch /tmp/x')").find("global 'os'"), std::string::npos);
  EXPECT_NE(fails("require('socket')").find("global 'require'"), std::string::npos);
  EXPECT_NE(fails("load('return 1')").find("global 'load'"), std::string::npos);
  EXPECT_NE(fails("dofile('/tmp/x.lua')").find("global 'dofile'"), std::string::npos);
  EXPECT_NE(fails("string.dump(process)").find("field 'dump'"), std::string::npos);
  EXPECT_NE(fails("setmetatable({}, {__gc = function() end})").find("global 'setmetatable'"), std::string::npos);
  // A script that does not compile, or lacks the function, is refused up front.
  EXPECT_THROW(processors::Lua(lua("function process(r) return r")), processors::LuaError);
  EXPECT_THROW(processors::Lua(lua("x = 1")), processors::LuaError);
  EXPECT_THROW(processors::Lua(lua("\x1bLua")), processors::LuaError);  // bytecode
}

TEST(Lua, AnEndlessLoopOrAMemoryHogDeadLettersItsRecordAndTheNextOneIsFine) {
  processors::Lua l(lua(R"(
    function process(r)
      if r.fields.mode == "loop" then while true do end end
      if r.fields.mode == "sneaky" then
        while true do pcall(function() while true do end end) end
      end
      if r.fields.mode == "hog" then local t = {} for i = 1, 1e8 do t[i] = string.rep("x", 100) .. i end end
      if r.fields.mode == "rep" then return string.rep("x", 1e9) end
      return r
    end)"));
  EXPECT_NE(run(l, record(R"({"mode": "loop"})")).verdict.reason.find("instruction budget of 100000 exceeded"),
            std::string::npos);
  EXPECT_NE(run(l, record(R"({"mode": "sneaky"})")).verdict.reason.find("instruction budget"), std::string::npos);
  const auto hog = run(l, record(R"({"mode": "hog"})"));
  EXPECT_EQ(hog.verdict.kind, Verdict::Kind::kDeadLetter);
  EXPECT_TRUE(hog.verdict.reason.find("memory") != std::string::npos ||
              hog.verdict.reason.find("instruction budget") != std::string::npos)
      << hog.verdict.reason;
  EXPECT_NE(run(l, record(R"({"mode": "rep"})")).verdict.reason.find("memory"), std::string::npos);
  // The state is usable afterwards.
  EXPECT_EQ(run(l, record(R"({"mode": "fine"})")).verdict.kind, Verdict::Kind::kPass);
}

TEST(Lua, ResultsJsonCannotHoldAreDeadLettersWithTheReason) {
  processors::Lua number(lua("function process(r) return 42 end"));
  EXPECT_EQ(run(number, record("{}")).verdict.reason, "process returned a number; expected the record table, nil or false");
  processors::Lua cyclic(lua("function process(r) r.fields.self = r.fields return r end"));
  EXPECT_NE(run(cyclic, record("{}")).verdict.reason.find("nested too deeply"), std::string::npos);
  processors::Lua fn(lua("function process(r) r.fields.f = print or type return r end"));
  EXPECT_NE(run(fn, record("{}")).verdict.reason.find("a returned field is a function"), std::string::npos);
  processors::Lua mixed(lua("function process(r) r.fields.m = {1, 2, x = 3} return r end"));
  EXPECT_EQ(run(mixed, record("{}")).verdict.reason, "a returned table mixes a list with named fields");
  processors::Lua sparse(lua("function process(r) r.fields.m = {[5] = 1} return r end"));
  EXPECT_EQ(run(sparse, record("{}")).verdict.reason, "a returned table mixes a list with named fields");
  processors::Lua list(lua("function process(r) r.fields.m = {1, 'a', {}} return r end"));
  EXPECT_EQ(run(list, record("{}")).out.payload, R"({"m":[1,"a",{}]})");
  processors::Lua err(lua("function process(r) error('no reading for ' .. r.device) end"));
  EXPECT_EQ(run(err, record("{}")).verdict.reason, "test.lua:1: no reading for ahu-1");
}

// The fields reach the script from the fast path (escapes decoded, integers
// and floats kept apart) and go back as JSON written straight from the table.
TEST(Lua, FieldsGoInDecodedAndComeBackAsExactJson) {
  processors::Lua l(lua(R"(
    function process(r)
      local f = r.fields
      f.len = #f.s
      f.kinds = math.type(f.i) .. "," .. math.type(f.x) .. "," .. math.type(f.whole)
      f.half = f.i / 2
      f.third = 1 / 3
      f.nested_ok = f.o.a[2].b
      return r
    end)"));
  const auto r = run(l, record(R"({"s":"a\"b\\c\nd\/e","i":42,"x":21.5,"whole":3.0,"o":{"a":[1,{"b":true}]}})"));
  ASSERT_EQ(r.verdict.kind, Verdict::Kind::kPass) << r.verdict.reason;
  const auto doc = Json::parse(r.out.payload);
  EXPECT_EQ(doc["s"], "a\"b\\c\nd/e");
  EXPECT_EQ(doc["len"], 9);
  EXPECT_EQ(doc["kinds"], "integer,float,float");
  EXPECT_NE(r.out.payload.find(R"("half":21.0)"), std::string::npos) << r.out.payload;  // a float stays a float
  EXPECT_NE(r.out.payload.find(R"("third":0.3333333333333333)"), std::string::npos) << r.out.payload;
  EXPECT_NE(r.out.payload.find(R"("i":42)"), std::string::npos) << r.out.payload;
  EXPECT_EQ(doc["nested_ok"], true);

  // A string JSON text cannot carry is a dead letter, not silently replaced.
  processors::Lua cut(lua(R"(function process(r) r.fields.name = string.sub(r.fields.name, 1, 1) return r end)"));
  const auto bad = run(cut, record("{\"name\":\"\xc3\xa9t\xc3\xa9\"}"));  // "été": one byte of the é
  ASSERT_EQ(bad.verdict.kind, Verdict::Kind::kDeadLetter);
  EXPECT_EQ(bad.verdict.reason, "a returned string is not valid UTF-8, which JSON text must be");
  EXPECT_EQ(bad.out.payload, "{\"name\":\"\xc3\xa9t\xc3\xa9\"}");
}

// After a processor edited the fast path's view, the script sees the edit.
TEST(Lua, SeesWhatAnEarlierProcessorChangedInTheChain) {
  processors::RenameOptions ro;
  ro.renames = {{"t", "temperature"}};
  std::vector<NamedProcessor> procs;
  procs.push_back({"names", "rename", std::make_unique<processors::Rename>(ro)});
  procs.push_back({"script", "lua", std::make_unique<processors::Lua>(lua(R"(
    function process(r) r.fields.f = r.fields.temperature * 9 / 5 + 32 return r end)"))});
  Chain chain(Route{}, std::move(procs));
  auto rec = record(R"({"t":100})");
  ASSERT_EQ(chain.apply(rec).kind, ChainResult::Kind::kSend);
  const auto doc = Json::parse(rec.payload);
  EXPECT_EQ(doc["temperature"], 100);
  EXPECT_EQ(doc["f"], 212.0);
  EXPECT_FALSE(doc.contains("t"));
}

// The chain: route first, processors in order, counted per processor; a
// dead-lettered record comes back as the source delivered it.
TEST(Chain, RoutesProcessesCountsAndGivesDeadLettersBackUnchanged) {
  processors::FilterOptions fo;
  fo.condition = ".t > 0";
  processors::RedactOptions ro;
  ro.fields = {"badge"};
  std::vector<NamedProcessor> procs;
  procs.push_back({"positive", "filter", std::make_unique<processors::Filter>(fo)});
  procs.push_back({"private", "redact", std::make_unique<processors::Redact>(ro)});
  Route route;
  route.devices = {"ahu-*"};
  Chain chain(route, std::move(procs));

  auto kept = record(R"({"t": 3, "badge": "B-1"})");
  EXPECT_EQ(chain.apply(kept).kind, ChainResult::Kind::kSend);
  EXPECT_EQ(kept.payload, R"({"t":3,"badge":"****"})");
  auto filtered = record(R"({"t": -3})");
  EXPECT_EQ(chain.apply(filtered).kind, ChainResult::Kind::kDropped);
  auto other = record(R"({"t": 3})", "t", "door-1");
  EXPECT_EQ(chain.apply(other).kind, ChainResult::Kind::kNotRouted);
  auto bad = record(R"({"t": "hot", "badge": "B-2"})");
  const auto r = chain.apply(bad);
  EXPECT_EQ(r.kind, ChainResult::Kind::kDeadLetter);
  EXPECT_EQ(r.reason, "processor 'positive' (filter): type mismatch: .t is a string, compared with 0, a number");
  EXPECT_EQ(bad.payload, R"({"t": "hot", "badge": "B-2"})");

  const auto stats = chain.stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].in_total, 3u);
  EXPECT_EQ(stats[0].out_total, 1u);
  EXPECT_EQ(stats[0].dropped_total, 1u);
  EXPECT_EQ(stats[0].dead_lettered_total, 1u);
  EXPECT_EQ(stats[1].in_total, 1u);
  EXPECT_EQ(stats[1].out_total, 1u);
  EXPECT_EQ(chain.not_routed_total(), 1u);
}

// The configuration: processors are declared once and named by sinks; a
// name no processor has, a bad condition or table file are errors that
// name the key.
TEST(ProcessorConfig, SinksNameDeclaredProcessorsAndErrorsNameTheKey) {
  testing::TempDir dir;
  const auto table = dir / "assets.csv";
  std::ofstream(table) << "device,building\nahu-*,B\n";
  const std::string base = "[buffer]\npath = \"" + (dir / "b.db").string() + "\"\n";
  const std::string good = base + R"(
[[processors.filter]]
name = "hot"
condition = '.t > 30'
[[processors.enrich]]
name = "site"
fields = { site = "plant-3" }
table_file = ")" + table.string() + R"("
[[sinks.file]]
name = "raw"
directory = ")" + (dir / "out").string() + R"("
[[sinks.file]]
name = "cooked"
directory = ")" + (dir / "out2").string() + R"("
processors = ["hot", "site"]
route = { topics = ["site/#"], devices = ["ahu-*"] }
)";
  auto loaded = gateway::parse_config(good, "t.toml");
  ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].text());
  const auto& c = *loaded.config;
  ASSERT_EQ(c.processors.size(), 2u);
  EXPECT_EQ(c.sinks[1].processors, (std::vector<std::string>{"hot", "site"}));
  EXPECT_EQ(c.sinks[1].route.topics, (std::vector<std::string>{"site/#"}));
  auto chain = gateway::make_chain(c, c.sinks[1]);
  auto r = record(R"({"t": 35})");
  EXPECT_EQ(chain->apply(r).kind, ChainResult::Kind::kSend);
  EXPECT_EQ(r.payload, R"({"t":35,"site":"plant-3","building":"B"})");
  // The sink's text for reloads carries the table file's content.
  EXPECT_NE(c.sinks[1].written.find("ahu-*,B"), std::string::npos);
  EXPECT_EQ(c.sinks[0].written.find("ahu-*,B"), std::string::npos);

  auto errors_of = [&](const std::string& text) {
    std::string all;
    for (const auto& e : gateway::parse_config(text, "t.toml").errors) all += e.text() + "\n";
    return all;
  };
  std::string bad = good;
  testing::replace_all(bad, R"(["hot", "site"])", R"(["hot", "nope"])");
  EXPECT_NE(errors_of(bad).find("t.toml: sinks.file[1].processors[1]: no processor named \"nope\""), std::string::npos)
      << errors_of(bad);
  bad = good;
  testing::replace_all(bad, "'.t > 30'", "'.t >'");
  EXPECT_NE(errors_of(bad).find("processors.filter[0].condition: condition \".t >\", at character 5"),
            std::string::npos)
      << errors_of(bad);
  std::ofstream(table) << "room,building\n";
  EXPECT_NE(errors_of(good).find("processors.enrich[0].table_file: " + table.string() + ":1: the first column must be"),
            std::string::npos)
      << errors_of(good);
  EXPECT_NE(errors_of(base + "[[processors.lua]]\nname = \"l\"\nscript = 'function process(r) return r'\n")
                .find("processors.lua[0].script:"),
            std::string::npos);
  EXPECT_NE(errors_of(base + "[[processors.redact]]\nname = \"r\"\nfields = [\"b\"]\nmode = \"hash\"\n")
                .find("processors.redact[0].key_file: mode = \"hash\" needs a key_file"),
            std::string::npos);
  EXPECT_NE(errors_of(base + "[[processors.convert]]\nname = \"c\"\n[[processors.convert.rules]]\nfield = \"t\"\n"
                             "from_unit = \"degF\"\nto_unit = \"kPa\"\n")
                .find("no conversion from \"degF\" to \"kPa\""),
            std::string::npos);
}

}  // namespace
}  // namespace tidegate::processing

namespace tidegate::processing {
namespace {

// The fast path agrees with the full parse on what is JSON, and what it
// cannot represent it hands over instead of guessing.
TEST(JsonView, AcceptsWhatTheFullParseAcceptsAndHandsOverTheRest) {
  JsonView v;
  for (const char* ok : {R"({})", R"( {"a":1,"b":[1,2,{"c":null}],"d":"x\"y","e":-0.5,"f":true} )"}) {
    EXPECT_EQ(v.parse(ok), JsonView::Parse::kOk) << ok;
  }
  for (const char* bad : {"", "{", R"({"a":})", R"({"a":01})", R"({"a":1,})", R"({"a":"\x"})", "{} x", R"({"a":.5})",
                          R"({"a":tru})", "{\"a\":\"\x01\"}"}) {
    EXPECT_EQ(v.parse(bad), JsonView::Parse::kNotJson) << bad;
    EXPECT_TRUE(Json::parse(bad, nullptr, false).is_discarded()) << bad;
  }
  EXPECT_EQ(v.parse("[1]"), JsonView::Parse::kNotObject);
  EXPECT_EQ(v.parse(R"({"a":1,"a":2})"), JsonView::Parse::kUnsupported);  // duplicate keys
  EXPECT_EQ(v.parse(R"({"t":"21 °C"})"), JsonView::Parse::kUnsupported);   // UTF-8: the full parse checks it
  EXPECT_EQ(v.parse(R"({"\u0061":1})"), JsonView::Parse::kUnsupported);    // \u escapes
  EXPECT_EQ(v.parse(R"({"a":1e999})"), JsonView::Parse::kUnsupported);     // exponents: overflow is an error
}

TEST(JsonView, EditsAreWrittenInOnePassKeepingWhatWasNotTouched) {
  JsonView v;
  const std::string text = R"({ "t" : 21.50, "meta": {"room": "B1"}, "badge": "B-7", "old": 1 })";
  ASSERT_EQ(v.parse(text), JsonView::Parse::kOk);
  std::uint32_t key = 0, value = 0;
  ASSERT_EQ(v.find("meta.room", key, value), JsonView::Find::kFound);
  EXPECT_EQ(v.raw(value), "B1");
  v.rename(key, "zone");
  ASSERT_EQ(v.find("badge", key, value), JsonView::Find::kFound);
  v.replace(value, R"("****")");
  EXPECT_EQ(v.find("badge", key, value), JsonView::Find::kUnsupported);  // replaced: the document knows
  ASSERT_EQ(v.find("old", key, value), JsonView::Find::kFound);
  v.remove(key);
  EXPECT_EQ(v.find("old", key, value), JsonView::Find::kMissing);
  v.append(0, "site", R"("plant \"3\"")");
  EXPECT_EQ(v.find("site", key, value), JsonView::Find::kUnsupported);  // appended: the document knows
  EXPECT_EQ(v.find("meta.zone", key, value), JsonView::Find::kFound);
  std::string out;
  v.write(out);
  EXPECT_EQ(out, R"({"t":21.50,"meta":{"zone":"B1"},"badge":"****","site":"plant \"3\""})");
  EXPECT_EQ(Json::parse(out)["site"], "plant \"3\"");
}

// A chain that mixes the fast path and the document gives what the
// document alone gives (up to number formatting).
TEST(JsonView, AChainThatLeavesTheFastPathMidwayKeepsEveryEdit) {
  processors::RenameOptions ro;
  ro.renames = {{"t", "temperature"}};
  processors::ConvertOptions co;  // convert has no fast path: the document takes over
  processors::ConvertRule rule;
  rule.field = "temperature";
  rule.scale = 2;
  co.rules = {rule};
  processors::EnrichOptions eo;
  eo.rules = {{"", "", {{"site", "plant-3"}}}};
  std::vector<NamedProcessor> procs;
  procs.push_back({"names", "rename", std::make_unique<processors::Rename>(ro)});
  procs.push_back({"site", "enrich", std::make_unique<processors::Enrich>(eo)});
  procs.push_back({"double", "convert", std::make_unique<processors::Convert>(co)});
  Chain chain({}, std::move(procs));
  for (int i = 0; i < 3; ++i) {  // the chain's view is reused record after record
    auto r = record(R"({"t": 10, "x": "y"})");
    ASSERT_EQ(chain.apply(r).kind, ChainResult::Kind::kSend);
    EXPECT_EQ(Json::parse(r.payload), Json::parse(R"({"temperature": 20.0, "x": "y", "site": "plant-3"})")) << r.payload;
  }
}

// nlohmann ends the text at a NUL byte ("{...}\0junk" would parse, the
// junk dropped): both paths call a payload with a NUL not JSON.
TEST(JsonView, APayloadWithANulByteIsNotJsonOnEitherPath) {
  const std::string payload("{\"t\":1}\0junk", 12);
  JsonView view;
  EXPECT_EQ(view.parse(payload), JsonView::Parse::kNotJson);
  buffer::Record r;
  r.payload = payload;
  Message m(r);
  std::string error;
  EXPECT_EQ(m.fields(error), nullptr);
  EXPECT_EQ(error, "the payload is not JSON");
}

TEST(JsonView, NumbersReadFastAreTheNumbersStrtodReads) {
  // The fast path (up to 15 digits) and from_chars must agree bit for bit.
  std::vector<std::string> numbers = {"0",     "-0",          "21.5",  "0.1",    "-45.25", "123456789012345",
                                      "1.5e3", "0.000001234", "99.99", "-0.001", "1234567890123456789"};
  std::uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 2000; ++i) {  // xorshift: reproducible decimals of every length
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    auto digits = std::to_string(x % 10'000'000'000'000'000ull);
    const auto point = static_cast<std::size_t>(x % (digits.size() + 1));
    if (point > 0 && point < digits.size()) digits.insert(point, ".");
    numbers.push_back((x & 1) ? "-" + digits : digits);
  }
  for (const auto& n : numbers) {
    const std::string payload = R"({"v":)" + n + "}";
    JsonView view;
    if (view.parse(payload) != JsonView::Parse::kOk) continue;  // exponents: the full parse's
    std::uint32_t key = 0, value = 0;
    ASSERT_EQ(view.find("v", key, value), JsonView::Find::kFound) << n;
    double fast = 0, reference = 0;
    ASSERT_TRUE(view.number(value, fast)) << n;
    std::from_chars(n.data(), n.data() + n.size(), reference);
    EXPECT_EQ(std::memcmp(&fast, &reference, sizeof fast), 0) << n;
  }
}

TEST(JsonView, ACompactPayloadIsCopiedInRunsAndGivesWhatASpacedOneGives) {
  const std::string compact = R"({"a":1,"b":{"c":[1,2,{"d":null}]},"e":"x\"y","f":true,"g":2.5})";
  const std::string spaced = R"({ "a": 1, "b": { "c": [1, 2, {"d": null}] }, "e": "x\"y", "f": true, "g": 2.5 })";
  for (const auto* text : {&compact, &spaced}) {
    JsonView view;
    ASSERT_EQ(view.parse(*text), JsonView::Parse::kOk);
    std::uint32_t key = 0, value = 0;
    ASSERT_EQ(view.find("f", key, value), JsonView::Find::kFound);
    view.remove(key);
    ASSERT_EQ(view.find("a", key, value), JsonView::Find::kFound);
    view.rename(key, "A");
    ASSERT_EQ(view.find("b.c", key, value), JsonView::Find::kFound);
    view.append(0, "h", "\"new\"");
    std::string out;
    view.write(out);
    EXPECT_EQ(out, R"({"A":1,"b":{"c":[1,2,{"d":null}]},"e":"x\"y","g":2.5,"h":"new"})") << *text;
  }
}

}  // namespace
}  // namespace tidegate::processing
