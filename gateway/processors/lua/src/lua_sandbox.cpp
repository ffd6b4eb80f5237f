// The Lua state behind [[processors.lua]]. Lua (Debian's build, compiled as
// C) raises errors with longjmp, so the code that runs under lua_pcall
// holds no C++ object with a destructor (JSON is walked by index), and the
// code outside it uses only API calls that cannot raise: with the memory cap
// lifted while the gateway itself builds or reads tables, only a real
// out-of-memory can.
#include <lua.hpp>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tidegate/processors/lua.h"
#include "tidegate/proto/json.h"

namespace tidegate::processors {

using processing::Json;
using processing::Verdict;

struct LuaSandbox::State {
  lua_State* L = nullptr;
  std::size_t used = 0;
  std::size_t limit = 0;
  bool enforce_limit = false;
  std::uint64_t steps = 0;        // hook calls in this call
  std::uint64_t step_budget = 1;  // hook calls allowed per call
  int function_ref = LUA_NOREF;
  LuaOptions opts;
  std::string text;  // the returned fields as JSON
};

namespace {

using State = LuaSandbox::State;
constexpr int kHookEvery = 1000;  // instructions between budget checks
constexpr int kMaxDepth = 100;

void* allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* s = static_cast<State*>(ud);
  if (!ptr) osize = 0;  // then osize is the kind of object, not a size
  if (nsize == 0) {
    std::free(ptr);
    s->used -= osize;
    return nullptr;
  }
  if (s->enforce_limit && nsize > osize && s->used + (nsize - osize) > s->limit) return nullptr;
  void* p = std::realloc(ptr, nsize);
  if (p) s->used = s->used - osize + nsize;
  return p;
}

State* state_of(lua_State* L) { return *static_cast<State**>(lua_getextraspace(L)); }

void count_hook(lua_State* L, lua_Debug*) {
  State* s = state_of(L);
  if (++s->steps <= s->step_budget) return;
  // Check every instruction from now on, so a script that catches this
  // error with pcall meets it again at its next instruction.
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "instruction budget of %I exceeded", static_cast<lua_Integer>(s->opts.instruction_limit));
}

// Only what a record transformation needs; nothing that reaches files,
// the OS, other code or the collector.
void open_sandbox(lua_State* L) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_settop(L, 0);
  for (const char* name : {"dofile", "loadfile", "load", "require", "collectgarbage", "print", "setmetatable"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_settop(L, 0);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);  // no package.loaded to reach modules through
}

