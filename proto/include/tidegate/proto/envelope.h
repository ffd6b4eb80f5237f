// The JSON form of a record, one object per line (JSON Lines), version 1:
//
//   {"gateway":"plant-3","seq":1042,"ingest_ns":...,"clock_synced":true,
//    "source":"local","partition_key":"d-7","topic":"sensors/d-7/t",
//    "device_ts_ns":null,"content_type":"application/json","payload":"{...}"}
//
// The payload is a JSON string when it is valid UTF-8 ("payload"), otherwise
// base64 ("payload_base64"), so any bytes survive. (gateway, seq) identifies
// the record for ever: consumers drop duplicates by it.
#pragma once

#include <string>
#include <string_view>

#include "tidegate/buffer/record.h"

namespace tidegate::proto {

// No trailing newline. An empty gateway id leaves the field out.
std::string record_json(const buffer::Record& record, std::string_view gateway_id = {});

// The same object appended to `out`, for encoders that build a whole batch in
// one buffer.
void append_record_json(std::string& out, const buffer::Record& record, std::string_view gateway_id = {});

}  // namespace tidegate::proto
