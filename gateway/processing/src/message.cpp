#include "tidegate/processing/processor.h"

namespace tidegate::processing {

Json* Message::fields(std::string& error) {
  if (!parsed_) {
    parsed_ = true;
    auto doc = Json::parse(record_.payload, nullptr, false);
    if (doc.is_discarded()) {
      parse_error_ = "the payload is not JSON";
    } else if (!doc.is_object()) {
      parse_error_ = "the payload is JSON but not an object: it has no fields";
    } else {
      doc_ = std::move(doc);
    }
  }
  if (!doc_) error = parse_error_;
  return doc_ ? &*doc_ : nullptr;
}

void Message::set_fields(Json object) {
  doc_ = std::move(object);
  parsed_ = true;
  dirty_ = true;
}

void Message::keep_original() {
  if (!original_) original_ = record_;
}

void Message::payload_replaced() {
  doc_.reset();
  parse_error_.clear();
  parsed_ = false;
  dirty_ = false;
}

void Message::finish() {
  if (!dirty_ || !doc_) return;
  // Invalid UTF-8 in a string is replaced (U+FFFD) rather than thrown on:
  // nlohmann parsed it, so it is valid, but a processor may have cut it.
  record_.payload = doc_->dump(-1, ' ', false, Json::error_handler_t::replace);
  dirty_ = false;
}

}  // namespace tidegate::processing
