#include "seq_floor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>
#include <system_error>

namespace tidegate::buffer {
namespace {

constexpr const char* kMagic = "tidegate-seq-floor 1 ";

void write_all(int fd, const std::string& data, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "write " + what);
    }
    done += static_cast<std::size_t>(n);
  }
}

void fsync_path(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path.string());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw std::system_error(err, std::generic_category(), "fsync " + path.string());
}

}  // namespace

SeqFloor::SeqFloor(std::filesystem::path db_path) : path_(db_path.concat(".seqfloor")) {}

std::uint64_t SeqFloor::load() {
  std::ifstream in(path_);
  std::string line;
  if (!in || !std::getline(in, line) || line.rfind(kMagic, 0) != 0) return floor_ = 0;
  std::uint64_t value = 0;
  const char* begin = line.data() + std::char_traits<char>::length(kMagic);
  auto [ptr, ec] = std::from_chars(begin, line.data() + line.size(), value);
  if (ec != std::errc() || ptr == begin) return floor_ = 0;
  return floor_ = value;
}

void SeqFloor::cover(std::uint64_t seq) {
  if (seq < floor_) return;
  const std::uint64_t next = seq + kBlock;
  const std::filesystem::path tmp = std::filesystem::path(path_).concat(".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "create " + tmp.string());
  try {
    write_all(fd, kMagic + std::to_string(next) + "\n", tmp.string());
    if (::fsync(fd) != 0) throw std::system_error(errno, std::generic_category(), "fsync " + tmp.string());
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    throw std::system_error(errno, std::generic_category(), "rename to " + path_.string());
  }
  fsync_path(path_.has_parent_path() ? path_.parent_path() : ".", O_RDONLY | O_DIRECTORY);
  floor_ = next;
}

}  // namespace tidegate::buffer
