// The TOML blocks of the Markdown docs: configurations readers copy, so tests
// run them. A block may be named by an `<!-- example: NAME -->` line just
// before its fence.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tidegate::testing {

struct DocExample {
  std::string where;  // "docs/cloud.md:120"
  std::string name;   // from the marker, else empty
  std::string toml;
};

inline std::vector<DocExample> toml_blocks(const std::filesystem::path& markdown, const std::string& label) {
  std::vector<DocExample> out;
  std::ifstream in(markdown);
  std::string line, name;
  int number = 0;
  DocExample* open = nullptr;
  while (std::getline(in, line)) {
    ++number;
    const auto text = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (open) {
      if (text.rfind("```", 0) == 0) {
        open = nullptr;
      } else {
        open->toml += line + "\n";
      }
    } else if (text.rfind("<!-- example: ", 0) == 0) {
      name = text.substr(14, text.find(" -->") - 14);
    } else if (text == "```toml") {
      out.push_back({label + ":" + std::to_string(number), name, ""});
      open = &out.back();
      name.clear();
    } else if (!text.empty()) {
      name.clear();
    }
  }
  return out;
}

// The block named `name` in `markdown`; empty if there is none.
inline std::string doc_example(const std::filesystem::path& markdown, const std::string& name) {
  for (auto& e : toml_blocks(markdown, markdown.filename().string())) {
    if (e.name == name) return e.toml;
  }
  return "";
}

}  // namespace tidegate::testing
