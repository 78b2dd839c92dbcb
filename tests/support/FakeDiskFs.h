#pragma once

// FakeDiskFs: an in-memory filesystem with a capacity, behind the DiskFs seam, for the unit
// tests of the disk faults (disk.fill, disk.io-load, test.file). It keeps what the injectors
// act on and check: directories, files with an inode, a size and allocated blocks, open
// handles (an unlinked open file keeps its blocks until closed, as on Linux), free and
// available space (root's reserve), the device and fsid a file lives on. fallocate may be
// missing (ext2) and may keep what fitted when it runs out (ext4) or nothing (tmpfs); O_DIRECT
// may be refused. Any operation's Nth call can be made to fail with an errno.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "injectors/disk/DiskFs.h"

namespace chaosd {

struct FakeDiskFsOptions {
  uint64_t blockSize = 4096;
  uint64_t blocks = 1024;       // the capacity
  uint64_t usedBlocks = 0;      // used by what the fake does not model (others' data)
  uint64_t reservedBlocks = 0;  // root's reserve: free, not available
  uint64_t dev = 2049;          // st_dev of the files on this filesystem
  std::string fsid = "0000abcd0000ef01";
  bool fallocate = true;               // false: EOPNOTSUPP, as on ext2
  bool keepPartialAllocation = false;  // ENOSPC keeps what fitted (ext4), else nothing (tmpfs)
  bool directIo = true;                // false: setting O_DIRECT fails with EINVAL
  bool directIoFails = false;  // IO on a file in O_DIRECT fails with EINVAL (a 4 KiB device)
  bool readOnly = false;
};

class FakeDiskFs final : public DiskFs {
 public:
  static constexpr uint64_t kOtherDev = 77;  // a file "on another filesystem"

  explicit FakeDiskFs(FakeDiskFsOptions options = FakeDiskFsOptions{}) : o_(std::move(options)) {
    addDirectory("/");
  }

  // ---- the kernel surface ----
  Result<DiskFileStat> stat(const std::string& path) override { return lstatAs("stat", path); }
  Result<DiskFileStat> lstat(const std::string& path) override { return lstatAs("lstat", path); }
  Result<std::string> realPath(const std::string& path) override {
    std::lock_guard lock(mu_);
    if (auto e = fault("realPath")) return *e;
    const std::string p = normal(path);
    if (!names_.contains(p)) return Error::fromErrno("realpath " + p, ENOENT);
    return p;
  }
  Result<FsStatus> statvfs(const std::string& path) override {
    std::lock_guard lock(mu_);
    if (auto e = fault("statvfs")) return *e;
    if (!names_.contains(normal(path))) return Error::fromErrno("statvfs " + path, ENOENT);
    return FsStatus{spaceLocked(), o_.readOnly};
  }
  Result<std::string> fsid(const std::string& path) override {
    std::lock_guard lock(mu_);
    if (auto e = fault("fsid")) return *e;
    auto it = names_.find(normal(path));
    if (it == names_.end()) return Error::fromErrno("statfs " + path, ENOENT);
    return nodes_.at(it->second).dev == o_.dev ? o_.fsid : std::string("ffff0000ffff0000");
  }
  Result<std::unique_ptr<DiskFile>> create(const std::string& path, bool exclusive,
                                           bool readWrite) override;
  Result<void> unlink(const std::string& path) override {
    std::lock_guard lock(mu_);
    if (auto e = fault("unlink")) return *e;
    auto it = names_.find(normal(path));
    if (it == names_.end()) return Error::fromErrno("unlink " + path, ENOENT);
    if (nodes_.at(it->second).directory) return Error::fromErrno("unlink " + path, EISDIR);
    if (o_.readOnly) return Error::fromErrno("unlink " + path, EROFS);
    dropName(it);
    return success();
  }
  Result<void> syncDirectory(const std::string& dir) override {
    std::lock_guard lock(mu_);
    if (auto e = fault("syncDirectory")) return *e;
    auto it = names_.find(normal(dir));
    if (it == names_.end() || !nodes_.at(it->second).directory) {
      return Error::fromErrno("opening directory " + dir, ENOENT);
    }
    return success();
  }

