#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// The filesystem as the disk faults (disk.fill, disk.io-load, test.file) touch it: a seam, so
// their apply, revert and failure paths run against an in-memory filesystem in unit tests
// (tests/support/FakeDiskFs.h) and against the kernel (realDiskFs()) everywhere else. Every
// failure is an Error carrying the errno the kernel gave (sysErrno()): callers branch on
// ENOSPC, EOPNOTSUPP, EINVAL and ENOENT, and word the message themselves.
namespace chaosd {

// Free space as statvfs reports it, in blocks of f_frsize.
struct FsSpace {
  uint64_t blockSize = 0;    // f_frsize
  uint64_t blocks = 0;       // f_blocks
  uint64_t freeBlocks = 0;   // f_bfree: every free block, root's reserve included
  uint64_t availBlocks = 0;  // f_bavail: what an unprivileged user may still allocate
  uint64_t availBytes() const { return availBlocks * blockSize; }
};

// What statvfs says of the filesystem holding a path.
struct FsStatus {
  FsSpace space;
  bool readOnly = false;  // ST_RDONLY
};

// What stat, lstat or fstat says of a file, as far as the disk faults look.
struct DiskFileStat {
  bool regular = false;
  bool directory = false;
  uint64_t dev = 0;        // st_dev
  uint64_t inode = 0;      // st_ino
  uint64_t size = 0;       // st_size
  uint64_t allocated = 0;  // st_blocks * 512
};

// One open file (a file descriptor); closed when destroyed.
class DiskFile {
 public:
  virtual ~DiskFile() = default;
  // fallocate(mode 0) of [offset, offset + length). EOPNOTSUPP: the filesystem has none;
  // ENOSPC or EDQUOT: out of room (what fitted may stay allocated, as on ext4).
  virtual Result<void> allocate(uint64_t offset, uint64_t length) = 0;
  // pwrite: the bytes written, fewer than asked when the filesystem fills up.
  virtual Result<size_t> writeAt(const char* data, size_t size, uint64_t offset) = 0;
  // pread: the bytes read, 0 at the end of the file.
  virtual Result<size_t> readAt(char* data, size_t size, uint64_t offset) = 0;
  // ftruncate: cuts the file to (or extends it sparsely to) size bytes.
  virtual Result<void> truncate(uint64_t size) = 0;
  // fstat.
  virtual Result<DiskFileStat> stat() = 0;
  // fsync: the file's data and size are durable.
  virtual Result<void> sync() = 0;
  // Sets or clears O_DIRECT (fcntl F_SETFL); the filesystem may refuse to set it (EINVAL).
  virtual Result<void> setDirect(bool on) = 0;
};

class DiskFs {
 public:
  virtual ~DiskFs() = default;
  // stat, following symlinks. ENOENT when absent.
  virtual Result<DiskFileStat> stat(const std::string& path) = 0;
  // lstat: a symlink is described, not followed. ENOENT when absent.
  virtual Result<DiskFileStat> lstat(const std::string& path) = 0;
  // realpath: the path made absolute and free of symlinks.
  virtual Result<std::string> realPath(const std::string& path) = 0;
  // statvfs of the filesystem holding path.
  virtual Result<FsStatus> statvfs(const std::string& path) = 0;
  // statfs's f_fsid of the filesystem holding path, as 16 hex digits; "" when it reports 0.
  virtual Result<std::string> fsid(const std::string& path) = 0;
  // Opens path for writing (read-write when readWrite), creating it with mode 0600; when
  // exclusive, EEXIST if it exists (O_EXCL).
  virtual Result<std::unique_ptr<DiskFile>> create(const std::string& path, bool exclusive,
                                                   bool readWrite) = 0;
  // unlink. ENOENT when absent.
  virtual Result<void> unlink(const std::string& path) = 0;
  // Opens the directory and fsyncs it, so a file created or removed in it stays so.
  virtual Result<void> syncDirectory(const std::string& dir) = 0;
};

// The kernel's filesystem: today's system calls, one each.
std::shared_ptr<DiskFs> realDiskFs();

// A DiskFs failure in the caller's words, "what: strerror(errno)", keeping its errno.
inline Error reworded(std::string_view what, const Error& error) {
  return Error::fromErrno(what, error.sysErrno());
}

}  // namespace chaosd
