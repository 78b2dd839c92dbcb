#include "injectors/testing/FileFaultInjector.h"

#include <cerrno>
#include <filesystem>

#include "injectors/testing/FileFaultRecords.h"

namespace chaosd {
namespace {

// The record's file; "test.file" never touches another.
Result<std::string> fileOf(const nlohmann::json& undo) {
  auto u = FileFaultUndo::fromJson(undo);
  if (!u) return std::move(u).error();
  return std::move(u->file);
}

}  // namespace

FileFaultInjector::FileFaultInjector() : FileFaultInjector(realDiskFs()) {}
FileFaultInjector::FileFaultInjector(std::shared_ptr<DiskFs> fs) : fs_(std::move(fs)) {}

std::string FileFaultInjector::fileFor(const std::string& dir, const std::string& faultId) {
  return (std::filesystem::path(dir) / (std::string(kTestFilePrefix) + faultId)).string();
}

Result<PreparedFault> FileFaultInjector::prepare(const FaultRequest& request) {
  auto args = FileFaultArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  const std::string& dir = args->path;
  auto st = fs_->stat(dir);
  if (!st) return reworded("test.file directory " + dir, st.error());
  if (!st->directory) return Error(ErrorCode::kInvalid, dir + " is not a directory");
  std::string file = fileFor(dir, request.faultId);
  PreparedFault prepared;
  prepared.undo = FileFaultUndo{file}.toJson();
  prepared.description = "test file " + file;
  prepared.resources = {"file:" + file};
  return prepared;
}

Result<AppliedFault> FileFaultInjector::apply(const std::string& faultId,
                                              const nlohmann::json& undo) {
  auto file = fileOf(undo);
  if (!file) return std::move(file).error();
  auto handle = fs_->create(*file, /*exclusive=*/false, /*readWrite=*/false);
  if (!handle) return reworded("creating " + *file, handle.error());
  std::string content = faultId + "\n";
  if (auto written = (*handle)->writeAt(content.data(), content.size(), 0); !written) {
    return reworded("writing " + *file, written.error());
  }
  if (auto synced = (*handle)->sync(); !synced) return reworded("syncing " + *file, synced.error());
  handle->reset();
  std::string dir = std::filesystem::path(*file).parent_path().string();
  if (auto synced = fs_->syncDirectory(dir.empty() ? "." : dir); !synced) {
    return reworded("syncing " + dir, synced.error());
  }
  AppliedFault applied;
  applied.backend = "file";
  applied.observed = {{"file", *file}};
  return applied;
}

Result<nlohmann::json> FileFaultInjector::revert(const std::string& /*faultId*/,
                                                 const nlohmann::json& undo) {
  auto file = fileOf(undo);
  if (!file) return std::move(file).error();
  // The removal is not synced: it is what the guardian's kill-to-revert time measures, and a
  // removal lost to a power cut leaves a file the audit reports (a real filler file would be
  // synced here, since it holds disk space across the reboot).
  auto unlinked = fs_->unlink(*file);
  if (!unlinked && unlinked.error().sysErrno() != ENOENT) {
    return reworded("removing " + *file, unlinked.error());
  }
  return nlohmann::json{{"removed", unlinked.ok()}};
}

Result<std::vector<std::string>> FileFaultInjector::audit(const nlohmann::json& undo) {
  auto file = fileOf(undo);
  if (!file) return std::move(file).error();
  std::vector<std::string> left;
  if (fs_->lstat(*file)) left.push_back("test file left: " + *file);
  return left;
}

void registerTestFaults(FaultRegistry& registry) {
  FaultType type;
  type.name = std::string(kTestFileFault);
  type.summary = "creates a file of our own name in a directory (for tests)";
  type.schema.args = {arg::required(arg::make("path", ArgType::kString, "an existing directory"))};
  type.factory = [fs = realDiskFs()] { return std::make_unique<FileFaultInjector>(fs); };
  // A second registration (two test helpers sharing a registry) is harmless.
  (void)registry.add(std::move(type));
}

}  // namespace chaosd
