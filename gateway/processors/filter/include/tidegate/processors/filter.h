// [[processors.filter]]: keeps (or drops) the records a condition holds for
// (tidegate/processing/condition.h has the language). A record the
// condition cannot judge (fields needed but not JSON, a type mismatch) is
// dead-lettered with the reason.
#pragma once

#include <memory>
#include <string>

#include "tidegate/processing/condition.h"

namespace tidegate::processors {

struct FilterOptions {
  std::string name;
  std::string files_read;
  std::string condition;
  bool keep_matching = true;  // action = "keep"; false: "drop"
};

class Filter : public processing::Processor {
 public:
  explicit Filter(const FilterOptions& options);
  processing::Verdict process(processing::Message& message) override;

 private:
  processing::Condition condition_;
  bool keep_matching_;
};

}  // namespace tidegate::processors