// JSON onto the Lua stack. Runs under lua_pcall: no destructors here.
void push_json(lua_State* L, const Json& v, int depth) {
  if (depth > kMaxDepth || !lua_checkstack(L, 3)) luaL_error(L, "the payload is nested too deeply");
  switch (v.type()) {
    case Json::value_t::object: {
      const auto& obj = v.get_ref<const Json::object_t&>();
      lua_createtable(L, 0, static_cast<int>(obj.size()));
      for (std::size_t i = 0; i < obj.size(); ++i) {
        const auto& entry = *(obj.begin() + static_cast<std::ptrdiff_t>(i));
        lua_pushlstring(L, entry.first.data(), entry.first.size());
        push_json(L, entry.second, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    case Json::value_t::array: {
      const auto& arr = v.get_ref<const Json::array_t&>();
      lua_createtable(L, static_cast<int>(arr.size()), 0);
      for (std::size_t i = 0; i < arr.size(); ++i) {
        push_json(L, arr[i], depth + 1);
        lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
      }
      break;
    }
    case Json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case Json::value_t::boolean:
      lua_pushboolean(L, v.get<bool>());
      break;
    case Json::value_t::number_integer:
      lua_pushinteger(L, static_cast<lua_Integer>(v.get<std::int64_t>()));
      break;
    case Json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(LUA_MAXINTEGER)) {
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      } else {
        lua_pushnumber(L, static_cast<lua_Number>(u));
      }
      break;
    }
    case Json::value_t::number_float:
      lua_pushnumber(L, static_cast<lua_Number>(v.get<double>()));
      break;
    default:
      lua_pushnil(L);  // null
  }
}

// The same from the fast path's tokens, without building a document.
void push_view(lua_State* L, const processing::JsonView& v, std::uint32_t t, int depth) {
  using Type = processing::JsonView::Type;
  if (depth > kMaxDepth || !lua_checkstack(L, 3)) luaL_error(L, "the payload is nested too deeply");
  switch (v.type(t)) {
    case Type::kObject: {
      int n = 0;
      for (std::uint32_t k = t + 1; k < v.after(t); k = v.after(k + 1)) ++n;
      lua_createtable(L, 0, n);
      for (std::uint32_t k = t + 1; k < v.after(t); k = v.after(k + 1)) {
        const auto key = v.raw(k);  // keys are never escaped in a view
        lua_pushlstring(L, key.data(), key.size());
        push_view(L, v, k + 1, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    case Type::kArray: {
      int n = 0;
      for (std::uint32_t c = t + 1; c < v.after(t); c = v.after(c)) ++n;
      lua_createtable(L, n, 0);
      lua_Integer i = 0;
      for (std::uint32_t c = t + 1; c < v.after(t); c = v.after(c)) {
        push_view(L, v, c, depth + 1);
        lua_rawseti(L, -2, ++i);
      }
      break;
    }
    case Type::kString: {
      if (!v.escaped(t)) {
        const auto s = v.raw(t);
        lua_pushlstring(L, s.data(), s.size());
        break;
      }
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      v.decode(t, [&](char c) { luaL_addchar(&b, c); });
      luaL_pushresult(&b);
      break;
    }
    case Type::kNumber: {
      std::int64_t i = 0;
      double d = 0;
      if (v.integer(t, i)) {
        lua_pushinteger(L, static_cast<lua_Integer>(i));
      } else if (v.number(t, d)) {
        lua_pushnumber(L, static_cast<lua_Number>(d));
      } else {
        luaL_error(L, "a number in the payload is out of range");
      }
      break;
    }
    case Type::kTrue:
    case Type::kFalse:
      lua_pushboolean(L, v.type(t) == Type::kTrue);
      break;
    case Type::kNull:
      lua_pushnil(L);
      break;
  }
}

void set_string(lua_State* L, const char* key, const std::string& value) {
  lua_pushlstring(L, value.data(), value.size());
  lua_setfield(L, -2, key);
}

struct CallInput {
  const buffer::Record* record;
  const processing::JsonView* view;  // the fields from the fast path, or
  const Json* fields;                // from the document; both nullptr: not a JSON object
};

// Under lua_pcall: builds the record table and calls the function; its
// result stays on the stack.
int call_protected(lua_State* L) {
  auto* in = static_cast<CallInput*>(lua_touserdata(L, 1));
  State* s = state_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->function_ref);
  lua_createtable(L, 0, 8);
  set_string(L, "topic", in->record->topic);
  set_string(L, "device", in->record->partition_key);
  set_string(L, "source", in->record->source);
  set_string(L, "content_type", in->record->content_type);
  set_string(L, "payload", in->record->payload);
  lua_pushinteger(L, static_cast<lua_Integer>(in->record->seq));
  lua_setfield(L, -2, "seq");
  lua_pushinteger(L, static_cast<lua_Integer>(in->record->ingest_ns));
  lua_setfield(L, -2, "ingest_ns");
  if (in->view) {
    push_view(L, *in->view, 0, 0);
    lua_setfield(L, -2, "fields");
  } else if (in->fields) {
    push_json(L, *in->fields, 0);
    lua_setfield(L, -2, "fields");
  }
  // The script's own run: counted and capped.
  s->steps = 0;
  s->enforce_limit = true;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, kHookEvery);
  lua_call(L, 1, 1);
  return 1;
}

const char* type_name(lua_State* L, int idx) { return lua_typename(L, lua_type(L, idx)); }

// A Lua value (at idx) written as compact JSON text, straight from the
// table (no document in between; fields in Lua's order). Outside lua_pcall:
// only calls that cannot raise (the memory cap is lifted). Throws LuaError
// for what JSON cannot hold.
void write_json(lua_State* L, int idx, int depth, std::string& out) {
  if (depth > kMaxDepth || !lua_checkstack(L, 4)) {
    throw LuaError("the returned fields are nested too deeply (a table that contains itself?)");
  }
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      out += "null";
      return;
    case LUA_TBOOLEAN:
      out += lua_toboolean(L, idx) != 0 ? "true" : "false";
      return;
    case LUA_TNUMBER: {
      char text[40];
      if (lua_isinteger(L, idx)) {
        const auto [end, ec] = std::to_chars(text, text + sizeof text, static_cast<std::int64_t>(lua_tointeger(L, idx)));
        out.append(text, end);
        return;
      }
      const double d = static_cast<double>(lua_tonumber(L, idx));
      if (!std::isfinite(d)) throw LuaError("a returned field is not a finite number");
      const auto [end, ec] = std::to_chars(text, text + sizeof text, d);  // shortest that reads back the same
      out.append(text, end);
      // A float stays a float: 21.0 is written "21.0", not "21".
      if (std::string_view(text, static_cast<std::size_t>(end - text)).find_first_of(".e") == std::string_view::npos) {
        out += ".0";
      }
      return;
    }
    case LUA_TSTRING: {
      std::size_t len = 0;
      const char* p = lua_tolstring(L, idx, &len);
      if (!proto::json::append_quoted_if_utf8(out, std::string_view(p, len))) {
        throw LuaError("a returned string is not valid UTF-8, which JSON text must be");
      }
      return;
    }
    case LUA_TTABLE: {
      // A list is a table whose keys are exactly 1..n: counted only when it
      // has a 1 (a table of named fields is walked once, below).
      const auto n = lua_rawlen(L, idx);
      std::size_t count = 0;
      if (n > 0) {
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
          ++count;
          lua_pop(L, 1);
        }
      }
      if (n > 0 && count == n) {
        out += '[';
        for (lua_Unsigned i = 1; i <= n; ++i) {
          if (i > 1) out += ',';
          lua_rawgeti(L, idx, static_cast<lua_Integer>(i));
          write_json(L, -1, depth + 1, out);
          lua_pop(L, 1);
        }
        out += ']';
        return;
      }
      out += '{';
      bool first = true;
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
          lua_pop(L, 2);
          throw LuaError("a returned table mixes a list with named fields");
        }
        if (!first) out += ',';
        first = false;
        std::size_t len = 0;
        const char* key = lua_tolstring(L, -2, &len);  // a string already: no conversion
        if (!proto::json::append_quoted_if_utf8(out, std::string_view(key, len))) {
          lua_pop(L, 2);
          throw LuaError("a returned field name is not valid UTF-8, which JSON text must be");
        }
        out += ':';
        write_json(L, -1, depth + 1, out);
        lua_pop(L, 1);
      }
      out += '}';
      return;
    }
    default:
      throw LuaError(std::string("a returned field is a ") + type_name(L, idx) + ", which JSON cannot hold");
  }
}

