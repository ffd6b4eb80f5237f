#include "tidegate/processing/condition.h"

#include <cctype>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "tidegate/common/json_path.h"
#include "tidegate/processing/regex.h"

namespace tidegate::processing {
namespace {

// A value during evaluation: views into the record or the document.
struct Value {
  enum class Type { kMissing, kNull, kBool, kNumber, kString, kOther } type = Type::kMissing;
  bool b = false;
  double number = 0;
  std::string_view text;
};

const char* type_name(Value::Type t) {
  switch (t) {
    case Value::Type::kMissing:
      return "missing";
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return "a boolean";
    case Value::Type::kNumber:
      return "a number";
    case Value::Type::kString:
      return "a string";
    case Value::Type::kOther:
      return "an object or array";
  }
  return "?";
}

// A field read from the fast path; nullopt when the view cannot say
// (then the document decides).
std::optional<Value> from_view(const JsonView& view, const std::string& path) {
  std::uint32_t key = 0, token = 0;
  const auto found = view.find(path, key, token);
  if (found == JsonView::Find::kMissing) return Value{};
  if (found == JsonView::Find::kUnsupported) return std::nullopt;
  Value v;
  switch (view.type(token)) {
    case JsonView::Type::kNull:
      v.type = Value::Type::kNull;
      break;
    case JsonView::Type::kTrue:
    case JsonView::Type::kFalse:
      v.type = Value::Type::kBool;
      v.b = view.type(token) == JsonView::Type::kTrue;
      break;
    case JsonView::Type::kNumber: {
      double d = 0;
      if (!view.number(token, d)) return std::nullopt;  // out of range: the parser decides
      v.type = Value::Type::kNumber;
      v.number = d;
      break;
    }
    case JsonView::Type::kString:
      if (view.escaped(token)) return std::nullopt;
      v.type = Value::Type::kString;
      v.text = view.raw(token);
      break;
    default:
      v.type = Value::Type::kOther;
  }
  return v;
}

Value from_json(const Json* node) {
  Value v;
  if (!node) return v;
  if (node->is_null()) {
    v.type = Value::Type::kNull;
  } else if (node->is_boolean()) {
    v.type = Value::Type::kBool;
    v.b = node->get<bool>();
  } else if (node->is_number()) {
    v.type = Value::Type::kNumber;
    v.number = node->get<double>();
  } else if (node->is_string()) {
    v.type = Value::Type::kString;
    v.text = node->get_ref<const std::string&>();
  } else {
    v.type = Value::Type::kOther;
  }
  return v;
}

enum class Attr { kTopic, kDevice, kSource, kContentType };

struct Operand {
  enum class Kind { kField, kAttr, kLiteral } kind = Kind::kLiteral;
  std::string path;  // kField
  Attr attr = Attr::kTopic;
  Json literal;
  std::string shown;  // as written, for error messages
};

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kMatch, kNoMatch };

}  // namespace

struct Condition::Node {
  enum class Kind { kOr, kAnd, kNot, kExists, kCompare, kTruthy } kind = Kind::kTruthy;
  std::vector<std::unique_ptr<Node>> children;  // kOr, kAnd, kNot
  Operand lhs, rhs;
  Op op = Op::kEq;
  std::optional<Regex> regex;  // kMatch / kNoMatch
};

