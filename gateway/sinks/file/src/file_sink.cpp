#include "tidegate/sinks/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>
#include <vector>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "tidegate/proto/convert.h"
#include "tidegate/proto/envelope.h"

namespace tidegate::sinks {
namespace {

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// `stem` + `ext`, or with "-2", "-3", ... before `ext` when a file of that
// name (complete or partial) exists: runs that start within the same second
// from the same cursor (every run after a crash that came before the cursor
// was stored) must not overwrite each other's files.
std::filesystem::path unused_name(const std::filesystem::path& dir, const std::string& stem, const std::string& ext) {
  for (int n = 1;; ++n) {
    const auto name = dir / (stem + (n == 1 ? "" : "-" + std::to_string(n)) + ext);
    std::error_code ec;
    if (!std::filesystem::exists(name, ec) && !std::filesystem::exists(name.string() + ".partial", ec)) return name;
  }
}

}  // namespace

struct FileSink::Impl {
  FileSinkOptions opts;
  int fd = -1;
  std::filesystem::path partial;
  std::uint64_t size = 0;
  std::chrono::steady_clock::time_point opened;

  std::string extension() const { return opts.format == FileFormat::kJsonLines ? ".jsonl" : ".pb"; }

  void finish() {
    if (fd < 0) return;
    ::fdatasync(fd);
    ::close(fd);
    fd = -1;
    auto final_name = partial;
    final_name.replace_extension();  // drop ".partial"
    std::error_code ec;
    std::filesystem::rename(partial, final_name, ec);
    fsync_dir(opts.directory);
    prune();
  }

  // Keeps at most max_files complete files of ours, deleting the oldest.
  void prune() {
    if (opts.max_files == 0) return;
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(opts.directory, ec)) {
      const auto name = e.path().filename().string();
      if (name.rfind(opts.prefix + "-", 0) == 0 && e.path().extension() == extension()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());  // names start with the UTC time
    while (files.size() > opts.max_files) {
      std::filesystem::remove(files.front(), ec);
      files.erase(files.begin());
    }
  }

  std::string open_file(std::uint64_t first_seq) {
    partial = unused_name(opts.directory, opts.prefix + "-" + utc_stamp() + "-" + std::to_string(first_seq),
                          extension());
    partial += ".partial";
    fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return "create " + partial.string() + ": " + std::strerror(errno);
    size = 0;
    opened = std::chrono::steady_clock::now();
    return {};
  }

  // Into `encoded`, whose capacity is kept from batch to batch: a fresh
  // string per batch grew by copies and, past malloc's mmap threshold,
  // faulted its pages in anew each time.
  const std::string& encode(const std::vector<buffer::Record>& batch) {
    std::string& out = encoded;
    out.clear();
    if (opts.format == FileFormat::kJsonLines) {
      for (const auto& r : batch) {
        proto::append_record_json(out, r, opts.gateway_id);
        out += '\n';
      }
    } else {
      // Protobuf's own length-delimited form (varint size, then the message),
      // which its parseDelimitedFrom readers in every language understand.
      google::protobuf::io::StringOutputStream stream(&out);
      google::protobuf::util::SerializeDelimitedToZeroCopyStream(proto::make_batch(opts.gateway_id, 0, batch),
                                                                 &stream);
    }
    if (out.capacity() > kKeptEncodeBytes && out.size() < kKeptEncodeBytes / 4) {
      out.shrink_to_fit();  // one huge batch does not pin its memory forever
    }
    return out;
  }
  static constexpr std::size_t kKeptEncodeBytes = 16u << 20;
  std::string encoded;
};

FileSink::FileSink(FileSinkOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  std::filesystem::create_directories(impl_->opts.directory);  // throws filesystem_error
  // A crash leaves the file it was writing as ".partial": complete it. Its
  // last batch may come again (the cursor had not moved): readers drop
  // duplicates by (gateway, seq).
  for (const auto& e : std::filesystem::directory_iterator(impl_->opts.directory)) {
    const auto name = e.path().filename().string();
    if (name.rfind(impl_->opts.prefix + "-", 0) == 0 && e.path().extension() == ".partial") {
      auto final_name = e.path();
      final_name.replace_extension();
      if (std::filesystem::exists(final_name)) {  // never over a complete file
        const auto ext = final_name.extension().string();
        final_name = unused_name(impl_->opts.directory, final_name.stem().string(), ext);
      }
      std::filesystem::rename(e.path(), final_name);
    }
  }
}

FileSink::~FileSink() { impl_->finish(); }

const std::string& FileSink::name() const { return impl_->opts.name; }

forward::SinkLimits FileSink::limits() const {
  forward::SinkLimits l;
  l.max_records = kMaxBatch;
  l.max_bytes = 8u << 20;
  l.max_record_bytes = 16u << 20;
  return l;
}

std::string FileSink::describe() const {
  return "files in " + impl_->opts.directory.string() +
         (impl_->opts.format == FileFormat::kJsonLines ? " (JSON lines)" : " (length-delimited protobuf)");
}

void FileSink::finish_file() { impl_->finish(); }

forward::SendResult FileSink::send(const std::vector<buffer::Record>& batch) {
  forward::SendResult result;
  if (batch.empty()) return result;
  auto& d = *impl_;
  if (d.fd >= 0 && (d.size >= d.opts.max_file_bytes ||
                    std::chrono::steady_clock::now() - d.opened >= d.opts.max_file_age)) {
    d.finish();
  }
  if (d.fd < 0) {
    if (auto error = d.open_file(batch.front().seq); !error.empty()) {
      result.batch = forward::Outcome::kRetry;
      result.error = error;
      return result;
    }
  }
  const std::string& bytes = d.encode(batch);
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(d.fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      // Cut a torn write back off, so the file holds only whole batches.
      if (::ftruncate(d.fd, static_cast<off_t>(d.size)) != 0) {
        // The file now ends in a partial batch; close it so nothing follows.
        d.finish();
      }
      result.batch = forward::Outcome::kRetry;
      result.error = "write " + d.partial.string() + ": " + std::strerror(err);
      return result;
    }
    written += static_cast<std::size_t>(n);
  }
  if (d.opts.fsync && ::fdatasync(d.fd) != 0) {
    const int err = errno;
    result.batch = forward::Outcome::kRetry;
    result.error = "fdatasync " + d.partial.string() + ": " + std::strerror(err);
    // Take the unsynced batch back out so its retry does not double it; if
    // even that fails, close the file so nothing is appended after it.
    if (::ftruncate(d.fd, static_cast<off_t>(d.size)) != 0) d.finish();
    return result;
  }
  d.size += bytes.size();
  return result;
}

}  // namespace tidegate::sinks
