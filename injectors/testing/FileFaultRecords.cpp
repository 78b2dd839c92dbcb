#include "injectors/testing/FileFaultRecords.h"

#include <filesystem>

#include "injectors/RecordFields.h"

namespace chaosd {

Result<FileFaultArgs> FileFaultArgs::fromJson(const nlohmann::json& args) {
  RecordFields fields(args, "test.file args");
  FileFaultArgs a;
  if (!fields.required("path", a.path).ok()) {
    return Error(ErrorCode::kInvalid, "test.file needs args.path (a directory)");
  }
  return a;
}

nlohmann::json FileFaultArgs::toJson() const { return {{"path", path}}; }

Result<FileFaultUndo> FileFaultUndo::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "test.file undo record");
  FileFaultUndo u;
  CHAOSD_TRY(fields.required("file", u.file).done());
  // Touch only what we own: a name of our own pattern.
  if (std::filesystem::path(u.file).filename().string().rfind(kTestFilePrefix, 0) != 0) {
    return Error(ErrorCode::kInvalid, "test.file refuses to touch " + u.file + ": not ours");
  }
  return u;
}

nlohmann::json FileFaultUndo::toJson() const { return {{"file", file}}; }

}  // namespace chaosd
