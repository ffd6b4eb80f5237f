// A persistent QoS 1 subscriber on an upstream broker: what an MQTT sink
// published, each message parsed as its JSON envelope.
#pragma once

#include <mqtt/async_client.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tidegate::testing {

class UpstreamCollector : public ::mqtt::callback {
 public:
  explicit UpstreamCollector(const std::string& uri, const std::string& client_id = "collector",
                             const std::string& filter = "tidegate/#")
      : client_(uri, client_id, 0, nullptr) {
    client_.set_callback(*this);
    client_.connect(::mqtt::connect_options_builder().clean_session(false).finalize())->wait();
    client_.subscribe(filter, 1)->wait();
  }
  ~UpstreamCollector() override {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
  }
  void message_arrived(::mqtt::const_message_ptr msg) override {
    std::lock_guard lock(mu_);
    got_.push_back(nlohmann::json::parse(msg->to_string()));
  }
  std::vector<nlohmann::json> got() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  ::mqtt::async_client client_;
  std::mutex mu_;
  std::vector<nlohmann::json> got_;
};

}  // namespace tidegate::testing
