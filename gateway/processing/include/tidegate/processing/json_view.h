// The fast path of per-record processing: a JSON object payload read into
// tokens (offsets into the payload, no allocation once warm) with edits
// laid over it (members removed, renamed, values replaced, members
// appended) and written back in one pass. What it cannot answer exactly
// (escaped or non-ASCII keys, a lookup through an edited value, nesting
// into appended members) it reports as unsupported, and the Message falls
// back to a full parse (nlohmann), which is the reference semantics: both
// paths give the same result, the view only faster.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidegate::processing {

class JsonView {
 public:
  enum class Type : std::uint8_t { kObject, kArray, kString, kNumber, kTrue, kFalse, kNull };
  enum class Parse { kOk, kNotJson, kNotObject, kUnsupported };
  enum class Find { kFound, kMissing, kUnsupported };

  // Reads `text` (kept by reference until the next parse). Strict JSON.
  Parse parse(std::string_view text);

  // The member at a dotted path: its key token and value token.
  Find find(std::string_view path, std::uint32_t& key, std::uint32_t& value) const;
  Type type(std::uint32_t token) const { return tokens_[token].type; }
  // A string value's characters as written (without quotes); `escaped` if
  // it holds backslash escapes (then not its decoded value).
  std::string_view raw(std::uint32_t token) const {
    const Token& t = tokens_[token];
    return {text_.data() + t.start, t.end - t.start};
  }
  bool escaped(std::uint32_t token) const { return tokens_[token].escaped; }
  // A number token's value; false if out of a double's range.
  bool number(std::uint32_t token, double& out) const;
  // A number token written without a fraction that fits 64 bits.
  bool integer(std::uint32_t token, std::int64_t& out) const;
  // Walking an unedited view: an object's members are key k = t + 1 with
  // its value at k + 1, the next key at after(k + 1); an array's elements
  // c = t + 1, the next at after(c); both end at after(t).
  std::uint32_t after(std::uint32_t token) const { return tokens_[token].next; }
  // Calls put(char) for each character of a string token's value, its
  // escapes (never \u: the view refuses those) decoded.
  template <typename Put>
  void decode(std::uint32_t token, Put&& put) const {
    const std::string_view s = raw(token);
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 == s.size()) {
        put(s[i]);
        continue;
      }
      switch (const char e = s[++i]) {
        case 'b': put('\b'); break;
        case 'f': put('\f'); break;
        case 'n': put('\n'); break;
        case 'r': put('\r'); break;
        case 't': put('\t'); break;
        default: put(e);  // '"', '\\', '/'
      }
    }
  }

  // Edits. `json_text` is a complete JSON value. Their text goes into one
  // pool reused record after record: no allocation once warm.
  void remove(std::uint32_t key) { edit(key).removed = true; }
  void rename(std::uint32_t key, std::string_view name);
  void replace(std::uint32_t value, std::string_view json_text);
  // Appends "name": json_text to the object `object` (0: the root).
  void append(std::uint32_t object, std::string_view name, std::string_view json_text);
  // Whether `name` (or anything) was appended to `object`.
  bool appended(std::uint32_t object, std::string_view name) const;
  bool has_appended(std::uint32_t object) const { return tokens_[object].first_append >= 0; }
  // Every member of the root object (key tokens), for keep_fields.
  std::vector<std::uint32_t> root_members() const;
  bool edited() const { return edited_; }

  // The payload with the edits applied, compact.
  void write(std::string& out) const;
  // The same into `payload` (which the view reads: the text is built aside
  // and swapped in, keeping both buffers for the next record).
  void write_into(std::string& payload);

  static void append_quoted(std::string& out, std::string_view s);

 private:
  struct Span {
    std::uint32_t off = 0, len = 0;  // in pool_
  };
  struct Token {
    Type type;
    bool escaped = false;
    std::uint32_t start = 0, end = 0;  // bytes; strings without their quotes
    std::uint32_t next = 0;            // the token after this one's subtree
    std::int32_t edit = -1;            // index in edits_
    std::int32_t first_append = -1;    // objects: index in appends_
  };
  struct Edit {
    bool removed = false;
    bool renamed = false;
    bool replaced = false;
    Span name;  // renamed key (raw, quoted when written)
    Span text;  // replaced value (JSON)
  };
  struct Append {
    Span name, text;
    std::int32_t next = -1;
  };

  Span keep(std::string_view s);
  std::string_view text_of(Span s) const { return {pool_.data() + s.off, s.len}; }
  Edit& edit(std::uint32_t token);
  const Edit* edit_of(std::uint32_t token) const {
    const auto e = tokens_[token].edit;
    return e < 0 ? nullptr : &edits_[static_cast<std::size_t>(e)];
  }
  // The member of `object` currently named `name`, ignoring appends.
  bool member(std::uint32_t object, std::string_view name, std::uint32_t& key) const;
  void write_value(std::string& out, std::uint32_t t) const;
  // No edit or append anywhere in the value at `t`.
  bool untouched(std::uint32_t t) const;
  // Where the value at `t` ends in the text.
  std::size_t value_end(std::uint32_t t) const;
  // Parser.
  bool value(int depth);
  bool duplicate_free(std::uint32_t index) const;
  void skip_ws();

  std::string_view text_;
  std::size_t pos_ = 0;
  bool unsupported_ = false;
  std::vector<Token> tokens_;
  std::vector<Edit> edits_;
  std::vector<Append> appends_;
  std::string pool_;
  std::string out_;
  bool edited_ = false;
  bool compact_ = true;  // no whitespace between tokens: untouched members are copied verbatim
};

}  // namespace tidegate::processing
