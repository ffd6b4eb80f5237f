// Dotted field paths into a JSON document ("meta.room" is doc["meta"]["room"]),
// as payload mappings and processors name fields. Header-only: only the
// parts that parse payloads include it (with nlohmann/json).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace tidegate::common {

// The node at `path`, or nullptr if a level is missing or not an object.
template <typename Json>
Json* find_json_path(Json& doc, std::string_view path) {
  Json* node = &doc;
  std::size_t start = 0;
  while (true) {
    if (!node->is_object()) return nullptr;
    const std::size_t dot = path.find('.', start);
    const std::string key(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) return node;
    start = dot + 1;
  }
}

// Sets the node at `path`, creating missing objects on the way; false if a
// level on the way exists and is not an object (nothing is changed then).
template <typename Json>
bool set_json_path(Json& doc, std::string_view path, Json value) {
  Json* node = &doc;
  std::size_t start = 0;
  while (true) {
    if (!node->is_object()) return false;
    const std::size_t dot = path.find('.', start);
    const std::string key(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    if (dot == std::string_view::npos) {
      (*node)[key] = std::move(value);
      return true;
    }
    auto it = node->find(key);
    if (it == node->end()) it = node->emplace(key, Json::object()).first;
    node = &*it;
    start = dot + 1;
  }
}

// Removes the node at `path` and returns it; nullopt if there is none.
template <typename Json>
std::optional<Json> take_json_path(Json& doc, std::string_view path) {
  const std::size_t dot = path.rfind('.');
  Json* parent = dot == std::string_view::npos ? &doc : find_json_path(doc, path.substr(0, dot));
  if (!parent || !parent->is_object()) return std::nullopt;
  const std::string key(dot == std::string_view::npos ? path : path.substr(dot + 1));
  auto it = parent->find(key);
  if (it == parent->end()) return std::nullopt;
  Json out = std::move(*it);
  parent->erase(it);
  return out;
}

}  // namespace tidegate::common
