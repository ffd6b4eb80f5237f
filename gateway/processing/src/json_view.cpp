#include "tidegate/processing/json_view.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <charconv>

namespace tidegate::processing {
namespace {

constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxMembersChecked = 64;  // duplicate-key check per object

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Bytes a string's scan can pass over: printable ASCII but '"' and '\\'.
constexpr auto kPlainInString = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c)
    t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

}  // namespace

void JsonView::skip_ws() {
  if (pos_ < text_.size() && static_cast<unsigned char>(text_[pos_]) > ' ') return;  // compact text: the usual case
  const std::size_t from = pos_;
  while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                 text_[pos_] == '\r'))
    ++pos_;
  if (pos_ != from) compact_ = false;
}

// One value at pos_; false if the text is not JSON (or, with unsupported_
// set, not something the view handles).
bool JsonView::value(int depth) {
  if (depth > kMaxDepth) {
    unsupported_ = true;
    return false;
  }
  skip_ws();
  if (pos_ >= text_.size()) return false;
  const char c = text_[pos_];
  const auto index = static_cast<std::uint32_t>(tokens_.size());
  tokens_.push_back({});
  Token t{};
  t.start = static_cast<std::uint32_t>(pos_);
  if (c == '{' || c == '[') {
    const bool object = c == '{';
    t.type = object ? Type::kObject : Type::kArray;
    ++pos_;
    skip_ws();
    const char close = object ? '}' : ']';
    if (pos_ < text_.size() && text_[pos_] == close) {
      ++pos_;
    } else {
      while (true) {
        if (object) {
          skip_ws();
          if (pos_ >= text_.size() || text_[pos_] != '"') return false;
          const auto key = static_cast<std::uint32_t>(tokens_.size());
          if (!value(depth + 1)) return false;
          if (tokens_[key].escaped) {
            unsupported_ = true;  // keys are compared as written
            return false;
          }
          skip_ws();
          if (pos_ >= text_.size() || text_[pos_] != ':') return false;
          ++pos_;
        }
        if (!value(depth + 1)) return false;
        skip_ws();
        if (pos_ >= text_.size()) return false;
        if (text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (text_[pos_] != close) return false;
        ++pos_;
        break;
      }
    }
    if (object && !duplicate_free(index)) {
      unsupported_ = true;  // a key given twice: the full parse keeps the last value; leave it to it
      return false;
    }
    t.end = static_cast<std::uint32_t>(pos_);
  } else if (c == '"') {
    t.type = Type::kString;
    ++pos_;
    t.start = static_cast<std::uint32_t>(pos_);
    while (true) {
      while (pos_ < text_.size() && kPlainInString[static_cast<unsigned char>(text_[pos_])]) ++pos_;
      if (pos_ >= text_.size()) return false;
      const auto b = static_cast<unsigned char>(text_[pos_]);
      if (b == '"') break;
      if (b < 0x20) return false;
      if (b >= 0x80) {
        unsupported_ = true;  // UTF-8 is validated by the full parse
        return false;
      }
      if (b == '\\') {
        t.escaped = true;
        if (++pos_ >= text_.size()) return false;
        const char e = text_[pos_];
        if (e == 'u') {
          for (int k = 1; k <= 4; ++k) {
            if (pos_ + k >= text_.size() || !is_hex(text_[pos_ + k])) return false;
          }
          unsupported_ = true;  // surrogate pairs are the full parse's to judge
          return false;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') {
          return false;
        }
      }
      ++pos_;
    }
    t.end = static_cast<std::uint32_t>(pos_);
    ++pos_;  // the closing quote
  } else if (c == '-' || is_digit(c)) {
    t.type = Type::kNumber;
    if (text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !is_digit(text_[pos_])) return false;
    if (text_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (pos_ >= text_.size() || !is_digit(text_[pos_])) return false;
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (pos_ >= text_.size() || !is_digit(text_[pos_])) return false;
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
      unsupported_ = true;  // an exponent may overflow, which the full parse refuses
      return false;
    }
    if (pos_ - t.start > 20) {
      unsupported_ = true;  // so may a very long number
      return false;
    }
    t.end = static_cast<std::uint32_t>(pos_);
  } else {
    static constexpr std::pair<std::string_view, Type> literals[] = {
        {"true", Type::kTrue}, {"false", Type::kFalse}, {"null", Type::kNull}};
    bool matched = false;
    for (const auto& [word, type] : literals) {
      if (text_.substr(pos_, word.size()) == word) {
        t.type = type;
        pos_ += word.size();
        matched = true;
        break;
      }
    }
    if (!matched) return false;
    t.end = static_cast<std::uint32_t>(pos_);
  }
  t.next = static_cast<std::uint32_t>(tokens_.size());
  tokens_[index] = t;
  return true;
}

// The members of the object at `index` (its children are complete, its own
// token not yet) have distinct keys.
bool JsonView::duplicate_free(std::uint32_t index) const {
  const auto end = static_cast<std::uint32_t>(tokens_.size());
  std::size_t n = 0;
  for (std::uint32_t a = index + 1; a < end; a = tokens_[a + 1].next) {
    if (++n > kMaxMembersChecked) return false;
    for (std::uint32_t b = tokens_[a + 1].next; b < end; b = tokens_[b + 1].next) {
      if (raw(a) == raw(b)) return false;
    }
  }
  return true;
}

JsonView::Parse JsonView::parse(std::string_view text) {
  text_ = text;
  pos_ = 0;
  unsupported_ = false;
  tokens_.clear();
  edits_.clear();
  appends_.clear();
  pool_.clear();
  edited_ = false;
  compact_ = true;
  if (text.size() >= UINT32_MAX) return Parse::kUnsupported;
  const bool ok = value(0);
  if (unsupported_) return Parse::kUnsupported;
  skip_ws();
  if (!ok || pos_ != text_.size()) return Parse::kNotJson;
  return tokens_[0].type == Type::kObject ? Parse::kOk : Parse::kNotObject;
}

JsonView::Edit& JsonView::edit(std::uint32_t token) {
  edited_ = true;
  Token& t = tokens_[token];
  if (t.edit < 0) {
    t.edit = static_cast<std::int32_t>(edits_.size());
    edits_.emplace_back();
  }
  return edits_[static_cast<std::size_t>(t.edit)];
}

bool JsonView::number(std::uint32_t token, double& out) const {
  const std::string_view text = raw(token);
#if FLT_EVAL_METHOD == 0
  // Up to 15 significant digits: the digits and the power of ten are exact
  // doubles and one division rounds correctly (strtod's own fast path),
  // without strtod's cost. (Not where x87 registers would round twice.)
  static constexpr double kPow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  std::size_t i = text.empty() || text[0] != '-' ? 0 : 1;
  std::uint64_t digits = 0;
  int count = 0, fraction = -1;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && fraction < 0) {
      fraction = 0;
      continue;
    }
    if (!is_digit(c) || ++count > 15) break;
    digits = digits * 10 + static_cast<std::uint64_t>(c - '0');
    if (fraction >= 0) ++fraction;
  }
  if (i == text.size() && count > 0) {
    double d = static_cast<double>(digits);
    if (fraction > 0) d /= kPow10[fraction];
    out = text[0] == '-' ? -d : d;
    return true;
  }
