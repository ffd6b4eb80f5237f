#include "tidegate/drivers/error_boundary.h"

#include <thread>

#include "tidegate/common/exception_text.h"

namespace tidegate::drivers {

void run_guarded(const std::function<void()>& body, const std::function<void(const std::string&)>& on_exception,
                 const std::function<bool()>& stopping, std::chrono::milliseconds pause) {
  for (;;) {
    try {
      body();
      return;
    } catch (...) {
      on_exception(common::current_exception_text());
    }
    if (stopping()) return;
    std::this_thread::sleep_for(pause);
    if (stopping()) return;
  }
}

}  // namespace tidegate::drivers
