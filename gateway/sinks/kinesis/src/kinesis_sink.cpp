#include "tidegate/sinks/kinesis_sink.h"

#include <algorithm>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "tidegate/net/http_client.h"
#include "tidegate/proto/envelope.h"
#include "tidegate/proto/json.h"
#include "tidegate/sinks/kpl.h"

namespace tidegate::sinks {

struct KinesisSink::Impl {
  KinesisSinkOptions opts;
  // One keep-alive connection per lane: the calls of a batch in flight at once.
  std::vector<std::unique_ptr<net::HttpClient>> clients;
  std::unique_ptr<aws::CredentialsProvider> credentials;

  std::string url() const { return clients.front()->url().text(); }

  // One signed PutRecords call; throws net::HttpError on a network failure,
  // aws::CredentialsError when no credentials can be had.
  net::HttpResponse post(net::HttpClient& client, const std::string& body) {
    const auto creds = credentials->get();
    const std::string amz_date = sigv4::amz_date_now();
    sigv4::Request req;
    req.method = "POST";
    req.payload = body;
    req.headers = {{"host", client.url().host_header()},
                   {"content-type", "application/x-amz-json-1.1"},
                   {"x-amz-date", amz_date},
                   {"x-amz-target", "Kinesis_20131202.PutRecords"}};
    if (!creds.session_token.empty()) req.headers.emplace_back("x-amz-security-token", creds.session_token);
    const auto signature = sigv4::sign(req, creds, opts.region, "kinesis", amz_date);
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : req.headers) {
      if (h.first != "host") headers.push_back(h);  // the client sets Host itself, to the same value
    }
    headers.emplace_back("authorization", signature.authorization);
    auto response = client.post(headers, body);
    // Temporary credentials the upstream holds for expired (its clock and
    // ours disagree): the next call fetches new ones.
    if (response.status == 400 && (response.body.find("ExpiredToken") != std::string::npos ||
                                   response.body.find("ExpiredTokenException") != std::string::npos)) {
      credentials->invalidate();
    }
    return response;
  }
};

KinesisSink::KinesisSink(KinesisSinkOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  if (impl_->opts.connections < 1 || impl_->opts.connections > kMaxConnections) {
    throw std::invalid_argument("connections must be 1 to " + std::to_string(kMaxConnections));
  }
  const std::string endpoint =
      impl_->opts.endpoint.empty() ? "https://kinesis." + impl_->opts.region + ".amazonaws.com" : impl_->opts.endpoint;
  const auto url = net::Url::parse(endpoint);
  auto source = impl_->opts.credential_source;
  source.keys = impl_->opts.credentials;
  impl_->credentials = std::make_unique<aws::CredentialsProvider>(std::move(source));
  for (std::size_t i = 0; i < impl_->opts.connections; ++i) {
    impl_->clients.push_back(std::make_unique<net::HttpClient>(url, impl_->opts.timeout, impl_->opts.ca_file));
  }
}

KinesisSink::~KinesisSink() = default;

const std::string& KinesisSink::name() const {
  return impl_->opts.name;
}

forward::SinkLimits KinesisSink::limits() const {
  // A forwarder batch goes as up to four PutRecords calls (see calls()),
  // which keeps the cursor commits and read-ahead per batch, not per call.
  // Per record: 1 MiB of data and partition key after base64, so 700 KiB.
  forward::SinkLimits l;
  l.max_records = 4 * kMaxCallRecords;
  l.max_bytes = 12u << 20;
  l.max_record_bytes = 700u << 10;
  return l;
}

std::vector<std::pair<std::size_t, std::size_t>> KinesisSink::calls(const std::vector<Entry>& entries) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t begin = 0, bytes = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    // What the entry adds to the body: base64 of the data, the key, framing.
    const std::size_t size = (entries[i].data.size() + 2) / 3 * 4 + entries[i].partition_key.size() + 64;
    if (i > begin && (i - begin == kMaxCallRecords || bytes + size > kMaxCallBytes)) {
      out.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (begin < entries.size()) out.emplace_back(begin, entries.size());
  return out;
}

std::string KinesisSink::describe() const {
  const auto source = impl_->opts.credential_source.source;
  return "Kinesis stream " + impl_->opts.stream + " at " + impl_->url() +
         (source == aws::CredentialSource::kKeys ? std::string() : ", " + impl_->credentials->describe());
}

