#include "tidegate/processing/processor.h"

namespace tidegate::processing {
namespace {

const char* const kNotJson = "the payload is not JSON";
const char* const kNotObject = "the payload is JSON but not an object: it has no fields";

}  // namespace

void Message::parse_document(std::string_view text) {
  // nlohmann stops at a NUL byte as if the text ended there, so it would
  // take "{...}\0junk" for JSON and drop the rest; JSON has no raw NUL
  // anywhere (not even in a string), and the fast path refuses it too.
  if (text.find('\0') != std::string_view::npos) {
    parse_error_ = kNotJson;
    mode_ = Mode::kNoFields;
    return;
  }
  auto doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    parse_error_ = kNotJson;
    mode_ = Mode::kNoFields;
  } else if (!doc.is_object()) {
    parse_error_ = kNotObject;
    mode_ = Mode::kNoFields;
  } else {
    doc_ = std::move(doc);
    mode_ = Mode::kDocument;
  }
}

JsonView* Message::view() {
  if (mode_ == Mode::kUnread) {
    switch (view_->parse(record_.payload)) {
      case JsonView::Parse::kOk:
        mode_ = Mode::kView;
        break;
      case JsonView::Parse::kNotJson:
        parse_error_ = kNotJson;
        mode_ = Mode::kNoFields;
        break;
      case JsonView::Parse::kNotObject:
        parse_error_ = kNotObject;
        mode_ = Mode::kNoFields;
        break;
      case JsonView::Parse::kUnsupported:
        parse_document(record_.payload);
        break;
    }
  }
  return mode_ == Mode::kView ? view_ : nullptr;
}

Json* Message::fields(std::string& error) {
  if (mode_ == Mode::kUnread) {
    parse_document(record_.payload);
  } else if (mode_ == Mode::kView) {
    // From the fast path to the document, with the edits made so far.
    if (view_->edited()) {
      std::string text;
      view_->write(text);
      parse_document(text);
      dirty_ = true;
    } else {
      parse_document(record_.payload);
    }
  }
  if (mode_ != Mode::kDocument) error = parse_error_;
  return mode_ == Mode::kDocument ? &*doc_ : nullptr;
}

void Message::keep_original() {
  if (!original_) original_ = record_;
}

void Message::payload_replaced() {
  doc_.reset();
  parse_error_.clear();
  mode_ = Mode::kUnread;
  dirty_ = false;
}

void Message::finish() {
  if (mode_ == Mode::kView && view_->edited()) {
    view_->write_into(record_.payload);
  } else if (mode_ == Mode::kDocument && dirty_) {
    // Invalid UTF-8 in a string is replaced (U+FFFD) rather than thrown on:
    // nlohmann parsed it, so it is valid, but a processor may have cut it.
    record_.payload = doc_->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  dirty_ = false;
  mode_ = Mode::kUnread;
}

}  // namespace tidegate::processing
