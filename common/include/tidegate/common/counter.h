// A figure a source or sink exports beyond the common ones, declared by the
// plugin itself: /api/status, /metrics and the status page render these
// without knowing the kind.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tidegate::common {

struct Counter {
  enum class Type { kCounter, kGauge };
  std::string name;  // snake_case; /metrics: tidegate_<kind>_<role>_<name>, e.g. tidegate_mqtt_source_refused_total
  std::string help;  // one sentence, as Prometheus HELP and the page's tooltip
  double value = 0;
  Type type = Type::kCounter;
  // It means readings lost or refused: shown on the status page (when not
  // zero), not only on /metrics and /api/status.
  bool loss_or_refusal = false;
  // One of several samples of the same name, told apart by these labels
  // beside the plugin's own (e.g. {"device", "meter-7"}): /metrics labels,
  // the page's prefix.
  std::vector<std::pair<std::string, std::string>> labels = {};
};

}  // namespace tidegate::common
