#include "injectors/disk/DiskFillInjector.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "experiments/model/Experiment.h"
#include "injectors/RecordFields.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFillPrefix = ".chaosd-fill-";
constexpr uint64_t kWriteBlock = 1 << 20;  // the write fallback's block: 1 MiB of zeros

// ENOSPC and EDQUOT both mean "no more room for us": a partial fill, not a failure.
bool isOutOfSpace(int err) { return err == ENOSPC || err == EDQUOT; }

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

// True when a file with st (found at path) lives on the recorded filesystem.
bool onRecordedFs(const std::string& path, const struct stat& st, const FsIdentity& fs) {
  if (static_cast<uint64_t>(st.st_dev) == fs.dev) return true;
  if (fs.fsid.empty()) return false;
  struct statfs sfs {};
  return ::statfs(path.c_str(), &sfs) == 0 && fsidOf(sfs) == fs.fsid;
}

// The record, when it belongs to faultId ("" for any: the audit).
Result<DiskFillUndo> recordOf(const nlohmann::json& undo, std::string_view faultId) {
  auto u = DiskFillUndo::fromJson(undo);
  if (!u) return u;
  CHAOSD_TRY(checkRecordOwner("disk.fill undo record", u->faultId, faultId));
  return u;
}

// "fill /data (41.3% used) with 2GiB to 90% use in /data/.chaosd-fill-r1"
std::string describeFill(const DiskFillUndo& u) {
  char usedText[32];
  std::snprintf(usedText, sizeof usedText, "%.1f%%", u.usageAtPrepare * 100.0);
  const std::string where = u.dir + " (" + usedText + " used)";
  if (u.bytes == 0) {
    const std::string why =
        u.usage ? "already at or over " + units::formatPercent(*u.usage) : "a size of 0";
    return "fill " + where + ": " + why + ", nothing to fill";
  }
  return "fill " + where + " with " + units::formatSize(u.bytes) +
         (u.usage ? " to " + units::formatPercent(*u.usage) + " use" : "") + " in " + u.file;
}

// A recorded no-op: the filesystem was already at the usage asked for.
AppliedFault noopFill(const DiskFillUndo& u, const FsSpace& now) {
  AppliedFault applied;
  applied.backend = "none";
  applied.observed = {{"noop", true},
                      {"bytesPlanned", 0},
                      {"bytesAllocated", 0},
                      {"partial", false},
                      {"file", u.file},
                      {"usageBefore", dfUsage(now)},
                      {"usageAfter", dfUsage(now)}};
  return applied;
}

struct FillOutcome {
  std::string method;  // "fallocate" or "write"
  bool partial = false;
  std::string why;  // why it is partial
};

// Allocated bytes and size of fd as the filesystem counts them.
Result<std::pair<uint64_t, uint64_t>> allocatedAndSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error::fromErrno("fstat of the filler file", errno);
  return std::pair<uint64_t, uint64_t>{static_cast<uint64_t>(st.st_blocks) * 512,
                                       static_cast<uint64_t>(st.st_size)};
}

// Writes zero blocks of 1 MiB from offset 0; out of space, the file is cut back to what was
// written (a failed write may leave blocks past the end) and the fill is partial.
Result<FillOutcome> writeFill(int fd, uint64_t bytes) {
  const std::vector<char> zeros(kWriteBlock);  // heap, not 1 MiB of .rodata in every binary
  FillOutcome out{"write", false, ""};
  uint64_t written = 0;
  while (written < bytes) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kWriteBlock, bytes - written));
    ssize_t r = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(written));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && isOutOfSpace(errno)) {
      out.partial = true;
      out.why = std::strerror(errno);
      break;
    }
    if (r < 0) return Error::fromErrno("writing the filler file", errno);
    if (r == 0) {
      out.partial = true;
      out.why = "write made no progress";
      break;
    }
    written += static_cast<uint64_t>(r);
  }
  if (out.partial && ::ftruncate(fd, static_cast<off_t>(written)) != 0) {
    return Error::fromErrno("cutting the filler file back to what was written", errno);
  }
  return out;
}

