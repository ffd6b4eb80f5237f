#include "owner_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "tidegate/buffer/buffer.h"

namespace tidegate::buffer {
namespace {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// The holder's pid, as it wrote it; empty if unreadable.
std::string holder_of(int fd) {
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  if (n <= 0) return {};
  std::string pid(text, static_cast<std::size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid;
}

}  // namespace

OwnerLock::OwnerLock(const std::filesystem::path& db_path) {
  const auto path = std::filesystem::path(db_path).concat(".lock");
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) throw BufferError("cannot open lock file " + path.string() + ": " + errno_text(errno));
  int rc;
  do {
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    const std::string holder = holder_of(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw BufferInUse(db_path.string() + " is open for writing in another process" +
                        (holder.empty() ? std::string() : " (pid " + holder + ")") +
                        ", most likely the running gateway");
    }
    throw BufferError("cannot lock " + path.string() + ": " + errno_text(err));
  }
  // For the message above, in whoever comes next; the lock works without it.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

OwnerLock::~OwnerLock() {
  // Closing the last descriptor releases the lock. The file stays: removing
  // it would let a newcomer lock a fresh inode while another waits on the old.
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace tidegate::buffer