#endif
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool JsonView::integer(std::uint32_t token, std::int64_t& out) const {
  const std::string_view text = raw(token);
  if (text.find('.') != std::string_view::npos) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

JsonView::Span JsonView::keep(std::string_view s) {
  Span span{static_cast<std::uint32_t>(pool_.size()), static_cast<std::uint32_t>(s.size())};
  pool_.append(s);
  return span;
}

bool JsonView::member(std::uint32_t object, std::string_view name, std::uint32_t& key) const {
  for (std::uint32_t k = object + 1; k < tokens_[object].next; k = tokens_[k + 1].next) {
    const Edit* e = edit_of(k);
    if (e && e->removed) continue;
    if ((e && e->renamed ? text_of(e->name) : raw(k)) == name) {
      key = k;
      return true;
    }
  }
  return false;
}

JsonView::Find JsonView::find(std::string_view path, std::uint32_t& key, std::uint32_t& value) const {
  std::uint32_t object = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string_view name = path.substr(start, dot == std::string_view::npos ? path.npos : dot - start);
    const Edit* container = edit_of(object);
    if (container && container->replaced) return Find::kUnsupported;  // replaced: look in the full parse
    if (has_appended(object) && appended(object, name)) return Find::kUnsupported;
    if (!member(object, name, key)) return Find::kMissing;
    value = key + 1;
    if (dot == std::string_view::npos) {
      const Edit* e = edit_of(value);
      return e && e->replaced ? Find::kUnsupported : Find::kFound;
    }
    if (tokens_[value].type != Type::kObject) return Find::kMissing;
    object = value;
    start = dot + 1;
  }
}

void JsonView::rename(std::uint32_t key, std::string_view name) {
  const Span span = keep(name);
  Edit& e = edit(key);
  e.renamed = true;
  e.name = span;
}