// fallocate(mode 0) of the whole range. Out of space, what was allocated stays (ext4 keeps a
// partial allocation, tmpfs none) and the rest is requested in halving chunks from the end
// of the file, so the filesystem ends up as full as it can be made on every filesystem.
// Method "" when the filesystem has no fallocate (EOPNOTSUPP): the caller writes instead.
Result<FillOutcome> fallocateFill(int fd, uint64_t bytes, uint64_t blockSize) {
  FillOutcome out{"fallocate", false, ""};
  if (::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) == 0) return out;
  if (errno == EOPNOTSUPP) return FillOutcome{"", false, ""};
  if (!isOutOfSpace(errno)) return Error::fromErrno("fallocate of the filler file", errno);
  out.partial = true;
  out.why = std::strerror(errno);
  uint64_t chunk = bytes;
  for (int tries = 0; tries < 128 && chunk >= std::max<uint64_t>(blockSize, 1); ++tries) {
    auto now = allocatedAndSize(fd);
    if (!now) return std::move(now).error();
    uint64_t end = now->second;
    if (end >= bytes) break;
    chunk = std::min(chunk, bytes - end);
    if (::fallocate(fd, 0, static_cast<off_t>(end), static_cast<off_t>(chunk)) == 0) continue;
    if (!isOutOfSpace(errno)) return Error::fromErrno("fallocate of the filler file", errno);
    chunk /= 2;
  }
  auto now = allocatedAndSize(fd);
  if (!now) return std::move(now).error();
  out.partial = now->second < bytes;
  return out;
}

}  // namespace

// ---- shared helpers ---------------------------------------------------------------------

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

Result<FsSpace> readFsSpace(const std::string& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) return Error::fromErrno("statvfs " + path, errno);
  return FsSpace{v.f_frsize, v.f_blocks, v.f_bfree, v.f_bavail};
}

Result<void> syncDirectory(const std::string& dir) {
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return Error::fromErrno("opening directory " + dir, errno);
  if (::fsync(dfd.get()) != 0) return Error::fromErrno("syncing directory " + dir, errno);
  return success();
}

Result<DiskTarget> resolveDiskTarget(const FaultRequest& request) {
  if (request.target == nullptr || request.target->kind != TargetKind::kPath ||
      request.target->path.empty()) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs a path target");
  }
  const std::string& path = request.target->path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                 "target path " + path + ": " + std::strerror(errno), errno);
  }
  std::string dir = S_ISDIR(st.st_mode) ? path : fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  char real[PATH_MAX];
  if (::realpath(dir.c_str(), real) == nullptr) return Error::fromErrno("resolving " + dir, errno);
  DiskTarget t;
  t.dir = real;
  if (::stat(t.dir.c_str(), &st) != 0) return Error::fromErrno("stat " + t.dir, errno);
  t.fs.dev = static_cast<uint64_t>(st.st_dev);
  struct statfs sfs {};
  if (::statfs(t.dir.c_str(), &sfs) != 0) return Error::fromErrno("statfs " + t.dir, errno);
  t.fs.fsid = fsidOf(sfs);
  struct statvfs v {};
  if (::statvfs(t.dir.c_str(), &v) != 0) return Error::fromErrno("statvfs " + t.dir, errno);
  t.space = FsSpace{v.f_frsize, v.f_blocks, v.f_bfree, v.f_bavail};
  t.readOnly = (v.f_flag & ST_RDONLY) != 0;
  return t;
}

Result<RemovedFile> removeOwnedFile(const std::string& file, std::string_view name,
                                    const FsIdentity& id) {
  if (fs::path(file).filename().string() != name) {
    return Error(ErrorCode::kInvalid,
                 "refusing to remove " + file + ": not named " + std::string(name));
  }
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return RemovedFile{};
    return Error::fromErrno("lstat " + file, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(ErrorCode::kConflict, file + " is not a regular file: not ours, left alone");
  }
  if (!onRecordedFs(file, st, id)) {
    return Error(ErrorCode::kConflict, file + " is on another filesystem (dev " +
                                           std::to_string(st.st_dev) + ", ours was " +
                                           std::to_string(id.dev) + "): not ours, left alone");
  }
  uint64_t freed = static_cast<uint64_t>(st.st_blocks) * 512;
  if (::unlink(file.c_str()) != 0) {
    if (errno == ENOENT) return RemovedFile{};
    return Error::fromErrno("removing " + file, errno);
  }
  CHAOSD_TRY(syncDirectory(fs::path(file).parent_path().string()));
  return RemovedFile{true, freed};
}

std::string auditOwnedFile(const std::string& file, const FsIdentity& id, std::string_view what) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return "";
  if (!S_ISREG(st.st_mode) || !onRecordedFs(file, st, id)) {
    return "a file named like our " + std::string(what) + " exists on another filesystem: " + file +
           " (left alone)";
  }
  return std::string(what) + " left: " + file + " (" +
         units::formatSize(static_cast<uint64_t>(st.st_blocks) * 512) + " allocated)";
}

// ---- disk.fill ------------------------------------------------------------------------

std::string DiskFillInjector::fileNameFor(std::string_view faultId) {
  return std::string(kFillPrefix) + std::string(faultId);
}

