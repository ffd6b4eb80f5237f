// bench/forward: how fast each sink drains a backlog, and how long a live
// reading takes from publish to the upstream, each beside the peer alone in
// the same run.
//
// - drain: a buffer pre-filled with N records (default 1,000,000, ~100-byte
//   JSON readings from 64 devices) is forwarded to each sink in turn: files
//   (fdatasync per batch), an upstream mosquitto (QoS 1), Kinesis
//   (kinesalite, 4 shards). Baselines: the same envelope lines written to a
//   file with fdatasync per 2,000; published with Paho QoS 1 in windows of
//   2,000; put with the AWS SDK, 500 per PutRecords, one call at a time.
//   Each baseline's lines are built after the gateway's run, so the gateway's
//   peak RSS is its own.
// - latency: readings published at 1,000 msg/s to a local mosquitto go
//   through the MQTT source, the buffer, the forwarder and the MQTT sink to
//   an upstream mosquitto, where a subscriber takes the time; baseline: the
//   same publisher straight to the upstream broker.
//
//   bench_forward [--records N] [--quick] [--only file|mqtt|kinesis|latency] [--out DIR]
#include <malloc.h>
#include <mqtt/async_client.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "http_server.h"
#include "mosquitto.h"
#include "process.h"
#include "report.h"
#include "test_support.h"
#include "tidegate/buffer/buffer.h"
#include "tidegate/drivers/mqtt/mqtt_source.h"
#include "tidegate/forward/forwarder.h"
#include "tidegate/proto/envelope.h"
#include "tidegate/sinks/file_sink.h"
#include "tidegate/sinks/kinesis_sink.h"
#include "tidegate/sinks/mqtt_sink.h"

using namespace tidegate;
using bench::cpu_seconds;
using bench::fmt;
using Steady = std::chrono::steady_clock;

namespace {

const std::string kGateway = "bench";

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

buffer::NewRecord reading(std::uint64_t i) {
  buffer::NewRecord r;
  const auto device = "d" + std::to_string(i % 64);
  r.source = "bench";
  r.partition_key = device;
  r.topic = "sensors/" + device + "/env";
  r.content_type = "application/json";
  r.payload = R"({"ts":)" + std::to_string(1'795'000'000 + i) + R"(,"temp_c":21.)" + std::to_string(i % 10) +
              R"(,"rh_pct":45.)" + std::to_string(i % 7) + R"(,"co2_ppm":)" + std::to_string(400 + i % 300) + "}";
  r.payload.resize(100, ' ');
  return r;
}

struct Result {
  double seconds = 0;
  double cpu = 0;
  std::uint64_t peak_rss_kib = 0;
  double rate(std::uint64_t n) const { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }
};

// Runs `work`, timing it and sampling this process's RSS meanwhile.
template <typename Fn>
Result measure(Fn&& work) {
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> peak{bench::rss_kib()};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max<std::uint64_t>(peak, bench::rss_kib());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const double cpu0 = cpu_seconds();
  const auto t0 = Steady::now();
  work();
  Result r;
  r.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  r.cpu = cpu_seconds() - cpu0;
  done = true;
  sampler.join();
  r.peak_rss_kib = peak;
  return r;
}

Result drain(buffer::Buffer& buffer, std::unique_ptr<forward::Sink> sink, std::uint64_t n) {
  const auto name = sink->name();
  forward::ForwarderOptions o;  // the defaults a configuration gets
  forward::Forwarder f(buffer, std::move(sink), o, nullptr);
  auto r = measure([&] {
    f.start();
    while (buffer.acked_seq(name).value_or(0) < n)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    f.stop();
  });
  std::cerr << "  gateway: " << fmt(r.rate(n)) << " records/s\n";
  return r;
}

// Hands the memory of a baseline's data back to the system, so the next
// gateway run's peak RSS is its own.
template <typename Fn>
Result baseline(Fn&& run) {
  auto r = run();
  ::malloc_trim(0);
  return r;
}

// The envelope lines the sinks send, built before any baseline's clock runs.
std::vector<std::string> envelopes(std::uint64_t n) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    buffer::Record r;
    static_cast<buffer::NewRecord&>(r) = reading(i);
    r.seq = i + 1;
    r.ingest_ns = wall_ns();
    out.push_back(proto::record_json(r, kGateway));
  }
  return out;
}

