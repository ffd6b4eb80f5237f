// Per-record processing on the way out: the interface every processor kind
// (filter, enrich, rename, convert, redact, lua, ...) implements. A sink's
// forwarder runs its chain on each record it reads, after the buffer and
// before the sink: the buffer keeps what the sources delivered, untouched,
// so a rewind replays history through today's chain.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "tidegate/buffer/record.h"
#include "tidegate/processing/json_view.h"

namespace tidegate::processing {

// Fields keep the order the sensor sent them in.
using Json = nlohmann::ordered_json;

// One record on its way through a chain. The payload is read at most once:
// as a JsonView (the fast path: tokens and edits, written back in one pass)
// by processors that have one, or as a full document (nlohmann) by those
// that need it or when the view cannot answer; a view is turned into a
// document once, with its edits. Changes are written back once, after the
// last processor.
class Message {
 public:
  // `scratch`: a view whose buffers are reused record after record (the
  // chain's); without one the message has its own.
  explicit Message(buffer::Record& record, JsonView* scratch = nullptr)
      : record_(record), view_(scratch ? scratch : &own_view_) {}

  buffer::Record& record() { return record_; }
  const buffer::Record& record() const { return record_; }

  // The fast path: the payload as a view, or nullptr when the caller must
  // use fields() (the payload is not a JSON object, which fields() then
  // reports, or the view cannot represent it, or fields() was used).
  JsonView* view();
  // The payload's JSON object, or nullptr with `error` set (not JSON, or
  // JSON that is not an object: such payloads have no fields).
  Json* fields(std::string& error);
  // Call after changing what fields() returned.
  void fields_changed() { dirty_ = true; }
  // Before a processor changes the record's own fields (payload bytes,
  // topic, device, content type; not through fields()): keeps the record as
  // it was, so that a dead letter later in the chain stores the original.
  void keep_original();
  // The record as it was before the chain, if keep_original() saved it.
  const std::optional<buffer::Record>& original() const { return original_; }
  // The payload was replaced as bytes (redact of raw text, Lua): a parsed
  // copy is stale.
  void payload_replaced();
  // Writes changes back into the payload (compact JSON). The chain calls it
  // once after the last processor.
  void finish();

 private:
  enum class Mode { kUnread, kView, kDocument, kNoFields };
  void parse_document(std::string_view text);

  buffer::Record& record_;
  JsonView own_view_;
  JsonView* view_;
  Mode mode_ = Mode::kUnread;
  std::optional<buffer::Record> original_;
  std::optional<Json> doc_;
  std::string parse_error_;
  bool dirty_ = false;
};

struct Verdict {
  enum class Kind {
    kPass,        // on to the next processor, then the sink
    kDrop,        // filtered out on purpose: not sent, not a dead letter
    kDeadLetter,  // cannot be processed (bad JSON, type mismatch, Lua error)
  };
  Kind kind = Kind::kPass;
  std::string reason;  // for kDeadLetter

  static Verdict pass() { return {}; }
  static Verdict drop() { return {Kind::kDrop, {}}; }
  static Verdict dead_letter(std::string why) { return {Kind::kDeadLetter, std::move(why)}; }
};

class Processor {
 public:
  virtual ~Processor() = default;
  // Called by one thread at a time (the sink's forwarder or its read-ahead,
  // never both at once); an instance belongs to one sink.
  // Failures are verdicts; an exception that escapes is caught by the chain
  // and dead-letters the record with its text.
  virtual Verdict process(Message& message) = 0;
};

}  // namespace tidegate::processing