  // ---- what a test sets up and looks at ----
  // The Nth call (1: the next) of op from now fails with err, once. op is a method name:
  // stat lstat realPath statvfs fsid create unlink syncDirectory allocate writeAt readAt
  // truncate fstat sync setDirect.
  void failNth(const std::string& op, int nth, int err) {
    std::lock_guard lock(mu_);
    failures_[op] = Failure{calls_[op] + nth, err};
  }
  int calls(const std::string& op) const {
    std::lock_guard lock(mu_);
    auto it = calls_.find(op);
    return it == calls_.end() ? 0 : it->second;
  }
  // A directory; on another filesystem (mounted there) when dev is given.
  void addDirectory(const std::string& path, uint64_t dev = 0) {
    std::lock_guard lock(mu_);
    addNode(normal(path), Node{.directory = true, .dev = dev == 0 ? o_.dev : dev});
  }
  // Someone else's regular file of `bytes` allocated; its inode.
  uint64_t addFile(const std::string& path, uint64_t bytes, uint64_t dev = 0) {
    std::lock_guard lock(mu_);
    Node n{.regular = true, .dev = dev == 0 ? o_.dev : dev, .size = bytes};
    n.blocks = blocksFor(bytes);
    return addNode(normal(path), n);
  }
  // Removes path and everything under it (a directory that vanished).
  void removeTree(const std::string& path) {
    std::lock_guard lock(mu_);
    const std::string p = normal(path);
    for (auto it = names_.begin(); it != names_.end();) {
      const bool under = it->first == p || it->first.starts_with(p == "/" ? p : p + "/");
      it = under ? dropName(it) : std::next(it);
    }
  }
  bool exists(const std::string& path) const {
    std::lock_guard lock(mu_);
    return names_.contains(normal(path));
  }
  std::optional<DiskFileStat> statOf(const std::string& path) const {
    std::lock_guard lock(mu_);
    auto it = names_.find(normal(path));
    if (it == names_.end()) return std::nullopt;
    return describe(it->second);
  }
  // Names in dir (not below), sorted.
  std::vector<std::string> list(const std::string& dir) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    const std::string p = normal(dir);
    for (const auto& [name, inode] : names_) {
      if (name != p && std::filesystem::path(name).parent_path().string() == p) {
        out.push_back(std::filesystem::path(name).filename().string());
      }
    }
    return out;
  }
  FsSpace space() const {
    std::lock_guard lock(mu_);
    return spaceLocked();
  }
  int openFiles() const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& [inode, node] : nodes_) n += node.open;
    return n;
  }

 private:
  friend class FakeDiskFile;
  struct Node {
    bool regular = false;
    bool directory = false;
    uint64_t dev = 0;
    uint64_t size = 0;
    uint64_t blocks = 0;  // allocated
    int links = 0;
    int open = 0;
  };
  struct Failure {
    int at = 0;
    int err = 0;
  };

  static std::string normal(const std::string& path) {
    std::string p = std::filesystem::path(path).lexically_normal().string();
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
  }
  uint64_t blocksFor(uint64_t bytes) const { return (bytes + o_.blockSize - 1) / o_.blockSize; }
  uint64_t usedLocked() const {
    uint64_t used = o_.usedBlocks;
    for (const auto& [inode, node] : nodes_) used += node.blocks;
    return used;
  }
  FsSpace spaceLocked() const {
    const uint64_t used = std::min(usedLocked(), o_.blocks);
    const uint64_t free = o_.blocks - used;
    const uint64_t avail = free > o_.reservedBlocks ? free - o_.reservedBlocks : 0;
    return FsSpace{o_.blockSize, o_.blocks, free, avail};
  }
  uint64_t availLocked() const { return spaceLocked().availBlocks; }
  // Counts a call of op; the error it is to fail with, if it is the one set to fail.
  std::optional<Error> fault(const std::string& op) {
    const int n = ++calls_[op];
    auto it = failures_.find(op);
    if (it == failures_.end() || it->second.at != n) return std::nullopt;
    const int err = it->second.err;
    failures_.erase(it);
    return Error::fromErrno("fake " + op, err);
  }
  uint64_t addNode(const std::string& path, Node node) {
    node.links = 1;
    const uint64_t inode = nextInode_++;
    nodes_[inode] = node;
    names_[path] = inode;
    return inode;
  }
  std::map<std::string, uint64_t>::iterator dropName(std::map<std::string, uint64_t>::iterator it) {
    const uint64_t inode = it->second;
    it = names_.erase(it);
    release(inode, /*link=*/true);
    return it;
  }
  // A link or an open handle gone; the blocks are freed with the last of both.
  void release(uint64_t inode, bool link) {
    Node& n = nodes_.at(inode);
    (link ? n.links : n.open) -= 1;
    if (n.links <= 0 && n.open <= 0) nodes_.erase(inode);
  }
  DiskFileStat describe(uint64_t inode) const {
    const Node& n = nodes_.at(inode);
    return DiskFileStat{n.regular, n.directory, n.dev, inode, n.size, n.blocks * o_.blockSize};
  }
  Result<DiskFileStat> lstatAs(const std::string& op, const std::string& path) {
    std::lock_guard lock(mu_);
    if (auto e = fault(op)) return *e;
    auto it = names_.find(normal(path));
    if (it == names_.end()) return Error::fromErrno(op + " " + path, ENOENT);
    return describe(it->second);
  }

  const FakeDiskFsOptions o_;
  mutable std::mutex mu_;
  std::map<uint64_t, Node> nodes_;         // by inode
  std::map<std::string, uint64_t> names_;  // path -> inode
  uint64_t nextInode_ = 100;
  std::map<std::string, int> calls_;
  std::map<std::string, Failure> failures_;
};

