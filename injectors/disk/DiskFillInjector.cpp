#include "injectors/disk/DiskFillInjector.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "injectors/RecordFields.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFillPrefix = ".chaosd-fill-";
constexpr uint64_t kWriteBlock = 1 << 20;  // the write fallback's block: 1 MiB of zeros

// ENOSPC and EDQUOT both mean "no more room for us": a partial fill, not a failure.
bool isOutOfSpace(int err) { return err == ENOSPC || err == EDQUOT; }

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

// Allocated bytes and size of the file as the filesystem counts them.
Result<std::pair<uint64_t, uint64_t>> allocatedAndSize(DiskFile& file) {
  auto st = file.stat();
  if (!st) return reworded("fstat of the filler file", st.error());
  return std::pair<uint64_t, uint64_t>{st->allocated, st->size};
}

// Writes zero blocks of 1 MiB from offset 0; out of space, the file is cut back to what was
// written (a failed write may leave blocks past the end) and the fill is partial.
Result<FillOutcome> writeFill(DiskFile& file, uint64_t bytes) {
  const std::vector<char> zeros(kWriteBlock);  // heap, not 1 MiB of .rodata in every binary
  FillOutcome out{"write", false, ""};
  uint64_t written = 0;
  while (written < bytes) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kWriteBlock, bytes - written));
    auto r = file.writeAt(zeros.data(), n, written);
    const int err = r ? 0 : r.error().sysErrno();
    if (err == EINTR) continue;
    if (isOutOfSpace(err)) {
      out.partial = true;
      out.why = std::strerror(err);
      break;
    }
    if (!r) return reworded("writing the filler file", r.error());
    if (*r == 0) {
      out.partial = true;
      out.why = "write made no progress";
      break;
    }
    written += *r;
  }
  if (out.partial) {
    if (auto cut = file.truncate(written); !cut) {
      return reworded("cutting the filler file back to what was written", cut.error());
    }
  }
  return out;
}

// fallocate(mode 0) of the whole range. Out of space, what was allocated stays (ext4 keeps a
// partial allocation, tmpfs none) and the rest is requested in halving chunks from the end
// of the file, so the filesystem ends up as full as it can be made on every filesystem.
// Method "" when the filesystem has no fallocate (EOPNOTSUPP): the caller writes instead.
Result<FillOutcome> fallocateFill(DiskFile& file, uint64_t bytes, uint64_t blockSize) {
  FillOutcome out{"fallocate", false, ""};
  auto whole = file.allocate(0, bytes);
  if (whole) return out;
  const int err = whole.error().sysErrno();
  if (err == EOPNOTSUPP) return FillOutcome{"", false, ""};
  if (!isOutOfSpace(err)) return reworded("fallocate of the filler file", whole.error());
  out.partial = true;
  out.why = std::strerror(err);
  uint64_t chunk = bytes;
  for (int tries = 0; tries < 128 && chunk >= std::max<uint64_t>(blockSize, 1); ++tries) {
    auto now = allocatedAndSize(file);
    if (!now) return std::move(now).error();
    uint64_t end = now->second;
    if (end >= bytes) break;
    chunk = std::min(chunk, bytes - end);
    auto more = file.allocate(end, chunk);
    if (more) continue;
    if (!isOutOfSpace(more.error().sysErrno())) {
      return reworded("fallocate of the filler file", more.error());
    }
    chunk /= 2;
  }
  auto now = allocatedAndSize(file);
  if (!now) return std::move(now).error();
  out.partial = now->second < bytes;
  return out;
}

// Allocates bytes in the file: fallocate, or zero writes where the filesystem has none (or
// when forced to, for tests).
Result<FillOutcome> fillFile(DiskFile& file, uint64_t bytes, uint64_t blockSize, bool forceWrite) {
  Result<FillOutcome> outcome = FillOutcome{};
  if (!forceWrite) outcome = fallocateFill(file, bytes, blockSize);
  if (outcome && outcome->method.empty()) outcome = writeFill(file, bytes);
  return outcome;
}

}  // namespace

// ---- disk.fill ------------------------------------------------------------------------

DiskFillInjector::DiskFillInjector() : DiskFillInjector(realDiskFs(), Options{}) {}
DiskFillInjector::DiskFillInjector(std::shared_ptr<DiskFs> fs)
    : DiskFillInjector(std::move(fs), Options{}) {}
