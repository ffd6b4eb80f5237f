// The text of the exception being handled, for error boundaries that catch
// everything (`catch (...)`) and must still say what happened.
#pragma once

#include <string>

namespace tidegate::common {

// Call only inside a catch block: what() of a std::exception, or a fixed
// text for anything else that was thrown.
std::string current_exception_text();

}  // namespace tidegate::common