namespace {

using Node = Condition::Node;

struct Token {
  enum class Kind { kEnd, kField, kWord, kString, kNumber, kOp, kLParen, kRParen } kind = Kind::kEnd;
  std::string text;
  std::size_t at = 0;
};

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) { advance(); }

  std::unique_ptr<Node> parse() {
    auto node = parse_or(0);
    if (tok_.kind != Token::Kind::kEnd) fail("expected 'and', 'or' or the end, found " + shown(tok_));
    return node;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& what) const {
    throw ConditionError("condition \"" + text_ + "\", at character " + std::to_string(tok_.at + 1) + ": " + what);
  }

  static std::string shown(const Token& t) {
    return t.kind == Token::Kind::kEnd ? std::string("the end") : "'" + t.text + "'";
  }

  void advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
    tok_ = Token{};
    tok_.at = pos_;
    if (pos_ >= text_.size()) return;
    const char c = text_[pos_];
    auto ident = [&](std::size_t from) {
      std::size_t end = from;
      while (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_' ||
                                    text_[end] == '-' || text_[end] == '.'))
        ++end;
      return end;
    };
    if (c == '(' || c == ')') {
      tok_.kind = c == '(' ? Token::Kind::kLParen : Token::Kind::kRParen;
      tok_.text = std::string(1, c);
      ++pos_;
    } else if (c == '.') {
      const std::size_t end = ident(pos_ + 1);
      tok_.kind = Token::Kind::kField;
      tok_.text = text_.substr(pos_ + 1, end - pos_ - 1);
      if (tok_.text.empty() || tok_.text.front() == '.' || tok_.text.back() == '.' ||
          tok_.text.find("..") != std::string::npos) {
        fail("expected a field path such as .temperature or .meta.room");
      }
      pos_ = end;
    } else if (c == '"') {
      std::string s;
      std::size_t i = pos_ + 1;
      // \" and \\ stand for " and \; any other backslash is kept (regex escapes).
      for (; i < text_.size() && text_[i] != '"'; ++i) {
        if (text_[i] == '\\' && i + 1 < text_.size() && (text_[i + 1] == '"' || text_[i + 1] == '\\')) ++i;
        s.push_back(text_[i]);
      }
      if (i >= text_.size()) fail("a string is not closed (missing \")");
      tok_.kind = Token::Kind::kString;
      tok_.text = std::move(s);
      pos_ = i + 1;
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+') {
      std::size_t end = pos_ + 1;
      while (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '.' ||
                                    ((text_[end] == '-' || text_[end] == '+') &&
                                     (text_[end - 1] == 'e' || text_[end - 1] == 'E'))))
        ++end;
      tok_.kind = Token::Kind::kNumber;
      tok_.text = text_.substr(pos_, end - pos_);
      pos_ = end;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const std::size_t end = ident(pos_);
      tok_.kind = Token::Kind::kWord;
      tok_.text = text_.substr(pos_, end - pos_);
      pos_ = end;
    } else {
      static const char* const ops[] = {"==", "!=", "<=", ">=", "=~", "!~", "<", ">"};
      for (const char* op : ops) {
        const std::string_view o(op);
        if (std::string_view(text_).substr(pos_, o.size()) == o) {
          tok_.kind = Token::Kind::kOp;
          tok_.text = std::string(o);
          pos_ += o.size();
          return;
        }
      }
      fail(std::string("unexpected character '") + c + "'");
    }
  }

  bool word(const char* w) const { return tok_.kind == Token::Kind::kWord && tok_.text == w; }

  void enter(int depth) const {
    if (depth > kMaxDepth) fail("nested more than " + std::to_string(kMaxDepth) + " levels deep");
  }

  std::unique_ptr<Node> parse_or(int depth) {
    enter(depth);
    auto left = parse_and(depth + 1);
    if (!word("or")) return left;
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kOr;
    node->children.push_back(std::move(left));
    while (word("or")) {
      advance();
      node->children.push_back(parse_and(depth + 1));
    }
    return node;
  }

  std::unique_ptr<Node> parse_and(int depth) {
    enter(depth);
    auto left = parse_unary(depth + 1);
    if (!word("and")) return left;
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kAnd;
    node->children.push_back(std::move(left));
    while (word("and")) {
      advance();
      node->children.push_back(parse_unary(depth + 1));
    }
    return node;
  }

  std::unique_ptr<Node> parse_unary(int depth) {
    enter(depth);
    if (word("not")) {
      advance();
      auto node = std::make_unique<Node>();
      node->kind = Node::Kind::kNot;
      node->children.push_back(parse_unary(depth + 1));
      return node;
    }
    if (tok_.kind == Token::Kind::kLParen) {
      advance();
      auto inner = parse_or(depth + 1);
      if (tok_.kind != Token::Kind::kRParen) fail("expected ')', found " + shown(tok_));
      advance();
      return inner;
    }
    if (word("exists")) {
      advance();
      if (tok_.kind != Token::Kind::kLParen) fail("expected '(' after exists");
      advance();
      if (tok_.kind != Token::Kind::kField) fail("exists() takes a field such as .badge, found " + shown(tok_));
      auto node = std::make_unique<Node>();
      node->kind = Node::Kind::kExists;
      node->lhs.kind = Operand::Kind::kField;
      node->lhs.path = tok_.text;
      node->lhs.shown = "." + tok_.text;
      advance();
      if (tok_.kind != Token::Kind::kRParen) fail("expected ')' after the field of exists(");
      advance();
      return node;
    }
    auto node = std::make_unique<Node>();
    node->lhs = operand();
    if (tok_.kind != Token::Kind::kOp) {
      if (node->lhs.kind == Operand::Kind::kLiteral && !node->lhs.literal.is_boolean())
        fail("expected a comparison after " + node->lhs.shown);
      node->kind = Node::Kind::kTruthy;
      return node;
    }
    node->kind = Node::Kind::kCompare;
    const std::string op = tok_.text;
    advance();
    node->op = op == "==" ? Op::kEq
               : op == "!=" ? Op::kNe
               : op == "<"  ? Op::kLt
               : op == "<=" ? Op::kLe
               : op == ">"  ? Op::kGt
               : op == ">=" ? Op::kGe
               : op == "=~" ? Op::kMatch
                            : Op::kNoMatch;
    if (node->op == Op::kMatch || node->op == Op::kNoMatch) {
      if (tok_.kind != Token::Kind::kString) fail(op + " takes a regular expression in quotes, found " + shown(tok_));
      try {
        node->regex.emplace(tok_.text);
      } catch (const RegexError& e) {
        fail(e.what());
      }
      advance();
      return node;
    }
    node->rhs = operand();
    return node;
  }

  Operand operand() {
    Operand o;
    o.shown = tok_.text;
    switch (tok_.kind) {
      case Token::Kind::kField:
        o.kind = Operand::Kind::kField;
        o.path = tok_.text;
        o.shown = "." + tok_.text;
        break;
      case Token::Kind::kString:
        o.literal = tok_.text;
        o.shown = "\"" + tok_.text + "\"";
        break;
      case Token::Kind::kNumber: {
        char* end = nullptr;
        const double d = std::strtod(tok_.text.c_str(), &end);
        if (end != tok_.text.c_str() + tok_.text.size()) fail("'" + tok_.text + "' is not a number");
        o.literal = d;
        break;
      }
      case Token::Kind::kWord:
        if (tok_.text == "true" || tok_.text == "false") {
          o.literal = tok_.text == "true";
        } else if (tok_.text == "null") {
          o.literal = nullptr;
        } else if (tok_.text == "topic" || tok_.text == "device" || tok_.text == "source" ||
                   tok_.text == "content_type") {
          o.kind = Operand::Kind::kAttr;
          o.attr = tok_.text == "topic"    ? Attr::kTopic
                   : tok_.text == "device" ? Attr::kDevice
                   : tok_.text == "source" ? Attr::kSource
                                           : Attr::kContentType;
        } else {
          fail("unknown name '" + tok_.text +
               "' (fields start with a dot: ." + tok_.text + "; the record's own are topic, device, source, "
               "content_type)");
        }
        break;
      default:
        fail("expected a field, topic, device, source, content_type or a value, found " + shown(tok_));
    }
    advance();
    return o;
  }

  const std::string& text_;
  std::size_t pos_ = 0;
  Token tok_;
};