DiskFillInjector::DiskFillInjector(Options options) : DiskFillInjector(realDiskFs(), options) {}
DiskFillInjector::DiskFillInjector(std::shared_ptr<DiskFs> fs, Options options)
    : fs_(std::move(fs)), options_(options) {}

std::string DiskFillInjector::fileNameFor(std::string_view faultId) {
  return std::string(kFillPrefix) + std::string(faultId);
}

Result<PreparedFault> DiskFillInjector::prepare(const FaultRequest& request) {
  if (!isFileNameSafe(request.faultId)) {
    return Error(ErrorCode::kInvalid, "fault id '" + request.faultId + "' cannot name a file");
  }
  auto target = resolveDiskTarget(*fs_, request);
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
  if (fs_->lstat(u.file)) {
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
  auto before = readFsSpace(*fs_, u->dir);
  if (!before) return std::move(before).error();
  if (u->noop) return noopFill(*u, *before);
  auto dirSt = fs_->stat(u->dir);
  if (!dirSt) return reworded("stat " + u->dir, dirSt.error());
  if (!onRecordedFs(*fs_, u->dir, *dirSt, u->fs)) {
    return Error(ErrorCode::kConflict, u->dir + " is no longer on the filesystem prepared for");
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto file = fs_->create(u->file, /*exclusive=*/true, /*readWrite=*/false);
  if (!file) return reworded("creating " + u->file, file.error());
  if (auto st = (*file)->stat()) {
    std::lock_guard lock(mutex_);
    created_[faultId] = st->inode;
  }
  auto filled = fillFile(**file, u->bytes, before->blockSize, options_.forceWriteFallback);
  if (!filled) return std::move(filled).error();
  const auto t1 = std::chrono::steady_clock::now();
  if (auto synced = (*file)->sync(); !synced) return reworded("syncing " + u->file, synced.error());
  auto held = allocatedAndSize(**file);
  if (!held) return std::move(held).error();
  file->reset();
  CHAOSD_TRY(fs_->syncDirectory(u->dir));
  const auto t2 = std::chrono::steady_clock::now();
  auto after = readFsSpace(*fs_, u->dir);
  if (!after) return std::move(after).error();

  AppliedFault applied;
  applied.backend = filled->method;
  applied.observed = {{"file", u->file},
                      {"method", filled->method},
                      {"bytesPlanned", u->bytes},
                      {"bytesAllocated", held->first},
                      {"fileSize", held->second},
                      {"partial", filled->partial},
                      {"allocateSeconds", std::chrono::duration<double>(t1 - t0).count()},
                      {"syncSeconds", std::chrono::duration<double>(t2 - t1).count()},
                      {"usageBefore", dfUsage(*before)},
                      {"usageAfter", dfUsage(*after)},
                      {"availBytesBefore", before->availBytes()},
                      {"availBytesAfter", after->availBytes()}};
  if (filled->partial) {
    applied.observed["partialReason"] = filled->why;
    log::get("disk")->warn("partial fill fault={} file={} planned={} allocated={} reason=\"{}\"",
                           faultId, u->file, u->bytes, held->first, filled->why);
  }
  return applied;
}

Result<nlohmann::json> DiskFillInjector::revert(const std::string& faultId,
                                                const nlohmann::json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  auto removed =
      removeOwnedFile(*fs_, u->file, fileNameFor(u->faultId), u->fs, createdInode(faultId));
  if (!removed) return std::move(removed).error();
  {
    std::lock_guard lock(mutex_);
    created_.erase(faultId);  // gone: whatever takes the name later is not ours
  }
  nlohmann::json out{{"removed", removed->removed}, {"freedBytes", removed->freedBytes}};
  if (auto after = readFsSpace(*fs_, u->dir)) out["usageAfterRevert"] = dfUsage(*after);
  return out;
}

Result<std::vector<std::string>> DiskFillInjector::audit(const nlohmann::json& undo) {
  auto u = recordOf(undo, "");
  if (!u) return std::move(u).error();
  std::vector<std::string> left;
  auto line = auditOwnedFile(*fs_, u->file, u->fs, "filler file", createdInode(u->faultId));
  if (!line.empty()) left.push_back(std::move(line));
  return left;
}

std::optional<uint64_t> DiskFillInjector::createdInode(const std::string& faultId) {
  std::lock_guard lock(mutex_);
  auto it = created_.find(faultId);
  if (it == created_.end()) return std::nullopt;
  return it->second;
}

}  // namespace chaosd