void JsonView::replace(std::uint32_t value, std::string_view json_text) {
  const Span span = keep(json_text);
  Edit& e = edit(value);
  e.replaced = true;
  e.text = span;
}

void JsonView::append(std::uint32_t object, std::string_view name, std::string_view json_text) {
  edited_ = true;
  const Span n = keep(name);
  const Span t = keep(json_text);
  // At the end of the object's list, so members come out in the order added.
  std::int32_t* link = &tokens_[object].first_append;
  while (*link >= 0) link = &appends_[static_cast<std::size_t>(*link)].next;
  *link = static_cast<std::int32_t>(appends_.size());
  appends_.push_back({n, t, -1});
}

bool JsonView::appended(std::uint32_t object, std::string_view name) const {
  for (auto i = tokens_[object].first_append; i >= 0; i = appends_[static_cast<std::size_t>(i)].next) {
    if (text_of(appends_[static_cast<std::size_t>(i)].name) == name) return true;
  }
  return false;
}

std::vector<std::uint32_t> JsonView::root_members() const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t k = 1; k < tokens_[0].next; k = tokens_[k + 1].next) out.push_back(k);
  return out;
}

void JsonView::append_quoted(std::string& out, std::string_view s) {
  static const char* const hex = "0123456789abcdef";
  out.push_back('"');
  // Runs that need no escape go in one append (most names: all of them).
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (c < 0x20) {
      const char escape[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      out.append(escape, sizeof escape);
    } else {
      const char escape[] = {'\\', static_cast<char>(c)};
      out.append(escape, sizeof escape);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

bool JsonView::untouched(std::uint32_t t) const {
  for (std::uint32_t i = t; i < tokens_[t].next; ++i) {
    if (tokens_[i].edit >= 0 || tokens_[i].first_append >= 0) return false;
  }
  return true;
}

std::size_t JsonView::value_end(std::uint32_t t) const {
  return tokens_[t].end + (tokens_[t].type == Type::kString ? 1 : 0);  // a string's closing quote
}

void JsonView::write_value(std::string& out, std::uint32_t t) const {
  const Edit* e = edit_of(t);
  if (e && e->replaced) {
    out += text_of(e->text);
    return;
  }
  const Token& tok = tokens_[t];
  switch (tok.type) {
    case Type::kObject: {
      out.push_back('{');
      bool first = true;
      // Members nothing touched are copied as they were written, in runs:
      // a compact payload's members are contiguous, commas included, so a
      // run of them is one append. (With whitespace, each is rewritten.)
      std::size_t run_start = std::string_view::npos, run_end = 0;
      const auto flush = [&] {
        if (run_start == std::string_view::npos) return;
        if (!first) out.push_back(',');
        first = false;
        out.append(text_.data() + run_start, run_end - run_start);
        run_start = std::string_view::npos;
      };
      for (std::uint32_t k = t + 1; k < tok.next; k = tokens_[k + 1].next) {
        const Edit* ke = edit_of(k);
        if (compact_ && !ke && untouched(k + 1)) {
          if (run_start == std::string_view::npos) run_start = tokens_[k].start - 1;  // the key's opening quote
          run_end = value_end(k + 1);
          continue;
        }
        flush();
        if (ke && ke->removed) continue;
        if (!first) out.push_back(',');
        first = false;
        if (ke && ke->renamed) {
          append_quoted(out, text_of(ke->name));
        } else {
          out.push_back('"');
          out += raw(k);
          out.push_back('"');
        }
        out.push_back(':');
        write_value(out, k + 1);
      }
      flush();
      for (auto i = tok.first_append; i >= 0; i = appends_[static_cast<std::size_t>(i)].next) {
        const Append& a = appends_[static_cast<std::size_t>(i)];
        if (!first) out.push_back(',');
        first = false;
        append_quoted(out, text_of(a.name));
        out.push_back(':');
        out += text_of(a.text);
      }
      out.push_back('}');
      break;
    }
    case Type::kArray: {
      out.push_back('[');
      for (std::uint32_t c = t + 1; c < tok.next; c = tokens_[c].next) {
        if (c != t + 1) out.push_back(',');
        write_value(out, c);
      }
      out.push_back(']');
      break;
    }
    case Type::kString:
      out.push_back('"');
      out += raw(t);
      out.push_back('"');
      break;
    default:
      out += raw(t);
  }
}

void JsonView::write(std::string& out) const {
  out.clear();
  out.reserve(text_.size() + pool_.size() + 16);
  write_value(out, 0);
}

void JsonView::write_into(std::string& payload) {
  write(out_);
  payload.swap(out_);
  text_ = {};  // it pointed into the old payload
}

}  // namespace tidegate::processing
