#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// The typed arguments and undo record of "test.file" (FileFaultInjector), each with its one
// json conversion. The undo record keeps the format the journal and guardian tests journal:
// {"file"}. fromJson() refuses a damaged record as a value (kInvalid).
namespace chaosd {

// The test fault's files are named <dir>/.chaosd-test-<faultId>.
inline constexpr std::string_view kTestFilePrefix = ".chaosd-test-";

struct FileFaultArgs {
  std::string path;  // an existing directory

  static Result<FileFaultArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

struct FileFaultUndo {
  std::string file;  // its name starts with kTestFilePrefix: only such a file is touched

  static Result<FileFaultUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

}  // namespace chaosd