Result file_baseline(const std::filesystem::path& file, const std::vector<std::string>& lines) {
  return measure([&] {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::string chunk;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      chunk += lines[i];
      chunk += '\n';
      if ((i + 1) % 2000 == 0 || i + 1 == lines.size()) {
        if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) std::abort();
        ::fdatasync(fd);
        chunk.clear();
      }
    }
    ::close(fd);
  });
}

// The least a store-and-forward copy to a file does: the same rows read from
// the same SQLite file with one prepared statement, each payload written as a
// line, fdatasync per 2,000 rows. No envelope, no cursor, one thread.
Result sqlite_copy_baseline(const std::filesystem::path& db_path, const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) std::abort();
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT seq, payload FROM records WHERE seq > ?1 ORDER BY seq LIMIT 2000", -1, &st,
                         nullptr) != SQLITE_OK) {
    std::abort();
  }
  auto r = measure([&] {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::string chunk;
    for (sqlite3_int64 after = 0;;) {
      sqlite3_bind_int64(st, 1, after);
      int rows = 0;
      while (sqlite3_step(st) == SQLITE_ROW) {
        after = sqlite3_column_int64(st, 0);
        chunk.append(static_cast<const char*>(sqlite3_column_blob(st, 1)),
                     static_cast<std::size_t>(sqlite3_column_bytes(st, 1)));
        chunk += '\n';
        ++rows;
      }
      sqlite3_reset(st);
      if (rows == 0) break;
      if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) std::abort();
      ::fdatasync(fd);
      chunk.clear();
    }
    ::close(fd);
  });
  sqlite3_finalize(st);
  sqlite3_close(db);
  return r;
}

// A PutRecords endpoint that accepts everything at once, in this process:
// what the Kinesis sink can push when the upstream is not the limit.
class InstantKinesis {
 public:
  // `delay`: how long each answer takes, a round trip over a slow uplink.
  explicit InstantKinesis(std::chrono::milliseconds delay = {})
      : server_([delay](const testing::LoopbackHttpServer::Request& req, int) -> std::pair<int, std::string> {
          std::this_thread::sleep_for(delay);
          // Base64 data never holds a quote, so this counts the records.
          std::size_t n = 0;
          for (auto at = req.body().find("\"PartitionKey\""); at != std::string::npos;
               at = req.body().find("\"PartitionKey\"", at + 1)) {
            ++n;
          }
          std::string body = "{\"FailedRecordCount\":0,\"Records\":[";
          for (std::size_t i = 0; i < n; ++i) {
            body += i == 0 ? "" : ",";
            body += "{\"SequenceNumber\":\"" + std::to_string(i) + "\",\"ShardId\":\"shardId-000000000000\"}";
          }
          return {200, body + "]}"};
        }) {}
  std::uint16_t port() const { return server_.port(); }

 private:
  testing::LoopbackHttpServer server_;
};

Result mqtt_baseline(const std::string& uri, const std::vector<std::string>& lines, std::size_t window_size) {
  ::mqtt::async_client client(uri, "bench-baseline-pub", 100000, nullptr);
  client
      .connect(
          ::mqtt::connect_options_builder().clean_session(true).max_inflight(static_cast<int>(window_size)).finalize())
      ->wait();
  auto r = measure([&] {
    std::vector<::mqtt::delivery_token_ptr> window;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      window.push_back(client.publish("tidegate/bench/sensors/d" + std::to_string(i % 64) + "/env", lines[i].data(),
                                      lines[i].size(), 1, false));
      if (window.size() == window_size || i + 1 == lines.size()) {
        for (auto& t : window)
          t->wait();
        window.clear();
      }
    }
  });
  client.disconnect()->wait();
  return r;
}

// The AWS SDK in node puts the same records: its own clock and CPU.
Result kinesis_baseline(std::uint16_t port, const std::string& stream, const std::vector<std::string>& lines,
                        const std::filesystem::path& dir) {
  const auto file = dir / "kinesis-records.jsonl";
  {
    std::ofstream out(file);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      out << nlohmann::json{{"key", "d" + std::to_string(i % 64)}, {"data", lines[i]}}.dump() << "\n";
    }
  }
  const auto out = bench::shell(std::string(TIDEGATE_NODE) + " " + TIDEGATE_KINESIS_PEER_DIR + "/peer.js put " +
                                std::to_string(port) + " " + stream + " " + file.string());
  const auto j = nlohmann::json::parse(out);
  Result r;
  r.seconds = j["seconds"];
  r.cpu = j["cpu_seconds"];
  return r;
}