// t[key] as a string, if it is one (raw access: no metamethods).
std::optional<std::string> string_field(lua_State* L, int table, const char* key) {
  lua_pushstring(L, key);
  lua_rawget(L, table);
  std::optional<std::string> out;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t len = 0;
    const char* p = lua_tolstring(L, -1, &len);
    out.emplace(p, len);
  }
  lua_pop(L, 1);
  return out;
}

}  // namespace

LuaSandbox::LuaSandbox(const LuaOptions& options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.opts = options;
  s.limit = options.memory_limit;
  s.step_budget = std::max<std::uint64_t>(1, options.instruction_limit / kHookEvery);
  s.L = lua_newstate(allocate, &s);
  if (!s.L) throw LuaError("cannot create a Lua state");
  *static_cast<State**>(lua_getextraspace(s.L)) = &s;
  lua_setwarnf(s.L, nullptr, nullptr);  // warnings (errors in finalizers) go nowhere
  open_sandbox(s.L);
  const std::string chunk = "=" + options.chunk_name;
  s.enforce_limit = true;
  if (luaL_loadbufferx(s.L, options.script.data(), options.script.size(), chunk.c_str(), "t") != LUA_OK) {
    const std::string why = lua_tostring(s.L, -1) ? lua_tostring(s.L, -1) : "cannot load";
    lua_close(s.L);
    throw LuaError(why);
  }
  s.steps = 0;
  lua_sethook(s.L, count_hook, LUA_MASKCOUNT, kHookEvery);
  const int rc = lua_pcall(s.L, 0, 0, 0);
  s.enforce_limit = false;
  lua_sethook(s.L, nullptr, 0, 0);
  if (rc != LUA_OK) {
    const std::string why = lua_type(s.L, -1) == LUA_TSTRING ? lua_tostring(s.L, -1) : "the script failed";
    lua_close(s.L);
    throw LuaError("running the script: " + why);
  }
  lua_getglobal(s.L, options.function.c_str());
  if (lua_type(s.L, -1) != LUA_TFUNCTION) {
    lua_close(s.L);
    throw LuaError("the script defines no function " + options.function + "(record)");
  }
  s.function_ref = luaL_ref(s.L, LUA_REGISTRYINDEX);
}