// An open file of a FakeDiskFs (which must outlive it).
class FakeDiskFile final : public DiskFile {
 public:
  FakeDiskFile(FakeDiskFs& fs, uint64_t inode) : fs_(fs), inode_(inode) {}
  ~FakeDiskFile() override {
    std::lock_guard lock(fs_.mu_);
    fs_.release(inode_, /*link=*/false);
  }
  FakeDiskFile(const FakeDiskFile&) = delete;
  FakeDiskFile& operator=(const FakeDiskFile&) = delete;

  Result<void> allocate(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("allocate")) return *e;
    if (!fs_.o_.fallocate) return Error::fromErrno("fallocate", EOPNOTSUPP);
    FakeDiskFs::Node& n = fs_.nodes_.at(inode_);
    const uint64_t need = fs_.blocksFor(offset + length);
    const uint64_t extra = need > n.blocks ? need - n.blocks : 0;
    const uint64_t avail = fs_.availLocked();
    if (extra > avail) {
      if (fs_.o_.keepPartialAllocation) n.blocks += avail;
      return Error::fromErrno("fallocate", ENOSPC);
    }
    n.blocks += extra;
    n.size = std::max(n.size, offset + length);
    return success();
  }
  Result<size_t> writeAt(const char* /*data*/, size_t size, uint64_t offset) override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("writeAt")) return *e;
    if (direct_ && fs_.o_.directIoFails) return Error::fromErrno("pwrite", EINVAL);
    FakeDiskFs::Node& n = fs_.nodes_.at(inode_);
    const uint64_t need = fs_.blocksFor(offset + size);
    const uint64_t extra = need > n.blocks ? need - n.blocks : 0;
    const uint64_t avail = fs_.availLocked();
    if (extra <= avail) {
      n.blocks += extra;
      n.size = std::max<uint64_t>(n.size, offset + size);
      return size;
    }
    // What fits is written (a short write); nothing fits: ENOSPC.
    const uint64_t end = (n.blocks + avail) * fs_.o_.blockSize;
    if (end <= offset) return Error::fromErrno("pwrite", ENOSPC);
    n.blocks += avail;
    n.size = std::max(n.size, end);
    return static_cast<size_t>(end - offset);
  }
  Result<size_t> readAt(char* data, size_t size, uint64_t offset) override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("readAt")) return *e;
    if (direct_ && fs_.o_.directIoFails) return Error::fromErrno("pread", EINVAL);
    const FakeDiskFs::Node& n = fs_.nodes_.at(inode_);
    if (offset >= n.size) return size_t{0};
    const size_t got = static_cast<size_t>(std::min<uint64_t>(size, n.size - offset));
    std::memset(data, 0, got);
    return got;
  }
  Result<void> truncate(uint64_t size) override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("truncate")) return *e;
    FakeDiskFs::Node& n = fs_.nodes_.at(inode_);
    n.size = size;
    n.blocks = std::min(n.blocks, fs_.blocksFor(size));
    return success();
  }
  Result<DiskFileStat> stat() override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("fstat")) return *e;
    return fs_.describe(inode_);
  }
  Result<void> sync() override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("sync")) return *e;
    return success();
  }
  Result<void> setDirect(bool on) override {
    std::lock_guard lock(fs_.mu_);
    if (auto e = fs_.fault("setDirect")) return *e;
    if (on && !fs_.o_.directIo) return Error::fromErrno("F_SETFL O_DIRECT", EINVAL);
    direct_ = on;
    return success();
  }

 private:
  FakeDiskFs& fs_;
  uint64_t inode_;
  bool direct_ = false;
};

inline Result<std::unique_ptr<DiskFile>> FakeDiskFs::create(const std::string& path, bool exclusive,
                                                            bool /*readWrite*/) {
  std::lock_guard lock(mu_);
  if (auto e = fault("create")) return *e;
  const std::string p = normal(path);
  const std::string parent = std::filesystem::path(p).parent_path().string();
  auto dir = names_.find(parent);
  if (dir == names_.end() || !nodes_.at(dir->second).directory) {
    return Error::fromErrno("open " + p, ENOENT);
  }
  if (o_.readOnly) return Error::fromErrno("open " + p, EROFS);
  uint64_t inode = 0;
  if (auto it = names_.find(p); it != names_.end()) {
    if (exclusive) return Error::fromErrno("open " + p, EEXIST);
    if (nodes_.at(it->second).directory) return Error::fromErrno("open " + p, EISDIR);
    inode = it->second;
  } else {
    inode = addNode(p, Node{.regular = true, .dev = o_.dev});
  }
  nodes_.at(inode).open += 1;
  return std::unique_ptr<DiskFile>(std::make_unique<FakeDiskFile>(*this, inode));
}

}  // namespace chaosd
