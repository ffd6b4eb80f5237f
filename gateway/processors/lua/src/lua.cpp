// [[processors.lua]]: its keys; the sandbox is lua_sandbox.cpp.
#include <fstream>
#include <sstream>

#include "tidegate/plugins/processor_plugin.h"
#include "tidegate/processors/lua.h"

namespace tidegate::processors {
namespace {

void read_options(config::Section& s, LuaOptions& o) {
  const auto script = s.text("script", "",
                             "The Lua source, inline (a TOML multi-line literal string '''...'''). It defines the "
                             "function; code outside it runs once, when the sink starts.");
  const auto file = s.text("script_file", "", "Or a file holding the Lua source (read at start and on SIGHUP).");
  o.function = s.text("function", "process",
                      "The function called with each record's table; it returns the table to send, or nil/false "
                      "to drop the record.");
  o.instruction_limit = static_cast<std::uint64_t>(
      s.integer("instruction_limit", 1'000'000, 1000, 1'000'000'000,
                "Lua instructions per record, at most (counted in steps of 1,000); past it the record is "
                "dead-lettered. Time inside one library call (a pattern match) is not interrupted."));
  o.memory_limit = s.memory_size("memory_limit", 8u << 20,
                                 "Memory of the script's state, at most; a record whose processing needs more is "
                                 "dead-lettered.");
  auto& ctx = s.context();
  if (ctx.docs) return;
  if (script.empty() == file.empty()) {
    ctx.error(s.key_path("script"), "give either script or script_file");
    return;
  }
  if (!file.empty()) {
    if (!config::check_readable_file(ctx, s.key_path("script_file"), file, "Lua file")) return;
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    o.script = text.str();
    o.chunk_name = file;
    o.files_read = "\n# " + file + "\n" + o.script;
  } else {
    o.script = script;
    o.chunk_name = "processors." + o.name;
  }
  try {
    LuaSandbox check(o);  // compiles and runs the top level once, with the same limits
  } catch (const LuaError& e) {
    ctx.error(s.key_path(file.empty() ? "script" : "script_file"), e.what());
  }
}

}  // namespace
}  // namespace tidegate::processors

namespace tidegate::plugins {

ProcessorDescriptor lua_processor_plugin() {
  return processor_descriptor<processors::Lua, processors::LuaOptions>(
      "lua", "A sandboxed Lua 5.4 function per record, for what the built-in processors do not cover.",
      processors::read_options);
}

}  // namespace tidegate::plugins
