#include "tidegate/common/exception_text.h"

#include <exception>

namespace tidegate::common {

std::string current_exception_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace tidegate::common
