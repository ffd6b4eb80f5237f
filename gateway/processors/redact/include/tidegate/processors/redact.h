// [[processors.redact]]: personal data (badge ids, names, MAC addresses)
// must not leave the site. Named fields and regex matches are removed,
// masked, or replaced by their HMAC-SHA256 under a key kept on the box, so
// a value stays joinable upstream (the same badge gives the same hash) but
// cannot be read back. Patterns apply to every string value of a JSON
// payload, or to the raw text of a payload that is not JSON (when no
// fields are named).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tidegate/processing/processor.h"
#include "tidegate/processing/regex.h"

namespace tidegate::processors {

// Lowercase hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

struct RedactOptions {
  std::string name;
  std::string files_read;
  std::vector<std::string> fields;
  std::vector<std::string> patterns;
  enum class Mode { kRemove, kMask, kHash } mode = Mode::kMask;
  std::string mask = "****";
  std::string key;  // kHash: read from key_file
};

class Redact : public processing::Processor {
 public:
  explicit Redact(const RedactOptions& o);
  processing::Verdict process(processing::Message& message) override;

 private:
  std::string replacement(std::string_view secret) const;
  bool redact_strings(processing::Json& node, int depth) const;
  bool redact_in_view(processing::JsonView& view) const;

  RedactOptions opts_;
  std::vector<processing::Regex> patterns_;
  std::string quoted_mask_;  // the mask as a JSON string
  mutable std::vector<std::pair<std::uint32_t, std::uint32_t>> found_;  // reused: key and value tokens
};

}  // namespace tidegate::processors
