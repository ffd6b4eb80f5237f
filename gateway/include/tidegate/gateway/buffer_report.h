// Buffer figures as JSON, for `tidegate buffer stats` and the status API.
#pragma once

#include <string>

#include "tidegate/buffer/buffer.h"

namespace tidegate::gateway {

std::string stats_json(const buffer::BufferStats& stats);

}  // namespace tidegate::gateway