std::vector<KinesisSink::Entry> KinesisSink::entries(const std::vector<buffer::Record>& batch) const {
  const auto& o = impl_->opts;
  auto key_of = [](const buffer::Record& r) {
    // Kinesis needs 1 to 256 characters of partition key.
    std::string key = r.partition_key.empty() ? r.source : r.partition_key;
    if (key.empty()) key = "tidegate";
    if (key.size() > 256) key.resize(256);
    return key;
  };
  auto data_of = [&](const buffer::Record& r) {
    return o.data == KinesisData::kEnvelope ? proto::record_json(r, o.gateway_id) : r.payload;
  };
  std::vector<Entry> out;
  if (!o.aggregate) {
    for (std::size_t i = 0; i < batch.size(); ++i)
      out.push_back({key_of(batch[i]), data_of(batch[i]), {i}});
    return out;
  }
  // One aggregated record per device, in order of each device's first
  // reading; a device's readings keep their order inside it.
  constexpr std::size_t kMaxAggregate = 900 * 1024;  // under the 1 MiB record limit, before base64 framing
  std::map<std::string, std::size_t> open;           // device -> index in `groups`
  struct Group {
    std::string key;
    std::vector<std::string> datas;
    std::vector<std::size_t> records;
    std::size_t bytes = 0;
  };
  std::vector<Group> groups;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto key = key_of(batch[i]);
    auto data = data_of(batch[i]);
    auto it = open.find(key);
    if (it == open.end() ||
        groups[it->second].bytes + data.size() + kpl::overhead(groups[it->second].records.size() + 1, key.size()) >
            kMaxAggregate) {
      groups.push_back({key, {}, {}, 0});
      it = open.insert_or_assign(key, groups.size() - 1).first;
    }
    auto& g = groups[it->second];
    g.bytes += data.size();
    g.datas.push_back(std::move(data));
    g.records.push_back(i);
  }
  for (auto& g : groups)
    out.push_back({g.key, kpl::aggregate(g.key, g.datas), std::move(g.records)});
  return out;
}

std::string KinesisSink::put_records_body(std::span<const Entry> entries) const {
  std::string body = "{\"StreamName\":" + proto::json::quote(impl_->opts.stream) + ",\"Records\":[";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) body += ',';
    body += "{\"Data\":\"" + proto::json::base64(entries[i].data) +
            "\",\"PartitionKey\":" + proto::json::quote(entries[i].partition_key) + "}";
  }
  body += "]}";
  return body;
}

