// Minimal JSON output for the CLI and (later) the status API: escaping and
// byte payloads, nothing more.
#pragma once

#include <string>
#include <string_view>

namespace tidegate::proto::json {

// `s` as a JSON string literal, quotes included. Control characters and
// invalid UTF-8 bytes are escaped (\u00XX), so the output is always valid.
std::string quote(std::string_view s);

// The same, appended to `out`: no temporary string per field.
void append_quoted(std::string& out, std::string_view s);

// Appends `s` quoted if it is valid UTF-8 and returns true; otherwise
// appends nothing and returns false (one pass for both).
bool append_quoted_if_utf8(std::string& out, std::string_view s);

bool is_valid_utf8(std::string_view s);

std::string base64(std::string_view bytes);

}  // namespace tidegate::proto::json
