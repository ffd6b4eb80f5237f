// Reshaping a record's JSON fields: rename, drop some, keep only some.
// Field names are dotted paths ("meta.room"). A payload that is not a JSON
// object is dead-lettered (these processors need fields).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tidegate/processing/processor.h"

namespace tidegate::processors {

struct RenameOptions {
  std::string name;
  std::string files_read;
  std::vector<std::pair<std::string, std::string>> renames;  // from -> to, in order
};

class Rename : public processing::Processor {
 public:
  explicit Rename(const RenameOptions& o) : opts_(o) {}
  processing::Verdict process(processing::Message& message) override;

 private:
  RenameOptions opts_;
};

struct FieldListOptions {
  std::string name;
  std::string files_read;
  std::vector<std::string> fields;
};

class DropFields : public processing::Processor {
 public:
  explicit DropFields(const FieldListOptions& o) : opts_(o) {}
  processing::Verdict process(processing::Message& message) override;

 private:
  FieldListOptions opts_;
};

class KeepFields : public processing::Processor {
 public:
  explicit KeepFields(const FieldListOptions& o) : opts_(o) {}
  processing::Verdict process(processing::Message& message) override;

 private:
  FieldListOptions opts_;
};

}  // namespace tidegate::processors
