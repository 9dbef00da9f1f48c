#include "agent/persistence.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

namespace spoa::agent {

std::uint64_t unix_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

bool write_file_atomic(const std::string& path, std::string_view bytes, std::string* error) {
  auto fail = [&](const std::string& what) {
    if (error) *error = what + ": " + std::strerror(errno);
    return false;
  };
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open " + tmp);
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      return fail("write " + tmp);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    return fail("fsync " + tmp);
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return fail("close " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    return fail("rename " + tmp + " -> " + path);
  }
  // Make the rename itself durable. A failure here leaves a valid file behind: not an error.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

snapshot_read read_file(const std::string& path, std::size_t max_bytes, std::string* out,
                        std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return snapshot_read::missing;
    if (error) *error = std::strerror(errno);
    return snapshot_read::error;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (error) *error = "not a regular file";
    ::close(fd);
    return snapshot_read::error;
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return snapshot_read::too_large;
  }
  out->clear();
  try {
    out->resize(static_cast<std::size_t>(st.st_size));
  } catch (const std::bad_alloc&) {
    ::close(fd);
    if (error) *error = "out of memory";
    return snapshot_read::error;
  }
  std::size_t got = 0;
  while (got < out->size()) {
    const ssize_t n = ::read(fd, out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (error) *error = std::strerror(errno);
      ::close(fd);
      return snapshot_read::error;
    }
    if (n == 0) break;  // shrank while reading: decode sees the shorter text as truncated
    got += static_cast<std::size_t>(n);
  }
  out->resize(got);
  ::close(fd);
  return snapshot_read::ok;
}

bool write_snapshot(const std::string& path, routing::snapshot::document doc, std::string* error) {
  namespace snapshot = routing::snapshot;
  try {
    // Oldest first: the loader keeps the newest entries when the file holds more than max_keys,
    // and inserting in this order rebuilds the LRU order.
    std::stable_sort(doc.entries.begin(), doc.entries.end(),
                     [](const snapshot::entry& a, const snapshot::entry& b) {
                       return a.last_used_unix_ms < b.last_used_unix_ms;
                     });
    return write_file_atomic(path, snapshot::encode(doc), error);
  } catch (const std::exception& ex) {
    if (error) *error = ex.what();
    return false;
  }
}

bool save_snapshot(const routing::placement& p, const std::string& path, std::uint64_t now_ms,
                   std::uint64_t unix_ms, std::string* error) {
  try {
    if (unix_ms == 0) unix_ms = unix_now_ms();
    return write_snapshot(path, p.snapshot_document(now_ms, unix_ms), error);
  } catch (const std::exception& ex) {
    if (error) *error = ex.what();
    return false;
  }
}

std::string load_snapshot(routing::placement& p, const std::string& path, std::uint64_t now_ms,
                          std::uint64_t unix_ms) {
  namespace snapshot = routing::snapshot;
  try {
    if (unix_ms == 0) unix_ms = unix_now_ms();
    std::string bytes, err;
    switch (read_file(path, p.max_snapshot_bytes(), &bytes, &err)) {
      case snapshot_read::missing:
        return "missing";
      case snapshot_read::too_large:
        return "ignored: larger than max_keys allows";
      case snapshot_read::error:
        return "ignored: " + err;
      case snapshot_read::ok:
        break;
    }
    snapshot::decode_result r =
        snapshot::decode(bytes, p.table().max_keys(), routing::affinity_table::no_worker);
    if (!r.ok) return "ignored: " + r.error;
    return p.restore(r.doc, now_ms, unix_ms);
  } catch (const std::exception& ex) {
    return std::string("ignored: ") + ex.what();
  }
}

}  // namespace spoa::agent
