// The condition language of the filter processor, over a record's
// attributes and its JSON fields:
//
//   .temperature > 30 and topic =~ "^site/north/"
//   not exists(.badge) or device == "door-7"
//   (.status == "alarm" or .level >= 3) and content_type == "application/json"
//
// Operands: `.a.b` a JSON field (dotted path); `topic`, `device` (the
// partition key), `source`, `content_type`; "strings", numbers, true,
// false, null. Operators: == != < <= > >= =~ !~ (POSIX extended regex on
// the right), and/or/not, parentheses, exists(.field). A missing field is
// null: `.x == null` holds, `.x != 3` holds, `.x > 3` does not. Ordering
// different types (a string against a number) is a type mismatch: the
// record is dead-lettered with the reason, never silently dropped.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "tidegate/processing/processor.h"

namespace tidegate::processing {

class ConditionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Condition {
 public:
  // Throws ConditionError naming the position and what was expected.
  static Condition parse(const std::string& text);
  ~Condition();
  Condition(Condition&&) noexcept;
  Condition& operator=(Condition&&) noexcept;

  // True/false; nullopt with `error` set when the record cannot be judged
  // (fields needed but the payload is not a JSON object, type mismatch).
  std::optional<bool> evaluate(Message& message, std::string& error) const;
  // Whether it reads JSON fields (payloads that are not JSON then fail).
  bool uses_fields() const;
  const std::string& text() const { return text_; }

  struct Node;

 private:
  Condition() = default;
  std::string text_;
  std::unique_ptr<Node> root_;
};

}  // namespace tidegate::processing
