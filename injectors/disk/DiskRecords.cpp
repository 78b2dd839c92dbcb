#include "injectors/disk/DiskRecords.h"

#include <filesystem>

#include "injectors/RecordFields.h"
#include "injectors/disk/DiskFillInjector.h"
#include "injectors/disk/IoLoadInjector.h"

namespace chaosd {

namespace fs = std::filesystem;

Result<FsIdentity> FsIdentity::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "disk undo record");
  FsIdentity id;
  fields.required("dev", id.dev).optional("fsid", id.fsid);
  CHAOSD_TRY(fields.done());
  return id;
}

nlohmann::json FsIdentity::toJson() const { return {{"dev", dev}, {"fsid", fsid}}; }

// ---- disk.fill ----------------------------------------------------------------------------

Result<DiskFillArgs> DiskFillArgs::fromJson(const nlohmann::json& args) {
  RecordFields fields(args, "disk.fill args");
  DiskFillArgs a;
  fields.optional("size", a.size).optional("usage", a.usage);
  CHAOSD_TRY(fields.done());
  if (a.size.has_value() == a.usage.has_value()) {
    return Error(ErrorCode::kInvalid, "disk.fill needs size or usage");
  }
  return a;
}

nlohmann::json DiskFillArgs::toJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (size) j["size"] = *size;
  if (usage) j["usage"] = *usage;
  return j;
}

// Nothing but the file the record names is ever touched, so the file must carry the fault's
// name and be an absolute path.
Result<DiskFillUndo> DiskFillUndo::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "disk.fill undo record");
  DiskFillUndo u;
  fields.required("faultId", u.faultId)
      .required("file", u.file)
      .optional("version", u.version)
      .optional("dir", u.dir)
      .optional("bytes", u.bytes)
      .optional("noop", u.noop)
      .optional("usageAtPrepare", u.usageAtPrepare)
      .optional("usage", u.usage);
  CHAOSD_TRY(fields.done());
  const fs::path file(u.file);
  const std::string name = DiskFillInjector::fileNameFor(u.faultId);
  if (!isFileNameSafe(u.faultId) || file.filename().string() != name || !file.is_absolute()) {
    return Error(ErrorCode::kInvalid, "disk.fill refuses to touch " + u.file +
                                          ": not the absolute path of a file named " + name);
  }
  // `dir` only names the filesystem in messages; what is touched is decided by the file and
  // the filesystem identity, which revert and audit check against the mount there now.
  if (!fields.has("dir")) u.dir = file.parent_path().string();
  auto id = FsIdentity::fromJson(undo);
  if (!id) return std::move(id).error();
  u.fs = std::move(*id);
  return u;
}

nlohmann::json DiskFillUndo::toJson() const {
  nlohmann::json j{{"version", version},
                   {"faultId", faultId},
                   {"dir", dir},
                   {"file", file},
                   {"bytes", bytes},
                   {"noop", noop},
                   {"usageAtPrepare", usageAtPrepare}};
  j.update(fs.toJson());
  if (usage) j["usage"] = *usage;
  return j;
}

// ---- disk.io-load -------------------------------------------------------------------------

Result<IoLoadArgs> IoLoadArgs::fromJson(const nlohmann::json& args) {
  RecordFields fields(args, "disk.io-load args");
  IoLoadArgs a;
  fields.optional("workers", a.workers)
      .optional("readShare", a.readShare)
      .optional("blockSize", a.blockSize)
      .optional("direct", a.direct)
      .optional("fileSize", a.fileSize)
      .optional("bytes", a.bytes);
  CHAOSD_TRY(fields.done());
  return a;
}

nlohmann::json IoLoadArgs::toJson() const {
  nlohmann::json j{{"workers", workers},
                   {"readShare", readShare},
                   {"blockSize", blockSize},
                   {"direct", direct},
                   {"fileSize", fileSize}};
  if (bytes > 0) j["bytes"] = bytes;  // absent: unbounded
  return j;
}

// Every file must be <dir>/.chaosd-io-<faultId>-<n>, n its index: nothing else is touched.
Result<IoLoadUndo> IoLoadUndo::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "disk.io-load undo record");
  IoLoadUndo u;
  fields.required("faultId", u.faultId)
      .required("dir", u.dir)
      .required("files", u.files)
      .optional("version", u.version)
      .optional("durationNs", u.duration);
  CHAOSD_TRY(fields.done());
  if (!isFileNameSafe(u.faultId) || !fs::path(u.dir).is_absolute()) {
    return Error(ErrorCode::kInvalid, "disk.io-load undo record has a bad fault id or directory");
  }
  for (size_t i = 0; i < u.files.size(); ++i) {
    const std::string expected =
        (fs::path(u.dir) / IoLoadInjector::fileNameFor(u.faultId, static_cast<int>(i))).string();
    if (u.files[i] != expected) {
      return Error(ErrorCode::kInvalid,
                   "disk.io-load refuses to touch " + u.files[i] + ": expected " + expected);
    }
  }
  auto id = FsIdentity::fromJson(undo);
  if (!id) return std::move(id).error();
  u.fs = std::move(*id);
  auto load = IoLoadArgs::fromJson(undo);
  if (!load) return std::move(load).error().withContext("disk.io-load undo record");
  u.load = *load;
  return u;
}

nlohmann::json IoLoadUndo::toJson() const {
  nlohmann::json j{{"version", version}, {"faultId", faultId}, {"dir", dir}, {"files", files}};
  j.update(fs.toJson());
  j.update(load.toJson());
  j["durationNs"] = duration.count();
  return j;
}

}  // namespace chaosd