namespace {

// o[key] if o is an object and that is a string; "" otherwise. The answer
// is outside input: nothing here may throw on an unexpected shape.
std::string text_field(const nlohmann::json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

forward::SendResult KinesisSink::interpret(int status, const std::string& body, std::size_t records) const {
  forward::SendResult result;
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (status == 200) {
    const auto list = doc.is_object() ? doc.find("Records") : doc.end();
    if (list == doc.end() || !list->is_array() || list->size() != records) {
      result.batch = forward::Outcome::kRetry;
      result.error = "PutRecords answered 200 with an unexpected body";
      return result;
    }
    // Per record, not by FailedRecordCount: a record is delivered only if
    // the answer shows it stored (a SequenceNumber and no ErrorCode).
    result.per_record.assign(records, forward::Outcome::kOk);
    std::size_t failed = 0;
    std::string first_error;
    for (std::size_t i = 0; i < records; ++i) {
      const auto& r = (*list)[i];
      const bool has_error = r.is_object() && r.contains("ErrorCode");
      if (!has_error && !text_field(r, "SequenceNumber").empty()) continue;
      // Both documented per-record errors are transient; an entry that
      // shows neither is no acknowledgement either.
      result.per_record[i] = forward::Outcome::kRetry;
      failed += 1;
      const std::string code = text_field(r, "ErrorCode");
      if (code == "ProvisionedThroughputExceededException") result.throttled = true;
      if (first_error.empty()) {
        first_error = has_error ? (code.empty() ? "an ErrorCode that is not text" : code) + ": " +
                                      text_field(r, "ErrorMessage")
                                : "no SequenceNumber in the answer";
      }
    }
    if (failed == 0) {
      result.per_record.clear();
      return result;
    }
    result.error = std::to_string(failed) + " of " + std::to_string(records) + " records failed (" + first_error + ")";
    return result;
  }
  // The whole call failed. Nothing here is the records' fault (sizes were
  // checked before sending), so everything is retried; throttling also
  // slows down.
  const std::string type = text_field(doc, "__type");
  std::string message = doc.is_discarded() ? body.substr(0, 200) : text_field(doc, "message");
  if (message.empty()) message = text_field(doc, "Message");
  result.batch = forward::Outcome::kRetry;
  result.throttled = type.find("ProvisionedThroughputExceeded") != std::string::npos ||
                     type.find("LimitExceeded") != std::string::npos || type.find("Throttling") != std::string::npos ||
                     status == 429;
  result.error =
      "HTTP " + std::to_string(status) + (type.empty() ? "" : " " + type) + (message.empty() ? "" : ": " + message);
  return result;
}

std::vector<std::size_t> KinesisSink::assign_lanes(const std::vector<Entry>& entries, std::size_t lanes) {
  // Devices by their number of entries, largest first (first seen first on
  // a tie), each to the least loaded lane: lanes finish together. The order
  // between batches is the forwarder's (one batch at a time), so a device
  // may take another lane in the next batch.
  std::vector<std::string_view> keys;
  std::unordered_map<std::string_view, std::size_t> count;
  for (const auto& e : entries) {
    if (count[e.partition_key]++ == 0) keys.push_back(e.partition_key);
  }
  std::stable_sort(keys.begin(), keys.end(), [&](auto a, auto b) { return count[a] > count[b]; });
  std::vector<std::size_t> load(lanes, 0);
  std::unordered_map<std::string_view, std::size_t> lane_of;
  for (const auto key : keys) {
    const auto l = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    lane_of[key] = l;
    load[l] += count[key];
  }
  std::vector<std::size_t> out;
  out.reserve(entries.size());
  for (const auto& e : entries)
    out.push_back(lane_of[e.partition_key]);
  return out;
}

forward::SendResult KinesisSink::send(const std::vector<buffer::Record>& batch) {
  forward::SendResult result;
  if (batch.empty()) return result;
  // Each device's Kinesis records of the batch go into one lane, in order;
  // lanes go at once, each on its own connection, so round trips overlap.
  // Only a batch that needs several calls is spread: a live batch that fits
  // one call stays one call.
  const auto& clients = impl_->clients;
  auto puts = entries(batch);
  const auto lane_count = std::min(clients.size(), calls(puts).size());
  const auto lane_of = assign_lanes(puts, lane_count);
  std::vector<std::vector<Entry>> lanes(lane_count);
  for (std::size_t p = 0; p < puts.size(); ++p)
    lanes[lane_of[p]].push_back(std::move(puts[p]));

  // Each record's outcome; what a failed call kept back stays kUnsent.
  // Lanes write disjoint elements.
  std::vector<forward::Outcome> outcome(batch.size(), forward::Outcome::kUnsent);
  struct LaneResult {
    bool ok = true;
    bool throttled = false;
    std::string error;
  };
  auto run_lane = [&](std::size_t l) {
    LaneResult r;
    const auto& mine = lanes[l];
    for (const auto& [begin, end] : calls(mine)) {
      const std::span<const Entry> call(mine.data() + begin, end - begin);
      forward::SendResult per_put;
      try {
        const auto response = impl_->post(*clients[l], put_records_body(call));
        per_put = interpret(response.status, response.body, call.size());
      } catch (const std::exception& e) {
        per_put.batch = forward::Outcome::kRetry;
        per_put.error = std::string("PutRecords to ") + impl_->url() + ": " + e.what();
      }
      for (std::size_t p = 0; p < call.size(); ++p) {
        const auto o = per_put.outcome_of(p);
        r.ok = r.ok && o == forward::Outcome::kOk;
        for (auto i : call[p].records)
          outcome[i] = o;
      }
      if (!r.ok) {
        // The lane's later calls are not sent: its failed records go again
        // before any later reading of their devices (docs/sinks.md).
        r.throttled = per_put.throttled;
        r.error = per_put.error;
        return r;
      }
    }
    return r;
  };
  std::vector<std::future<LaneResult>> others;
  for (std::size_t l = 1; l < lanes.size(); ++l) {
    if (!lanes[l].empty()) others.push_back(std::async(std::launch::async, run_lane, l));
  }
  std::vector<LaneResult> results;
  results.push_back(run_lane(0));
  for (auto& f : others)
    results.push_back(f.get());

  bool everything_ok = true;
  for (const auto& r : results) {
    if (r.ok) continue;
    everything_ok = false;
    if (result.error.empty()) result.error = r.error;
    result.throttled = result.throttled || r.throttled;
  }
  if (everything_ok) return result;
  if (std::all_of(outcome.begin(), outcome.end(), [](auto o) { return o == forward::Outcome::kRetry; })) {
    result.batch = forward::Outcome::kRetry;  // every call failed whole
  } else {
    result.per_record = std::move(outcome);
  }
  return result;
}

}  // namespace tidegate::sinks
