// The error boundary of a source's own thread: nothing a source runs on its
// threads may end the gateway in std::terminate.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace tidegate::drivers {

// Runs `body` until it returns. An exception that escapes it (a bug, a
// library's, std::bad_alloc) goes to `on_exception` with its text, and
// `body` runs again after `pause` unless `stopping()` says the source is
// being stopped. For an io_context's run(), running it again resumes the
// handlers that are left; on_exception should make the source start over
// (drop the connection and reconnect).
void run_guarded(const std::function<void()>& body, const std::function<void(const std::string&)>& on_exception,
                 const std::function<bool()>& stopping, std::chrono::milliseconds pause);

}  // namespace tidegate::drivers
