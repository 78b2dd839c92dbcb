#include "injectors/testing/FileFaultInjector.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "chaosd/base/Fd.h"
#include "injectors/testing/FileFaultRecords.h"

namespace chaosd {
namespace {

// The record's file; "test.file" never touches another.
Result<std::string> fileOf(const nlohmann::json& undo) {
  auto u = FileFaultUndo::fromJson(undo);
  if (!u) return std::move(u).error();
  return std::move(u->file);
}

Result<void> syncDirectoryOf(const std::string& file) {
  std::string dir = std::filesystem::path(file).parent_path().string();
  Fd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return Error::fromErrno("opening " + dir, errno);
  if (::fsync(dfd.get()) != 0) return Error::fromErrno("syncing " + dir, errno);
  return success();
}

}  // namespace

std::string FileFaultInjector::fileFor(const std::string& dir, const std::string& faultId) {
  return (std::filesystem::path(dir) / (std::string(kTestFilePrefix) + faultId)).string();
}

Result<PreparedFault> FileFaultInjector::prepare(const FaultRequest& request) {
  auto args = FileFaultArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  const std::string& dir = args->path;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Error::fromErrno("test.file directory " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Error(ErrorCode::kInvalid, dir + " is not a directory");
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
  Fd fd(::open(file->c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::fromErrno("creating " + *file, errno);
  std::string content = faultId + "\n";
  if (::write(fd.get(), content.data(), content.size()) < 0) {
    return Error::fromErrno("writing " + *file, errno);
  }
  if (::fsync(fd.get()) != 0) return Error::fromErrno("syncing " + *file, errno);
  CHAOSD_TRY(syncDirectoryOf(*file));
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
  bool removed = ::unlink(file->c_str()) == 0;
  if (!removed && errno != ENOENT) return Error::fromErrno("removing " + *file, errno);
  return nlohmann::json{{"removed", removed}};
}

Result<std::vector<std::string>> FileFaultInjector::audit(const nlohmann::json& undo) {
  auto file = fileOf(undo);
  if (!file) return std::move(file).error();
  std::vector<std::string> left;
  struct stat st {};
  if (::lstat(file->c_str(), &st) == 0) left.push_back("test file left: " + *file);
  return left;
}

void registerTestFaults(FaultRegistry& registry) {
  FaultType type;
  type.name = std::string(kTestFileFault);
  type.summary = "creates a file of our own name in a directory (for tests)";
  type.schema.args = {arg::required(arg::make("path", ArgType::kString, "an existing directory"))};
  type.factory = [] { return std::make_unique<FileFaultInjector>(); };
  // A second registration (two test helpers sharing a registry) is harmless.
  (void)registry.add(std::move(type));
}

}  // namespace chaosd