bool node_uses_fields(const Node& n) {
  if (n.lhs.kind == Operand::Kind::kField || n.rhs.kind == Operand::Kind::kField) return true;
  for (const auto& c : n.children) {
    if (node_uses_fields(*c)) return true;
  }
  return false;
}

class Evaluator {
 public:
  Evaluator(Message& m, std::string& error) : m_(m), error_(error) {}

  // nullopt: error_ says why.
  std::optional<bool> eval(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kOr:
        for (const auto& c : n.children) {
          auto v = eval(*c);
          if (!v || *v) return v;
        }
        return false;
      case Node::Kind::kAnd:
        for (const auto& c : n.children) {
          auto v = eval(*c);
          if (!v || !*v) return v;
        }
        return true;
      case Node::Kind::kNot: {
        auto v = eval(*n.children.front());
        if (!v) return v;
        return !*v;
      }
      case Node::Kind::kExists: {
        auto v = value(n.lhs);
        if (!v) return std::nullopt;
        return v->type != Value::Type::kMissing;
      }
      case Node::Kind::kTruthy: {
        auto v = value(n.lhs);
        if (!v) return std::nullopt;
        if (v->type == Value::Type::kMissing || v->type == Value::Type::kNull) return false;
        if (v->type != Value::Type::kBool) return mismatch(n.lhs.shown + " is " + type_name(v->type) + ", not a boolean");
        return v->b;
      }
      case Node::Kind::kCompare:
        return compare(n);
    }
    return std::nullopt;
  }

 private:
  std::optional<bool> mismatch(const std::string& what) {
    error_ = "type mismatch: " + what;
    return std::nullopt;
  }

  std::optional<Value> value(const Operand& o) {
    switch (o.kind) {
      case Operand::Kind::kLiteral:
        return from_json(&o.literal);
      case Operand::Kind::kAttr: {
        const auto& r = m_.record();
        Value v;
        v.type = Value::Type::kString;
        v.text = o.attr == Attr::kTopic    ? r.topic
                 : o.attr == Attr::kDevice ? r.partition_key
                 : o.attr == Attr::kSource ? r.source
                                           : r.content_type;
        return v;
      }
      case Operand::Kind::kField: {
        if (JsonView* view = m_.view()) {
          if (auto v = from_view(*view, o.path)) return v;
          // not answerable from the view: the full document below
        }
        std::string why;
        Json* doc = m_.fields(why);
        if (!doc) {
          error_ = why;
          return std::nullopt;
        }
        return from_json(common::find_json_path(*doc, o.path));
      }
    }
    return std::nullopt;
  }

  std::optional<bool> compare(const Node& n) {
    auto l = value(n.lhs);
    if (!l) return std::nullopt;
    if (n.op == Op::kMatch || n.op == Op::kNoMatch) {
      if (l->type == Value::Type::kMissing || l->type == Value::Type::kNull) return n.op == Op::kNoMatch;
      if (l->type != Value::Type::kString)
        return mismatch(n.lhs.shown + " is " + type_name(l->type) + ", matched against a regular expression");
      return n.regex->search(l->text) == (n.op == Op::kMatch);
    }
    auto r = value(n.rhs);
    if (!r) return std::nullopt;
    // A missing field compares as null.
    auto type = [](const Value& v) { return v.type == Value::Type::kMissing ? Value::Type::kNull : v.type; };
    const bool equality = n.op == Op::kEq || n.op == Op::kNe;
    if (type(*l) != type(*r)) {
      if (equality) return n.op == Op::kNe;
      if (type(*l) == Value::Type::kNull || type(*r) == Value::Type::kNull) return false;
      return mismatch(n.lhs.shown + " is " + type_name(l->type) + ", compared with " + n.rhs.shown + ", " +
                      type_name(r->type));
    }
    int order = 0;  // <0, 0, >0
    switch (type(*l)) {
      case Value::Type::kNull:
        if (!equality) return false;
        break;
      case Value::Type::kBool:
        if (!equality) return mismatch(n.lhs.shown + " is a boolean: only == and != apply");
        order = l->b == r->b ? 0 : 1;
        break;
      case Value::Type::kNumber:
        order = l->number < r->number ? -1 : l->number > r->number ? 1 : 0;
        break;
      case Value::Type::kString:
        order = l->text.compare(r->text);
        break;
      default:
        if (!equality) return mismatch(n.lhs.shown + " is an object or array");
        return n.op == Op::kNe;  // objects are not compared by value
    }
    switch (n.op) {
      case Op::kEq:
        return order == 0;
      case Op::kNe:
        return order != 0;
      case Op::kLt:
        return order < 0;
      case Op::kLe:
        return order <= 0;
      case Op::kGt:
        return order > 0;
      case Op::kGe:
        return order >= 0;
      default:
        return false;
    }
  }

  Message& m_;
  std::string& error_;
};

}  // namespace

Condition Condition::parse(const std::string& text) {
  Condition c;
  c.text_ = text;
  Parser parser(c.text_);
  c.root_ = parser.parse();
  return c;
}

Condition::~Condition() = default;
Condition::Condition(Condition&&) noexcept = default;
Condition& Condition::operator=(Condition&&) noexcept = default;

std::optional<bool> Condition::evaluate(Message& message, std::string& error) const {
  Evaluator e(message, error);
  return e.eval(*root_);
}

bool Condition::uses_fields() const { return node_uses_fields(*root_); }

}  // namespace tidegate::processing