Result<PreparedFault> DiskFillInjector::prepare(const FaultRequest& request) {
  if (!isFileNameSafe(request.faultId)) {
    return Error(ErrorCode::kInvalid, "fault id '" + request.faultId + "' cannot name a file");
  }
  auto target = resolveDiskTarget(request);
  if (!target) return std::move(target).error();
  if (target->readOnly) {
    return Error(ErrorCode::kUnsupported, "the filesystem of " + target->dir + " is read-only");
  }
  auto args = DiskFillArgs::fromJson(request.args);
  if (!args) return std::move(args).error();

  DiskFillUndo u;
  u.faultId = request.faultId;
  u.dir = target->dir;
  u.file = (fs::path(target->dir) / fileNameFor(request.faultId)).string();
  u.fs = target->fs;
  u.bytes = args->size ? *args->size : bytesToReachUsage(target->space, *args->usage);
  u.noop = u.bytes == 0;
  u.usageAtPrepare = dfUsage(target->space);
  u.usage = args->usage;
  struct stat st {};
  if (::lstat(u.file.c_str(), &st) == 0) {
    return Error(ErrorCode::kConflict, u.file + " already exists: a leftover of this fault id");
  }

  PreparedFault prepared;
  prepared.undo = u.toJson();
  prepared.description = describeFill(u);
  prepared.resources = {"file:" + u.file};
  return prepared;
}

Result<AppliedFault> DiskFillInjector::apply(const std::string& faultId,
                                             const nlohmann::json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  auto before = readFsSpace(u->dir);
  if (!before) return std::move(before).error();
  if (u->noop) return noopFill(*u, *before);
  struct stat dirSt {};
  if (::stat(u->dir.c_str(), &dirSt) != 0) return Error::fromErrno("stat " + u->dir, errno);
  if (!onRecordedFs(u->dir, dirSt, u->fs)) {
    return Error(ErrorCode::kConflict, u->dir + " is no longer on the filesystem prepared for");
  }

  const auto t0 = std::chrono::steady_clock::now();
  Fd fd(::open(u->file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Error::fromErrno("creating " + u->file, errno);
  Result<FillOutcome> outcome = FillOutcome{};
  if (!options_.forceWriteFallback) outcome = fallocateFill(fd.get(), u->bytes, before->blockSize);
  if (outcome && outcome->method.empty()) outcome = writeFill(fd.get(), u->bytes);
  if (!outcome) return std::move(outcome).error();
  const auto t1 = std::chrono::steady_clock::now();
  if (::fsync(fd.get()) != 0) return Error::fromErrno("syncing " + u->file, errno);
  auto held = allocatedAndSize(fd.get());
  if (!held) return std::move(held).error();
  fd.reset();
  CHAOSD_TRY(syncDirectory(u->dir));
  const auto t2 = std::chrono::steady_clock::now();
  auto after = readFsSpace(u->dir);
  if (!after) return std::move(after).error();

  AppliedFault applied;
  applied.backend = outcome->method;
  applied.observed = {{"file", u->file},
                      {"method", outcome->method},
                      {"bytesPlanned", u->bytes},
                      {"bytesAllocated", held->first},
                      {"fileSize", held->second},
                      {"partial", outcome->partial},
                      {"allocateSeconds", std::chrono::duration<double>(t1 - t0).count()},
                      {"syncSeconds", std::chrono::duration<double>(t2 - t1).count()},
                      {"usageBefore", dfUsage(*before)},
                      {"usageAfter", dfUsage(*after)},
                      {"availBytesBefore", before->availBytes()},
                      {"availBytesAfter", after->availBytes()}};
  if (outcome->partial) {
    applied.observed["partialReason"] = outcome->why;
    log::get("disk")->warn("partial fill fault={} file={} planned={} allocated={} reason=\"{}\"",
                           faultId, u->file, u->bytes, held->first, outcome->why);
  }
  return applied;
}

Result<nlohmann::json> DiskFillInjector::revert(const std::string& faultId,
                                                const nlohmann::json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  auto removed = removeOwnedFile(u->file, fileNameFor(u->faultId), u->fs);
  if (!removed) return std::move(removed).error();
  nlohmann::json out{{"removed", removed->removed}, {"freedBytes", removed->freedBytes}};
  if (auto after = readFsSpace(u->dir)) out["usageAfterRevert"] = dfUsage(*after);
  return out;
}

Result<std::vector<std::string>> DiskFillInjector::audit(const nlohmann::json& undo) {
  auto u = recordOf(undo, "");
  if (!u) return std::move(u).error();
  std::vector<std::string> left;
  if (auto line = auditOwnedFile(u->file, u->fs, "filler file"); !line.empty()) {
    left.push_back(std::move(line));
  }
  return left;
}

}  // namespace chaosd
