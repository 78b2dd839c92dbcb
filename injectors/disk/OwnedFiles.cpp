#include "injectors/disk/OwnedFiles.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>

#include "chaosd/base/Units.h"
#include "experiments/model/Experiment.h"

namespace chaosd {
namespace fsys = std::filesystem;

bool onRecordedFs(DiskFs& fs, const std::string& path, const DiskFileStat& st,
                  const FsIdentity& id) {
  if (st.dev == id.dev) return true;
  if (id.fsid.empty()) return false;
  auto fsid = fs.fsid(path);
  return fsid && *fsid == id.fsid;
}

double dfUsage(const FsSpace& space) {
  if (space.freeBlocks > space.blocks) return 0;
  long double used = static_cast<long double>(space.blocks - space.freeBlocks);
  long double total = used + static_cast<long double>(space.availBlocks);
  return total <= 0 ? 0.0 : static_cast<double>(used / total);
}

uint64_t bytesToReachUsage(const FsSpace& space, double target) {
  if (space.freeBlocks > space.blocks || !(target > 0)) return 0;
  target = std::min(target, 1.0);
  uint64_t used = space.blocks - space.freeBlocks;
  long double total = static_cast<long double>(used) + static_cast<long double>(space.availBlocks);
  // ceil, forgiving the last bits of a product such as 0.9 * 100 = 90.00000000000001.
  long double wanted = std::ceil(static_cast<long double>(target) * total - 1e-6L);
  if (wanted <= static_cast<long double>(used)) return 0;
  uint64_t blocks = static_cast<uint64_t>(wanted) - used;
  blocks = std::min(blocks, space.availBlocks);
  return blocks * space.blockSize;
}

bool isFileNameSafe(std::string_view faultId) {
  if (faultId.empty() || faultId.size() > 200 || faultId.front() == '.') return false;
  for (char c : faultId) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<FsSpace> readFsSpace(DiskFs& fs, const std::string& path) {
  auto status = fs.statvfs(path);
  if (!status) return reworded("statvfs " + path, status.error());
  return status->space;
}

Result<FsSpace> readFsSpace(const std::string& path) { return readFsSpace(*realDiskFs(), path); }

namespace {

bool throughProcRoot(const std::string& path) {
  static const std::regex kProcRoot(R"(^/proc/[0-9]+/root(/.*)?$)");
  return std::regex_match(path, kProcRoot);
}

}  // namespace

Result<DiskTarget> resolveDiskTarget(DiskFs& fs, const FaultRequest& request) {
  if (request.target == nullptr || request.target->kind != TargetKind::kPath ||
      request.target->path.empty()) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs a path target");
  }
  const std::string& path = request.target->path;
  auto st = fs.stat(path);
  if (!st) {
    const int err = st.error().sysErrno();
    return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                 "target path " + path + ": " + std::strerror(err), err);
  }
  std::string dir = st->directory ? path : fsys::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  DiskTarget t;
  if (throughProcRoot(dir)) {
    // A container's view (/proc/PID/root/...): realpath would follow the magic link to the
    // host's "/" and land on the host's path of the same name. Kept as given, normalised.
    t.dir = fsys::path(dir).lexically_normal().string();
    while (t.dir.size() > 1 && t.dir.back() == '/') t.dir.pop_back();
  } else {
    auto real = fs.realPath(dir);
    if (!real) return reworded("resolving " + dir, real.error());
    t.dir = std::move(*real);
  }
  auto dirSt = fs.stat(t.dir);
  if (!dirSt) return reworded("stat " + t.dir, dirSt.error());
  t.fs.dev = dirSt->dev;
  auto fsid = fs.fsid(t.dir);
  if (!fsid) return reworded("statfs " + t.dir, fsid.error());
  t.fs.fsid = std::move(*fsid);
  auto status = fs.statvfs(t.dir);
  if (!status) return reworded("statvfs " + t.dir, status.error());
  t.space = status->space;
  t.readOnly = status->readOnly;
  return t;
}

Result<RemovedFile> removeOwnedFile(DiskFs& fs, const std::string& file, std::string_view name,
                                    const FsIdentity& id, std::optional<uint64_t> inode) {
  if (fsys::path(file).filename().string() != name) {
    return Error(ErrorCode::kInvalid,
                 "refusing to remove " + file + ": not named " + std::string(name));
  }
  auto st = fs.lstat(file);
  if (!st) {
    if (st.error().sysErrno() == ENOENT) return RemovedFile{};
    return reworded("lstat " + file, st.error());
  }
  if (!st->regular) {
    return Error(ErrorCode::kConflict, file + " is not a regular file: not ours, left alone");
  }
  if (!onRecordedFs(fs, file, *st, id)) {
    return Error(ErrorCode::kConflict, file + " is on another filesystem (dev " +
                                           std::to_string(st->dev) + ", ours was " +
                                           std::to_string(id.dev) + "): not ours, left alone");
  }
  if (inode && st->inode != *inode) {
    return Error(ErrorCode::kConflict, file + " was replaced since it was created (inode " +
                                           std::to_string(st->inode) + ", ours was " +
                                           std::to_string(*inode) + "): not ours, left alone");
  }
  auto unlinked = fs.unlink(file);
  if (!unlinked) {
    if (unlinked.error().sysErrno() == ENOENT) return RemovedFile{};
    return reworded("removing " + file, unlinked.error());
  }
  CHAOSD_TRY(fs.syncDirectory(fsys::path(file).parent_path().string()));
  return RemovedFile{true, st->allocated};
}

std::string auditOwnedFile(DiskFs& fs, const std::string& file, const FsIdentity& id,
                           std::string_view what, std::optional<uint64_t> inode) {
  auto st = fs.lstat(file);
  if (!st) return "";
  if (!st->regular || !onRecordedFs(fs, file, *st, id)) {
    return "a file named like our " + std::string(what) + " exists on another filesystem: " + file +
           " (left alone)";
  }
  if (inode && st->inode != *inode) {
    return "a file named like our " + std::string(what) + " replaced it: " + file +
           " (another inode, left alone)";
  }
  return std::string(what) + " left: " + file + " (" + units::formatSize(st->allocated) +
         " allocated)";
}

}  // namespace chaosd
