#include "injectors/disk/DiskFs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "chaosd/base/Fd.h"

namespace chaosd {
namespace {

DiskFileStat fromStat(const struct stat& st) {
  return DiskFileStat{S_ISREG(st.st_mode),
                      S_ISDIR(st.st_mode),
                      static_cast<uint64_t>(st.st_dev),
                      static_cast<uint64_t>(st.st_ino),
                      static_cast<uint64_t>(st.st_size),
                      static_cast<uint64_t>(st.st_blocks) * 512};
}

std::string fsidOf(const struct statfs& sfs) {
  int v0 = 0;
  int v1 = 0;
  static_assert(sizeof(sfs.f_fsid) == 2 * sizeof(int));
  std::memcpy(&v0, &sfs.f_fsid, sizeof(int));
  std::memcpy(&v1, reinterpret_cast<const char*>(&sfs.f_fsid) + sizeof(int), sizeof(int));
  if (v0 == 0 && v1 == 0) return "";
  char buf[20];
  std::snprintf(buf, sizeof buf, "%08x%08x", static_cast<unsigned>(v0), static_cast<unsigned>(v1));
  return buf;
}

class RealDiskFile final : public DiskFile {
 public:
  RealDiskFile(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  Result<void> allocate(uint64_t offset, uint64_t length) override {
    if (::fallocate(fd_.get(), 0, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
      return Error::fromErrno("fallocate " + path_, errno);
    }
    return success();
  }
  Result<size_t> writeAt(const char* data, size_t size, uint64_t offset) override {
    const ssize_t n = ::pwrite(fd_.get(), data, size, static_cast<off_t>(offset));
    if (n < 0) return Error::fromErrno("pwrite " + path_, errno);
    return static_cast<size_t>(n);
  }
  Result<size_t> readAt(char* data, size_t size, uint64_t offset) override {
    const ssize_t n = ::pread(fd_.get(), data, size, static_cast<off_t>(offset));
    if (n < 0) return Error::fromErrno("pread " + path_, errno);
    return static_cast<size_t>(n);
  }
  Result<void> truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      return Error::fromErrno("ftruncate " + path_, errno);
    }
    return success();
  }
  Result<DiskFileStat> stat() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return Error::fromErrno("fstat " + path_, errno);
    return fromStat(st);
  }
  Result<void> sync() override {
    if (::fsync(fd_.get()) != 0) return Error::fromErrno("fsync " + path_, errno);
    return success();
  }
  Result<void> setDirect(bool on) override {
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags < 0) return Error::fromErrno("F_GETFL " + path_, errno);
    const int want = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
    if (::fcntl(fd_.get(), F_SETFL, want) != 0) return Error::fromErrno("F_SETFL " + path_, errno);
    return success();
  }

 private:
  Fd fd_;
  std::string path_;
};

class RealDiskFs final : public DiskFs {
 public:
  Result<DiskFileStat> stat(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Error::fromErrno("stat " + path, errno);
    return fromStat(st);
  }
  Result<DiskFileStat> lstat(const std::string& path) override {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Error::fromErrno("lstat " + path, errno);
    return fromStat(st);
  }
  Result<std::string> realPath(const std::string& path) override {
    char real[PATH_MAX];
    if (::realpath(path.c_str(), real) == nullptr) {
      return Error::fromErrno("resolving " + path, errno);
    }
    return std::string(real);
  }
  Result<FsStatus> statvfs(const std::string& path) override {
    struct statvfs v {};
    if (::statvfs(path.c_str(), &v) != 0) return Error::fromErrno("statvfs " + path, errno);
    return FsStatus{FsSpace{v.f_frsize, v.f_blocks, v.f_bfree, v.f_bavail},
                    (v.f_flag & ST_RDONLY) != 0};
  }
  Result<std::string> fsid(const std::string& path) override {
    struct statfs sfs {};
    if (::statfs(path.c_str(), &sfs) != 0) return Error::fromErrno("statfs " + path, errno);
    return fsidOf(sfs);
  }
  Result<std::unique_ptr<DiskFile>> create(const std::string& path, bool exclusive,
                                           bool readWrite) override {
    const int flags =
        (readWrite ? O_RDWR : O_WRONLY) | O_CREAT | (exclusive ? O_EXCL : 0) | O_CLOEXEC;
    Fd fd(::open(path.c_str(), flags, 0600));
    if (!fd) return Error::fromErrno("creating " + path, errno);
    return std::unique_ptr<DiskFile>(std::make_unique<RealDiskFile>(std::move(fd), path));
  }
  Result<void> unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Error::fromErrno("removing " + path, errno);
    return success();
  }
  Result<void> syncDirectory(const std::string& dir) override {
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) return Error::fromErrno("opening directory " + dir, errno);
    if (::fsync(dfd.get()) != 0) return Error::fromErrno("syncing directory " + dir, errno);
    return success();
  }
};

}  // namespace

std::shared_ptr<DiskFs> realDiskFs() { return std::make_shared<RealDiskFs>(); }

}  // namespace chaosd