// Latencies of readings published at `rate`/s for `seconds`, as the
// subscriber on `sub_uri` sees them (payload starts with the send time).
std::vector<double> latencies_ms(const std::string& pub_uri, const std::string& pub_prefix, const std::string& sub_uri,
                                 const std::string& sub_filter, int rate, int seconds) {
  std::mutex mu;
  std::vector<double> ms;
  ::mqtt::async_client sub(sub_uri, "bench-latency-sub-" + std::to_string(wall_ns()), 0, nullptr);
  sub.set_message_callback([&](::mqtt::const_message_ptr m) {
    const auto now = wall_ns();
    const auto sent = std::stoll(m->get_payload_str().substr(0, 19));
    std::lock_guard lock(mu);
    ms.push_back(static_cast<double>(now - sent) / 1e6);
  });
  sub.connect(::mqtt::connect_options_builder().clean_session(true).finalize())->wait();
  sub.subscribe(sub_filter, 1)->wait();

  ::mqtt::async_client pub(pub_uri, "bench-latency-pub-" + std::to_string(wall_ns()), 100000, nullptr);
  pub.connect(::mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize())->wait();
  const int total = rate * seconds;
  const auto start = Steady::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * i / rate));
    std::string payload = std::to_string(wall_ns()) + R"( {"temp_c":21.5})";
    payload.resize(100, ' ');
    pub.publish(pub_prefix + "d" + std::to_string(i % 64) + "/env", payload.data(), payload.size(), 1, false);
  }
  const auto deadline = Steady::now() + std::chrono::seconds(30);
  while (Steady::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (static_cast<int>(ms.size()) >= total) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pub.disconnect()->wait();
  sub.disconnect()->wait();
  std::lock_guard lock(mu);
  return ms;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string mib(std::uint64_t kib) {
  return fmt(static_cast<double>(kib) / 1024.0, 0) + " MiB";
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = 1'000'000;
  int latency_seconds = 10;
  std::string out_dir;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      n = 50'000;
      latency_seconds = 3;
    } else if (a == "--records" && i + 1 < argc) {
      n = std::stoull(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      std::cerr << "usage: bench_forward [--records N] [--quick] [--only file|mqtt|kinesis|latency] [--out DIR]\n";
      return 2;
    }
  }
  testing::TempDir dir;
  std::cerr << "bench_forward: filling a buffer with " << n << " records\n";
  buffer::BufferOptions bo;
  bo.path = dir / "buffer.db";
  bo.max_bytes = 0;
  bo.disk_reserve_bytes = 0;
  bo.log = [](buffer::LogLevel, std::string_view) {};
  auto buf = buffer::Buffer::open(bo);
  for (const char* sink : {"file", "mqtt", "kinesis", "kinesis-kpl", "kinesis-instant"}) {
    buf->ensure_sink(sink, buffer::StartPosition::kEarliest);
  }
  for (std::uint64_t i = 0; i < n;) {
    std::vector<buffer::NewRecord> chunk;
    for (; i < n && chunk.size() < 20'000; ++i)
      chunk.push_back(reading(i));
    if (!buf->append_wait(std::move(chunk)).ok()) return 1;
  }

  struct Row {
    std::string sink;
    Result gateway;
    std::optional<Result> peer;  // none: the gateway's own ceiling
    std::string peer_name;
  };
  std::vector<Row> rows;

  auto wanted = [&](const char* part) { return only.empty() || only == part; };
  const std::uint64_t wan_records = std::min<std::uint64_t>(n, 100'000);
  std::vector<std::pair<std::size_t, Result>> wan_rows;  // connections, drain
  if (wanted("file")) {
    std::cerr << "bench_forward: file sink\n";
    sinks::FileSinkOptions o;
    o.name = "file";
    o.directory = dir / "out";
    o.gateway_id = kGateway;
    auto g = drain(*buf, std::make_unique<sinks::FileSink>(o), n);
    const auto copy = baseline([&] { return sqlite_copy_baseline(bo.path, dir / "copy.jsonl"); });
    const auto disk = baseline([&] { return file_baseline(dir / "baseline.jsonl", envelopes(n)); });
    rows.push_back({"file (JSON lines, fdatasync per batch)", g, copy,
                    "SQLite rows to a file: the same buffer file, one prepared SELECT, payload lines, fdatasync per "
                    "2,000"});
    rows.push_back({"file (same run)", g, disk, "the disk alone: envelope lines from memory, fdatasync per 2,000"});
  }

  if (wanted("mqtt")) {
    std::cerr << "bench_forward: MQTT sink\n";
    testing::Mosquitto upstream(dir / "upstream", "autosave_interval 0\n");
    sinks::MqttSinkOptions o;
    o.name = "mqtt";
    o.port = upstream.port();
    o.gateway_id = kGateway;
    o.client_id = "bench-sink";
    auto g = drain(*buf, std::make_unique<sinks::MqttSink>(o), n);
    const auto peer = baseline([&] { return mqtt_baseline(upstream.uri(), envelopes(n), 2000); });
    rows.push_back({"MQTT upstream (QoS 1, envelope)", g, peer, "Paho QoS 1, windows of 2,000"});
  }

  if (wanted("kinesis")) {
    std::cerr << "bench_forward: Kinesis sink (kinesalite)\n";
    const auto port = testing::free_loopback_port();
    testing::Process kinesalite(
        {TIDEGATE_NODE, std::string(TIDEGATE_KINESIS_PEER_DIR) + "/peer.js", "serve", std::to_string(port)},
        dir / "kinesalite.log");
    while (!testing::port_accepts(port))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto create = [&](const std::string& stream) {
      const auto out = bench::shell(std::string(TIDEGATE_NODE) + " " + TIDEGATE_KINESIS_PEER_DIR + "/peer.js create " +
                                    std::to_string(port) + " " + stream + " 4 2>&1");
      if (out.find("active") == std::string::npos) {
        std::cerr << "bench_forward: cannot create stream " << stream << ": " << out << "\n";
        std::exit(1);
      }
    };
    create("gateway");
    create("baseline");
    sinks::KinesisSinkOptions o;
    o.name = "kinesis";
    o.stream = "gateway";
    o.endpoint = "http://127.0.0.1:" + std::to_string(port);
    o.credentials = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
    o.gateway_id = kGateway;
    auto g = drain(*buf, std::make_unique<sinks::KinesisSink>(o), n);
    create("aggregated");
    o.name = "kinesis-kpl";
    o.stream = "aggregated";
    o.aggregate = true;
    auto kpl = drain(*buf, std::make_unique<sinks::KinesisSink>(o), n);
    const auto peer = baseline([&] { return kinesis_baseline(port, "baseline", envelopes(n), dir.path()); });
    rows.push_back({"Kinesis (kinesalite, 4 shards)", g, peer, "AWS SDK v3 (node), PutRecords of 500"});
    rows.push_back({"Kinesis, KPL-aggregated (readings/s)", kpl, peer, "same, not aggregated"});
    InstantKinesis instant;
    o.name = "kinesis-instant";
    o.aggregate = false;
    o.endpoint = "http://127.0.0.1:" + std::to_string(instant.port());
    auto own = drain(*buf, std::make_unique<sinks::KinesisSink>(o), n);
    rows.push_back({"Kinesis sink alone: PutRecords acknowledged at once by a server in this process", own,
                    std::nullopt, "-"});

    // Over a slow uplink the round trips, not the upstream, set the pace:
    // what the sink's parallel connections buy.
    std::cerr << "bench_forward: Kinesis sink, 50 ms round trips\n";
    buffer::BufferOptions wo = bo;
    wo.path = dir / "wan.db";
    auto wan = buffer::Buffer::open(wo);
    for (const char* sink : {"wan-1", "wan-4"}) wan->ensure_sink(sink, buffer::StartPosition::kEarliest);
    for (std::uint64_t i = 0; i < wan_records;) {
      std::vector<buffer::NewRecord> chunk;
      for (; i < wan_records && chunk.size() < 20'000; ++i) chunk.push_back(reading(i));
      if (!wan->append_wait(std::move(chunk)).ok()) return 1;
    }
    InstantKinesis far(std::chrono::milliseconds(50));
    o.endpoint = "http://127.0.0.1:" + std::to_string(far.port());
    for (std::size_t connections : {1u, 4u}) {
      o.name = "wan-" + std::to_string(connections);
      o.connections = connections;
      const auto r = drain(*wan, std::make_unique<sinks::KinesisSink>(o), wan_records);
      wan_rows.push_back({connections, r});
    }
  }

  std::vector<double> direct, through;
  if (wanted("latency")) {
    std::cerr << "bench_forward: latency at 1,000 msg/s\n";
    testing::Mosquitto local(dir / "local", "autosave_interval 0\n");
    testing::Mosquitto upstream(dir / "latency-upstream", "autosave_interval 0\n");
    direct = latencies_ms(upstream.uri(), "direct/", upstream.uri(), "direct/#", 1000, latency_seconds);
    buffer::BufferOptions lo;  // the defaults a configuration gets (crash-safe, 10 ms window)
    lo.path = dir / "latency.db";
    lo.disk_reserve_bytes = 0;
    lo.log = bo.log;
    auto lbuf = buffer::Buffer::open(lo);
    drivers::mqtt::MqttSourceOptions so;
    so.name = "local";
    so.port = local.port();
    so.client_id = "bench-latency-gw";
    so.subscriptions = {{"sensors/#", 1}};
    drivers::mqtt::MqttSource source(so, *lbuf, {});
    sinks::MqttSinkOptions ko;
    ko.name = "up";
    ko.port = upstream.port();
    ko.gateway_id = kGateway;
    ko.client_id = "bench-latency-sink";
    ko.topic_template = "up/{topic}";
    ko.payload = sinks::MqttPayload::kRaw;
    forward::Forwarder f(*lbuf, std::make_unique<sinks::MqttSink>(ko), forward::ForwarderOptions{}, nullptr);
    f.start();
    source.start();
    through = latencies_ms(local.uri(), "sensors/", upstream.uri(), "up/#", 1000, latency_seconds);
    source.stop();
    f.stop();
  }

  std::string doc = "# bench/forward — " + bench::today_utc() + "\n\n" + bench::machine_lines() +
                    "- command: `build/bench/forward/bench_forward" +
                    (n == 1'000'000 ? "" : " --records " + std::to_string(n)) +
                    (out_dir.empty() ? "" : " --out " + out_dir) + "`\n- backlog: " + std::to_string(n) +
                    " records of 100-byte JSON readings from 64 devices, forwarder defaults (batches of up to 2,000 "
                    "within each sink's limit, 20 ms linger)\n\n## Draining a backlog\n\n"
                    "| sink | gateway records/s | gateway CPU s | peak RSS | peer alone | peer records/s | ratio |\n"
                    "|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    doc += "| " + r.sink + " | " + fmt(r.gateway.rate(n)) + " | " + fmt(r.gateway.cpu, 1) + " | " +
           mib(r.gateway.peak_rss_kib) + " | " + r.peer_name + " | " + (r.peer ? fmt(r.peer->rate(n)) : "-") + " | " +
           (r.peer ? fmt(r.gateway.rate(n) / std::max(1.0, r.peer->rate(n)), 2) + "x" : "-") + " |\n";
  }
  doc +=
      "\nGateway CPU is this process's (forwarder, sink, buffer reads, and the acknowledging server of the "
      "\"sink alone\" row); the peer's own CPU (mosquitto, kinesalite) is not in it. The Kinesis baseline's "
      "CPU is the node client's.\n";
  if (!wan_rows.empty()) {
    doc += "\n## Kinesis over a slow uplink: every PutRecords answered after 50 ms\n\n" +
           std::to_string(wan_records) +
           " records from 64 devices, batches of 2,000: four calls of 500 in turn on one connection, or the devices "
           "spread over four connections at once.\n\n"
           "| connections | records/s |\n|---|---|\n";
    for (const auto& [connections, r] : wan_rows) {
      doc += "| " + std::to_string(connections) + " | " + fmt(r.rate(wan_records)) + " |\n";
    }
  }
  if (wanted("latency")) {
    doc += "\n## Publish to upstream, 1,000 msg/s for " + std::to_string(latency_seconds) +
           " s\n\n| path | received | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n";
    auto lat_row = [&](const std::string& name, const std::vector<double>& v) {
      doc += "| " + name + " | " + std::to_string(v.size()) + " / " + std::to_string(1000 * latency_seconds) + " | " +
             fmt(percentile(v, 0.50), 1) + " | " + fmt(percentile(v, 0.99), 1) + " | " +
             fmt(v.empty() ? 0 : *std::max_element(v.begin(), v.end()), 1) + " |\n";
    };
    lat_row("mosquitto alone (publisher -> upstream broker -> subscriber)", direct);
    lat_row(
        "through tidegate (local broker -> MQTT source -> buffer commit -> forwarder -> MQTT sink -> upstream "
        "broker -> subscriber), defaults: 10 ms commit window, 20 ms linger",
        through);
  }
  doc +=
      "\nTargets (issue 4): p99 under 100 ms online; drain at least 10x the live rate (10,000 records/s at "
      "1,000 msg/s) and not slower than the peer alone.\n";
  bench::publish_results("forward", out_dir, doc);
  return 0;
}