LuaSandbox::~LuaSandbox() {
  if (state_->L) lua_close(state_->L);
}

std::size_t LuaSandbox::memory_in_use() const { return state_->used; }

processing::Verdict LuaSandbox::call(processing::Message& message) {
  State& s = *state_;
  lua_State* L = s.L;
  // The fields from the fast path when it has them unedited; else from the
  // document (which then holds earlier processors' edits).
  CallInput in{&message.record(), nullptr, nullptr};
  if (const auto* view = message.view(); view && !view->edited()) {
    in.view = view;
  } else {
    std::string ignored;
    in.fields = message.fields(ignored);
  }
  s.enforce_limit = false;  // building the record table is the gateway's, not the script's
  lua_settop(L, 0);
  lua_pushcfunction(L, call_protected);
  lua_pushlightuserdata(L, &in);
  const int rc = lua_pcall(L, 1, 1, 0);
  s.enforce_limit = false;
  lua_sethook(L, nullptr, 0, 0);
  struct Reset {  // whatever happens below, the stack is emptied
    lua_State* L;
    ~Reset() { lua_settop(L, 0); }
  } reset{L};
  if (rc != LUA_OK) {
    std::string why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "an error that is not a string";
    if (rc == LUA_ERRMEM) why = "the script ran out of memory (memory_limit " + std::to_string(s.limit) + " bytes)";
    // Reclaim what the failed call left behind before the next record.
    lua_gc(L, LUA_GCCOLLECT);
    return Verdict::dead_letter(why);
  }
  const int result = lua_gettop(L);
  switch (lua_type(L, result)) {
    case LUA_TNIL:
      return Verdict::drop();
    case LUA_TBOOLEAN:
      return lua_toboolean(L, result) ? Verdict::pass() : Verdict::drop();
    case LUA_TTABLE:
      break;
    default:
      return Verdict::dead_letter(std::string(s.opts.function) + " returned a " + type_name(L, result) +
                                  "; expected the record table, nil or false");
  }
  auto& record = message.record();
  // What the script changed in the record itself; the original is kept
  // first for a dead letter later in the chain.
  auto change = [&](std::string& field, std::optional<std::string> value) {
    if (!value || *value == field) return false;
    message.keep_original();
    field = std::move(*value);
    return true;
  };
  lua_pushstring(L, "fields");
  lua_rawget(L, result);
  const int fields_type = lua_type(L, -1);
  if (fields_type == LUA_TTABLE) {
    std::string& text = s.text;  // reused record after record
    text.clear();
    try {
      write_json(L, -1, 0, text);
    } catch (const LuaError& e) {
      return Verdict::dead_letter(e.what());
    }
    if (text.front() != '{') return Verdict::dead_letter("the returned fields are a list, not an object");
    if (text != record.payload) {
      message.keep_original();
      record.payload.swap(text);
      message.payload_replaced();
    }
  } else if (change(record.payload, string_field(L, result, "payload"))) {
    message.payload_replaced();
  }
  lua_pop(L, 1);
  change(record.topic, string_field(L, result, "topic"));
  change(record.partition_key, string_field(L, result, "device"));
  change(record.content_type, string_field(L, result, "content_type"));
  return Verdict::pass();
}

}  // namespace tidegate::processors
