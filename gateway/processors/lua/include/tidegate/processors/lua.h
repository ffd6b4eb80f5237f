// [[processors.lua]]: a Lua 5.4 function called for each record, for what
// the built-in processors do not cover. Sandboxed: only the base functions
// without file or code loading, and string, table, math and utf8; no io,
// os, package, debug, require, load, dofile or string.dump. Each call has
// an instruction budget and the state a memory cap; an error, a budget
// overrun or running out of memory dead-letters that record with the
// reason, and the state carries on for the next record.
//
// The function gets a table: topic, device, source, content_type, payload
// (the bytes), fields (the JSON object as a table, or nil if the payload is
// not a JSON object), seq, ingest_ns. It returns the table (changed or
// not) to send the record, or nil/false to drop it. A returned `fields`
// table becomes the payload as JSON; otherwise a changed `payload` is sent
// as it is. JSON null reads as nil (the field disappears if written back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "tidegate/processing/processor.h"

namespace tidegate::processors {

struct LuaOptions {
  std::string name;
  std::string files_read;
  std::string script;          // the source (from `script` or `script_file`)
  std::string chunk_name;      // for error messages: the file or "script"
  std::string function = "process";
  std::uint64_t instruction_limit = 1'000'000;  // per record
  std::size_t memory_limit = 8u << 20;          // bytes, the whole state
};

class LuaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One sandboxed state with the script loaded. Throws LuaError if the
// script does not compile, fails when run, or lacks the function.
class LuaSandbox {
 public:
  explicit LuaSandbox(const LuaOptions& options);
  ~LuaSandbox();
  LuaSandbox(const LuaSandbox&) = delete;
  LuaSandbox& operator=(const LuaSandbox&) = delete;

  processing::Verdict call(processing::Message& message);
  std::size_t memory_in_use() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

class Lua : public processing::Processor {
 public:
  explicit Lua(const LuaOptions& options) : sandbox_(options) {}
  processing::Verdict process(processing::Message& message) override { return sandbox_.call(message); }

 private:
  LuaSandbox sandbox_;
};

}  // namespace tidegate::processors
