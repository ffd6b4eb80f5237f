#include "tidegate/sinks/kinesis_sink.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "tidegate/net/http_client.h"
#include "tidegate/proto/envelope.h"
#include "tidegate/proto/json.h"
#include "tidegate/sinks/kpl.h"

namespace tidegate::sinks {

struct KinesisSink::Impl {
  KinesisSinkOptions opts;
  std::optional<net::HttpClient> client;

  std::string url() const { return client ? client->url().text() : opts.endpoint; }

  // One signed PutRecords call; throws net::HttpError on a network failure.
  net::HttpResponse post(const std::string& body) {
    const std::string amz_date = sigv4::amz_date_now();
    sigv4::Request req;
    req.method = "POST";
    req.payload = body;
    req.headers = {{"host", client->url().host_header()},
                   {"content-type", "application/x-amz-json-1.1"},
                   {"x-amz-date", amz_date},
                   {"x-amz-target", "Kinesis_20131202.PutRecords"}};
    if (!opts.credentials.session_token.empty()) {
      req.headers.emplace_back("x-amz-security-token", opts.credentials.session_token);
    }
    const auto signature = sigv4::sign(req, opts.credentials, opts.region, "kinesis", amz_date);
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : req.headers) {
      if (h.first != "host") headers.push_back(h);  // the client sets Host itself, to the same value
    }
    headers.emplace_back("authorization", signature.authorization);
    return client->post(headers, body);
  }
};

KinesisSink::KinesisSink(KinesisSinkOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  const std::string endpoint =
      impl_->opts.endpoint.empty() ? "https://kinesis." + impl_->opts.region + ".amazonaws.com" : impl_->opts.endpoint;
  impl_->client.emplace(net::Url::parse(endpoint), impl_->opts.timeout, impl_->opts.ca_file);
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
  return "Kinesis stream " + impl_->opts.stream + " at " + impl_->url();
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

std::string KinesisSink::put_records_body(const std::vector<Entry>& entries) const {
  std::string body = "{\"StreamName\":" + proto::json::quote(impl_->opts.stream) + ",\"Records\":[";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) body += ',';
    body += "{\"Data\":\"" + proto::json::base64(entries[i].data) +
            "\",\"PartitionKey\":" + proto::json::quote(entries[i].partition_key) + "}";
  }
  body += "]}";
  return body;
}

forward::SendResult KinesisSink::interpret(int status, const std::string& body, std::size_t records) const {
  forward::SendResult result;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (status == 200) {
    if (doc.is_discarded() || !doc.contains("Records") || !doc["Records"].is_array() ||
        doc["Records"].size() != records) {
      result.batch = forward::Outcome::kRetry;
      result.error = "PutRecords answered 200 with an unexpected body";
      return result;
    }
    const auto failed = doc.value("FailedRecordCount", 0);
    if (failed == 0) return result;
    result.per_record.assign(records, forward::Outcome::kOk);
    for (std::size_t i = 0; i < records; ++i) {
      const auto& r = doc["Records"][i];
      if (!r.contains("ErrorCode")) continue;
      // Both documented per-record errors are transient.
      const std::string code = r["ErrorCode"].get<std::string>();
      result.per_record[i] = forward::Outcome::kRetry;
      if (code == "ProvisionedThroughputExceededException") result.throttled = true;
      if (result.error.empty()) result.error = code + ": " + r.value("ErrorMessage", "");
    }
    result.error = std::to_string(failed) + " of " + std::to_string(records) + " records failed (" + result.error + ")";
    return result;
  }
  // The whole call failed. Nothing here is the records' fault (sizes were
  // checked before sending), so everything is retried; throttling also
  // slows down.
  const std::string type = doc.is_discarded() ? "" : doc.value("__type", "");
  const std::string message = doc.is_discarded() ? body.substr(0, 200) : doc.value("message", doc.value("Message", ""));
  result.batch = forward::Outcome::kRetry;
  result.throttled = type.find("ProvisionedThroughputExceeded") != std::string::npos ||
                     type.find("LimitExceeded") != std::string::npos || type.find("Throttling") != std::string::npos ||
                     status == 429;
  result.error =
      "HTTP " + std::to_string(status) + (type.empty() ? "" : " " + type) + (message.empty() ? "" : ": " + message);
  return result;
}

forward::SendResult KinesisSink::send(const std::vector<buffer::Record>& batch) {
  forward::SendResult result;
  if (batch.empty()) return result;
  const auto puts = entries(batch);
  const auto spans = calls(puts);
  // Each record's outcome; what a failed call did not reach stays kRetry.
  std::vector<forward::Outcome> outcome(batch.size(), forward::Outcome::kRetry);
  bool everything_ok = true;
  for (const auto& [begin, end] : spans) {
    const std::vector<Entry> call(puts.begin() + static_cast<std::ptrdiff_t>(begin),
                                  puts.begin() + static_cast<std::ptrdiff_t>(end));
    forward::SendResult per_put;
    try {
      const auto response = impl_->post(put_records_body(call));
      per_put = interpret(response.status, response.body, call.size());
    } catch (const std::exception& e) {
      per_put.batch = forward::Outcome::kRetry;
      per_put.error = std::string("PutRecords to ") + impl_->url() + ": " + e.what();
    }
    bool call_ok = true;
    for (std::size_t p = 0; p < call.size(); ++p) {
      const auto o = per_put.outcome_of(p);
      call_ok = call_ok && o == forward::Outcome::kOk;
      for (auto i : call[p].records)
        outcome[i] = o;
    }
    if (call_ok) continue;
    // The calls after a failure are not sent: the failed records go again
    // before any later reading of theirs (the ordering docs/sinks.md gives).
    everything_ok = false;
    result.error = per_put.error;
    result.throttled = per_put.throttled;
    break;
  }
  if (everything_ok) return result;
  if (std::all_of(outcome.begin(), outcome.end(), [](auto o) { return o == forward::Outcome::kRetry; })) {
    result.batch = forward::Outcome::kRetry;  // nothing landed
  } else {
    result.per_record = std::move(outcome);
  }
  return result;
}

}  // namespace tidegate::sinks
