#include "tidegate/streams/window.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tidegate/common/text.h"

namespace tidegate::streams {
namespace {

using Json = nlohmann::json;

std::int64_t floor_to(std::int64_t t, std::int64_t step) {
  const std::int64_t q = t / step - (t % step < 0 ? 1 : 0);
  return q * step;
}

// Devices not heard from for this long, with no window left, are forgotten
// (their slot freed), at most once a minute.
constexpr std::int64_t kForgetScanNs = 60'000'000'000;
std::int64_t forget_after(const WindowOptions& o, std::int64_t horizon) {
  return std::max<std::int64_t>(3'600'000'000'000, 2 * (o.size_ns + o.allowed_lateness_ns + horizon));
}

// The group_by values for a topic: joined by '/', text as it is, other
// values as JSON.
std::string group_text(const nlohmann::ordered_json& group) {
  std::string out;
  for (const auto& [path, value] : group.items()) {
    if (!out.empty()) out += '/';
    out += value.is_string() ? value.get<std::string>() : value.dump();
  }
  return out;
}

}  // namespace

void FieldAggregate::add(double v, std::int64_t ts) {
  if (count == 0) {
    min = max = first = last = v;
    first_ts = last_ts = ts;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
    if (ts < first_ts) first = v, first_ts = ts;
    if (ts >= last_ts) last = v, last_ts = ts;
  }
  count += 1;
  sum += v;
  const double delta = v - mean;
  mean += delta / static_cast<double>(count);
  m2 += delta * (v - mean);
}

double FieldAggregate::stddev() const {
  return count > 1 ? std::sqrt(std::max(0.0, m2) / static_cast<double>(count - 1)) : 0.0;
}

Window::Window(WindowOptions options) : o_(std::move(options)), reader_(o_.fields, o_.group_by) {
  if (o_.hop_ns <= 0) o_.hop_ns = o_.size_ns;
  const auto& names = aggregate_names();
  wanted_.assign(names.size(), o_.aggregates.empty());
  for (const auto& a : o_.aggregates) {
    const auto it = std::find(names.begin(), names.end(), a);
    if (it != names.end()) wanted_[static_cast<std::size_t>(it - names.begin())] = true;
  }
  inputs_ = declare("inputs_total", "Records it aggregated (at least one of its fields held a number).");
  no_fields_ = declare("no_fields_total",
                       "Records it passed over: none of its fields held a number, or the payload is not a JSON object.");
  no_device_time_ = declare("no_device_time_total",
                            "Records it passed over: windows on device time, and the record carries no device time.");
  late_dropped_ = declare("late_dropped_total",
                          "Records that came after their window had closed (past the allowed lateness, or past the "
                          "correction horizon) and were dropped.",
                          true);
  corrections_ = declare("corrections_total", "Corrections emitted: a closed window again, with the late input added.");
  windows_ = declare("windows_total", "Windows emitted when they closed (corrections not counted).");
  over_limit_ = declare("devices_over_limit_total",
                        "Records dropped because max_devices devices already had state.", true);
}

void Window::clear() {
  devices_.clear();
  ingest_watermark_ = 0;
  watermark_dirty_ = false;
  earliest_close_ns_ = 0;
  dirty_.clear();
  revised_.clear();
  next_deadline_ns_ = 0;
}

void Window::feed(const buffer::Record& r, std::vector<buffer::NewRecord>& out) {
  std::int64_t ts = r.ingest_ns;
  if (o_.time == WindowTime::kDevice) {
    if (!r.device_ts_ns) {
      count(no_device_time_);
      return;
    }
    ts = *r.device_ts_ns;
  } else if (r.ingest_ns > ingest_watermark_) {
    ingest_watermark_ = r.ingest_ns;
    watermark_dirty_ = true;
  }
  const bool object = reader_.read(r.payload, values_);
  if (!object || std::none_of(values_.begin(), values_.end(), [](const auto& v) { return v.has_value(); })) {
    count(no_fields_);
  } else {
    const std::string key = device_key(r, o_.per_topic, reader_.groups());
    Device* found = admit(devices_, key, o_.max_devices, over_limit_);
    if (!found) return;
    Device& d = *found;
    if (d.device.empty()) {
      d.device = r.partition_key;
      if (o_.per_topic) d.topic = r.topic;
      d.group = nlohmann::ordered_json::object();
      for (std::size_t i = 0; i < o_.group_by.size(); ++i) d.group[o_.group_by[i]] = reader_.groups()[i];
    }
    const std::int64_t watermark = o_.time == WindowTime::kDevice ? d.watermark : ingest_watermark_;
    count(inputs_);
    bool late = false, kept_late = false;
    for (std::int64_t start = floor_to(ts, o_.hop_ns); start > ts - o_.size_ns; start -= o_.hop_ns) {
      const std::int64_t closes = start + o_.size_ns + o_.allowed_lateness_ns;
      Pane* pane = nullptr;
      if (closes > watermark) {
        pane = &d.open[start];
        if (o_.time == WindowTime::kIngest && (earliest_close_ns_ == 0 || closes < earliest_close_ns_))
          earliest_close_ns_ = closes;
      } else {
        late = true;
        if (o_.late != LatePolicy::kCorrect || closes + horizon() <= watermark) continue;
        pane = &d.closed[start];
        pane->revised = true;
        revised_.insert(key);
        kept_late = true;
      }
      if (pane->fields.empty()) pane->fields.resize(o_.fields.size());
      pane->inputs += 1;
      for (std::size_t i = 0; i < values_.size(); ++i) {
        if (values_[i]) pane->fields[i].add(*values_[i], ts);
      }
    }
    if (late && !kept_late) count(late_dropped_);
    d.last_ingest_ns = r.ingest_ns;
    if (o_.time == WindowTime::kDevice && ts >= d.watermark) {
      d.watermark = ts;
      d.offset_ns = r.ingest_ns - ts;
    }
    touch(key);
    if (o_.time == WindowTime::kDevice) close_through(key, d, d.watermark, out);
  }
  if (o_.time == WindowTime::kIngest && earliest_close_ns_ != 0 && ingest_watermark_ >= earliest_close_ns_) {
    close_all(out);
  }
}

void Window::close_all(std::vector<buffer::NewRecord>& out) {
  earliest_close_ns_ = 0;
  for (auto& [key, d] : devices_) {
    close_through(key, d, ingest_watermark_, out);
    if (!d.open.empty()) {
      const std::int64_t closes = d.open.begin()->first + o_.size_ns + o_.allowed_lateness_ns;
      if (earliest_close_ns_ == 0 || closes < earliest_close_ns_) earliest_close_ns_ = closes;
    }
  }
}

void Window::close_through(const std::string& key, Device& d, std::int64_t watermark,
                           std::vector<buffer::NewRecord>& out) {
  bool changed = false;
  while (!d.open.empty() && d.open.begin()->first + o_.size_ns + o_.allowed_lateness_ns <= watermark) {
    auto node = d.open.extract(d.open.begin());
    emit(d, node.key(), node.mapped(), out);
    count(windows_);
    if (o_.late == LatePolicy::kCorrect) d.closed.insert(std::move(node));
    changed = true;
  }
  while (!d.closed.empty() &&
         d.closed.begin()->first + o_.size_ns + o_.allowed_lateness_ns + horizon() <= watermark) {
    auto& [start, pane] = *d.closed.begin();
    if (pane.revised) {
      emit(d, start, pane, out);
      count(corrections_);
    }
    d.closed.erase(d.closed.begin());
    changed = true;
  }
  if (changed) touch(key);
}

double Window::rounded(double v) const {
  if (o_.decimals < 0) return v;
  const double scale = std::pow(10.0, o_.decimals);
  const double r = std::round(v * scale) / scale;
  return std::isfinite(r) ? r : v;  // too large to scale: already coarser than the decimals
}

void Window::emit(const Device& d, std::int64_t start, Pane& pane, std::vector<buffer::NewRecord>& out) {
  const auto& names = aggregate_names();
  nlohmann::ordered_json doc;
  doc["device"] = d.device;
  if (o_.per_topic) doc["topic"] = d.topic;
  if (!o_.group_by.empty()) doc["group"] = d.group;
  doc["window_start"] = utc_text(start);
  doc["window_end"] = utc_text(start + o_.size_ns);
  doc["time"] = o_.time == WindowTime::kIngest ? "ingest" : "device";
  doc["inputs"] = pane.inputs;
  if (pane.emitted > 0) doc["revision"] = pane.emitted;
  auto& fields = doc["fields"] = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < o_.fields.size(); ++i) {
    const auto& a = pane.fields[i];
    auto& f = fields[o_.fields[i]] = nlohmann::ordered_json::object();
    f["count"] = a.count;
    if (a.count == 0) continue;
    const double figures[] = {0, a.min, a.max, a.sum / static_cast<double>(a.count), a.sum, a.first, a.last,
                              a.stddev()};
    for (std::size_t k = 1; k < names.size(); ++k) {
      if (wanted_[k]) f[names[k]] = rounded(figures[k]);
    }
  }
  buffer::NewRecord r;
  r.partition_key = d.device;
  r.topic = o_.topic;
  common::replace_all(r.topic, "{name}", o_.name);
  common::replace_all(r.topic, "{device}", d.device);
  if (r.topic.find("{group}") != std::string::npos) common::replace_all(r.topic, "{group}", group_text(d.group));
  r.payload = doc.dump();
  r.content_type = "application/json";
  r.device_ts_ns = start + o_.size_ns;
  r.clock_synced = clock_sync_.synchronized();  // cached: not a system call per window
  out.push_back(std::move(r));
  pane.emitted += 1;
  pane.revised = false;
}

