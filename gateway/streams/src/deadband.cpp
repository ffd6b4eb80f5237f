#include "tidegate/streams/deadband.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tidegate::streams {
namespace {

using Json = nlohmann::json;

Json values_json(const std::vector<std::optional<double>>& values) {
  Json list = Json::array();
  for (const auto& v : values) list.push_back(v ? Json(*v) : Json(nullptr));
  return list;
}

std::vector<std::optional<double>> values_from(const Json& list) {
  std::vector<std::optional<double>> out;
  for (const auto& v : list) out.push_back(v.is_null() ? std::nullopt : std::optional<double>(v.get<double>()));
  return out;
}

}  // namespace

Deadband::Deadband(DeadbandOptions options) : o_(std::move(options)), reader_(o_.fields, o_.group_by) {
  inputs_ = declare("inputs_total", "Records it judged (at least one of its fields held a number).");
  no_fields_ = declare("no_fields_total",
                       "Records it passed over: none of its fields held a number, or the payload is not a JSON object.");
  reported_ = declare("reported_total", "Records sent on because a field left its band (or the device was new).");
  confirmations_ = declare("confirmations_total",
                           "Records sent on because max_silence passed: the newest reading held back, still in band.");
  suppressed_ = declare("suppressed_total", "Records held back: every field within its band.");
  over_limit_ = declare("devices_over_limit_total",
                        "Records dropped because max_devices devices already had state.", true);
}

void Deadband::clear() {
  devices_.clear();
  dirty_.clear();
  next_deadline_ns_ = 0;
}

bool Deadband::leaves_band(const Device& d) const {
  for (std::size_t i = 0; i < values_.size(); ++i) {
    if (!values_[i]) continue;
    if (!d.reported[i]) return true;  // a field not reported before
    const double threshold = std::max(o_.band, o_.band_percent / 100.0 * std::fabs(*d.reported[i]));
    if (std::fabs(*values_[i] - *d.reported[i]) > threshold) return true;
  }
  return false;
}

void Deadband::report(const std::string& key, Device& d, const buffer::Record& r,
                      const std::vector<std::optional<double>>& v, std::int64_t at_ns,
                      std::vector<buffer::NewRecord>& out) {
  buffer::NewRecord copy = r;  // the reading as it came: payload, topic, device, times
  copy.only_sink.clear();
  out.push_back(std::move(copy));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i]) d.reported[i] = v[i];
  }
  d.reported_ns = at_ns;
  d.held.reset();
  d.held_values.clear();
  dirty_.insert(key);
}

void Deadband::feed(const buffer::Record& r, std::vector<buffer::NewRecord>& out) {
  const bool object = reader_.read(r.payload, values_);
  if (!object || std::none_of(values_.begin(), values_.end(), [](const auto& v) { return v.has_value(); })) {
    count(no_fields_);
    return;
  }
  const std::string key = device_key(r, o_.per_topic, reader_.groups());
  Device* found = admit(devices_, key, o_.max_devices, over_limit_);
  if (!found) return;
  Device& d = *found;
  if (d.reported.empty()) d.reported.assign(o_.fields.size(), std::nullopt);
  count(inputs_);
  if (leaves_band(d)) {
    count(reported_);
    report(key, d, r, values_, r.ingest_ns, out);
  } else if (o_.max_silence_ns > 0 && r.ingest_ns - d.reported_ns >= o_.max_silence_ns) {
    count(confirmations_);
    report(key, d, r, values_, r.ingest_ns, out);
  } else {
    count(suppressed_);
    d.held = r;
    d.held_values = values_;
    dirty_.insert(key);
  }
}

void Deadband::tick(std::int64_t now_ns, bool caught_up, std::vector<buffer::NewRecord>& out) {
  next_deadline_ns_ = 0;
  if (!caught_up || o_.max_silence_ns <= 0) return;
  for (auto& [key, d] : devices_) {
    if (!d.held) continue;
    const std::int64_t due = d.reported_ns + o_.max_silence_ns;
    if (now_ns >= due) {
      count(confirmations_);
      const buffer::Record held = *d.held;
      const auto values = d.held_values;
      report(key, d, held, values, now_ns, out);
    } else if (next_deadline_ns_ == 0 || due < next_deadline_ns_) {
      next_deadline_ns_ = due;
    }
  }
}

void Deadband::changes(std::vector<buffer::StateChange>& out) {
  for (const auto& key : dirty_) {
    auto it = devices_.find(key);
    if (it == devices_.end()) {
      out.push_back({"d/" + key, std::nullopt});
      continue;
    }
    const Device& d = it->second;
    Json j = {{"rep", values_json(d.reported)}, {"at", d.reported_ns}};
    if (d.held) {
      const auto& h = *d.held;
      j["held"] = {{"seq", h.seq},           {"ingest", h.ingest_ns},   {"synced", h.clock_synced},
                   {"source", h.source},     {"key", h.partition_key},  {"topic", h.topic},
                   {"payload", Json::binary(std::vector<std::uint8_t>(h.payload.begin(), h.payload.end()))},
                   {"ct", h.content_type},   {"values", values_json(d.held_values)}};
      if (h.device_ts_ns) j["held"]["dts"] = *h.device_ts_ns;
    }
    // CBOR: the held payload is bytes as received, not always UTF-8 text.
    const auto bytes = Json::to_cbor(j);
    out.push_back({"d/" + key, std::string(bytes.begin(), bytes.end())});
  }
  dirty_.clear();
}

void Deadband::restore(const std::string& key, const std::string& value) {
  if (key.rfind("d/", 0) != 0) throw std::runtime_error("unknown key");
  const Json j = Json::from_cbor(value);
  Device d;
  d.reported = values_from(j.at("rep"));
  if (d.reported.size() != o_.fields.size()) throw std::runtime_error("field count differs");
  d.reported_ns = j.at("at").get<std::int64_t>();
  if (j.contains("held")) {
    const auto& h = j.at("held");
    buffer::Record r;
    r.seq = h.at("seq").get<std::uint64_t>();
    r.ingest_ns = h.at("ingest").get<std::int64_t>();
    r.clock_synced = h.at("synced").get<bool>();
    r.source = h.at("source").get<std::string>();
    r.partition_key = h.at("key").get<std::string>();
    r.topic = h.at("topic").get<std::string>();
    const auto& bin = h.at("payload").get_binary();
    r.payload.assign(bin.begin(), bin.end());
    r.content_type = h.at("ct").get<std::string>();
    if (h.contains("dts")) r.device_ts_ns = h.at("dts").get<std::int64_t>();
    d.held = std::move(r);
    d.held_values = values_from(h.at("values"));
  }
  devices_[key.substr(2)] = std::move(d);
}

}  // namespace tidegate::streams
