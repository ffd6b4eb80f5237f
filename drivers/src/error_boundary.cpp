#include "tidegate/drivers/error_boundary.h"

#include <exception>
#include <thread>

namespace tidegate::drivers {

void run_guarded(const std::function<void()>& body, const std::function<void(const std::string&)>& on_exception,
                 const std::function<bool()>& stopping, std::chrono::milliseconds pause) {
  for (;;) {
    std::string what;
    try {
      body();
      return;
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an exception that is not a std::exception";
    }
    on_exception(what);
    if (stopping()) return;
    std::this_thread::sleep_for(pause);
    if (stopping()) return;
  }
}

}  // namespace tidegate::drivers