void Window::tick(std::int64_t now_ns, bool caught_up, std::vector<buffer::NewRecord>& out) {
  for (const auto& key : revised_) {
    auto it = devices_.find(key);
    if (it == devices_.end()) continue;
    for (auto& [start, pane] : it->second.closed) {
      if (!pane.revised) continue;
      emit(it->second, start, pane, out);
      count(corrections_);
    }
    touch(key);
  }
  revised_.clear();
  next_deadline_ns_ = 0;
  if (!caught_up) return;
  // Everything committed has been read: the clock stands in for input that
  // is not coming (a silent device, a quiet gateway).
  if (o_.time == WindowTime::kIngest) {
    if (earliest_close_ns_ != 0 && now_ns >= earliest_close_ns_) {
      ingest_watermark_ = std::max(ingest_watermark_, now_ns);
      watermark_dirty_ = true;
      close_all(out);
    }
    next_deadline_ns_ = earliest_close_ns_;
  } else {
    for (auto& [key, d] : devices_) {
      if (d.open.empty()) continue;
      // The device's clock, estimated from its newest record's offset.
      const std::int64_t closes = d.open.begin()->first + o_.size_ns + o_.allowed_lateness_ns;
      if (now_ns - d.offset_ns >= closes) {
        d.watermark = std::max(d.watermark, now_ns - d.offset_ns);
        close_through(key, d, d.watermark, out);
        touch(key);
      }
      if (!d.open.empty()) {
        const std::int64_t due = d.open.begin()->first + o_.size_ns + o_.allowed_lateness_ns + d.offset_ns;
        if (next_deadline_ns_ == 0 || due < next_deadline_ns_) next_deadline_ns_ = due;
      }
    }
  }
  if (now_ns >= next_forget_scan_ns_) {
    next_forget_scan_ns_ = now_ns + kForgetScanNs;
    const std::int64_t idle = forget_after(o_, horizon());
    for (auto it = devices_.begin(); it != devices_.end();) {
      const Device& d = it->second;
      if (d.open.empty() && d.closed.empty() && now_ns - d.last_ingest_ns > idle) {
        touch(it->first);
        it = devices_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void Window::changes(std::vector<buffer::StateChange>& out) {
  if (watermark_dirty_) out.push_back({"wm", std::to_string(ingest_watermark_)});
  watermark_dirty_ = false;
  for (const auto& key : dirty_) {
    auto it = devices_.find(key);
    if (it == devices_.end()) {
      out.push_back({"d/" + key, std::nullopt});
      continue;
    }
    const Device& d = it->second;
    auto panes = [](const std::map<std::int64_t, Pane>& m) {
      Json list = Json::array();
      for (const auto& [start, p] : m) {
        Json fields = Json::array();
        for (const auto& a : p.fields)
          fields.push_back({a.count, a.sum, a.min, a.max, a.first, a.first_ts, a.last, a.last_ts, a.mean, a.m2});
        list.push_back({start, p.inputs, p.emitted, p.revised, std::move(fields)});
      }
      return list;
    };
    Json j = {{"dev", d.device}, {"top", d.topic},           {"wm", d.watermark}, {"off", d.offset_ns},
              {"li", d.last_ingest_ns}, {"o", panes(d.open)}, {"c", panes(d.closed)}};
    if (!d.group.empty()) j["grp"] = d.group.dump();  // as text: keeps the order of group_by
    out.push_back({"d/" + key, j.dump()});
  }
  dirty_.clear();
}

void Window::restore(const std::string& key, const std::string& value) {
  if (key == "wm") {
    ingest_watermark_ = std::stoll(value);
    return;
  }
  if (key.rfind("d/", 0) != 0) throw std::runtime_error("unknown key");
  const Json j = Json::parse(value);
  Device d;
  d.device = j.at("dev").get<std::string>();
  d.topic = j.at("top").get<std::string>();
  d.watermark = j.at("wm").get<std::int64_t>();
  d.offset_ns = j.at("off").get<std::int64_t>();
  d.last_ingest_ns = j.at("li").get<std::int64_t>();
  d.group = j.contains("grp") ? nlohmann::ordered_json::parse(j.at("grp").get<std::string>())
                              : nlohmann::ordered_json::object();
  auto panes = [&](const Json& list, std::map<std::int64_t, Pane>& m) {
    for (const auto& p : list) {
      Pane pane;
      pane.inputs = p.at(1).get<std::uint64_t>();
      pane.emitted = p.at(2).get<std::uint32_t>();
      pane.revised = p.at(3).get<bool>();
      for (const auto& f : p.at(4)) {
        FieldAggregate a;
        a.count = f.at(0).get<std::uint64_t>();
        a.sum = f.at(1).get<double>();
        a.min = f.at(2).get<double>();
        a.max = f.at(3).get<double>();
        a.first = f.at(4).get<double>();
        a.first_ts = f.at(5).get<std::int64_t>();
        a.last = f.at(6).get<double>();
        a.last_ts = f.at(7).get<std::int64_t>();
        a.mean = f.at(8).get<double>();
        a.m2 = f.at(9).get<double>();
        pane.fields.push_back(a);
      }
      if (pane.fields.size() != o_.fields.size()) throw std::runtime_error("field count differs");
      m.emplace(p.at(0).get<std::int64_t>(), std::move(pane));
    }
  };
  panes(j.at("o"), d.open);
  panes(j.at("c"), d.closed);
  const std::string name = key.substr(2);
  for (const auto& [start, p] : d.closed) {
    if (p.revised) revised_.insert(name);
  }
  if (o_.time == WindowTime::kIngest && !d.open.empty()) {
    const std::int64_t closes = d.open.begin()->first + o_.size_ns + o_.allowed_lateness_ns;
    if (earliest_close_ns_ == 0 || closes < earliest_close_ns_) earliest_close_ns_ = closes;
  }
  devices_[name] = std::move(d);
}

}  // namespace tidegate::streams
