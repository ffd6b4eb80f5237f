// Payloads through a sink's processors: the fast JSON view must agree with
// the full parse on what is JSON, and a chain that uses both (view edits,
// then the document) must always write valid JSON.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tidegate/processing/chain.h"
#include "tidegate/processors/enrich.h"
#include "tidegate/processors/fields.h"
#include "tidegate/processors/filter.h"
#include "tidegate/processors/redact.h"

using namespace tidegate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string payload(reinterpret_cast<const char*>(data), size);
  processing::JsonView view;
  const auto parsed = view.parse(payload);
  // (nlohmann takes a NUL byte for the end of the text; JSON has none, and
  // the processors' full parse refuses them first, as the view does.)
  const bool json = payload.find('\0') == std::string::npos &&
                    !processing::Json::parse(payload, nullptr, false).is_discarded();
  if (parsed == processing::JsonView::Parse::kNotJson && json) __builtin_trap();
  if ((parsed == processing::JsonView::Parse::kOk || parsed == processing::JsonView::Parse::kNotObject) && !json)
    __builtin_trap();

  static std::unique_ptr<processing::Chain> chain = [] {
    processors::FilterOptions fo;
    fo.condition = ".t > 0 or not exists(.t) or .s =~ \"a\"";
    processors::EnrichOptions eo;
    eo.rules = {{"", "", {{"site", "x"}, {"meta.floor", 2}}}};
    processors::RenameOptions ro;
    ro.renames = {{"a", "b"}, {"meta.c", "meta.d"}, {"e", "f.g"}};
    processors::RedactOptions re;
    re.fields = {"badge", "b"};
    std::vector<processing::NamedProcessor> p;
    p.push_back({"f", "filter", std::make_unique<processors::Filter>(fo)});
    p.push_back({"e", "enrich", std::make_unique<processors::Enrich>(eo)});
    p.push_back({"r", "rename", std::make_unique<processors::Rename>(ro)});
    p.push_back({"x", "redact", std::make_unique<processors::Redact>(re)});
    return std::make_unique<processing::Chain>(processing::Route{}, std::move(p));
  }();
  buffer::Record r;
  r.payload = payload;
  if (chain->apply(r).kind == processing::ChainResult::Kind::kSend && r.payload != payload &&
      processing::Json::parse(r.payload, nullptr, false).is_discarded()) {
    __builtin_trap();
  }
  return 0;
}
