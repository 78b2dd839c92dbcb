#include "injectors/resource/StressRecords.h"

#include <filesystem>

#include "injectors/RecordFields.h"
#include "injectors/disk/OwnedFiles.h"

namespace chaosd {

std::string stressCacheFileName(std::string_view faultId, size_t n) {
  return ".chaosd-cache-" + std::string(faultId) + "-" + std::to_string(n);
}

std::string stressCgroupName(std::string_view faultId) { return "chaosd-" + std::string(faultId); }

nlohmann::json StressUndo::toJson() const {
  nlohmann::json j{{"version", version},     {"faultId", faultId},
                   {"faultType", faultType}, {"noop", noop},
                   {"placement", placement}, {"hostParent", hostParent},
                   {"cgroups", cgroups},     {"pressure", pressure},
                   {"v1Join", v1Join},       {"duration", duration.count()}};
  if (faultType == "cpu.stress") {
    j["workers"] = workers;
    j["load"] = load;
    j["climb"] = climb.count();
  } else {
    j["size"] = size;
    j["reserve"] = reserve;
    j["rate"] = rate;
    j["mode"] = mode;
    j["files"] = files;
  }
  return j;
}

Result<StressUndo> StressUndo::fromJson(const nlohmann::json& undo, std::string_view faultId) {
  RecordFields fields(undo, "stress undo record");
  StressUndo u;
  fields.required("faultId", u.faultId)
      .required("faultType", u.faultType)
      .optional("version", u.version)
      .optional("noop", u.noop)
      .optional("placement", u.placement)
      .optional("hostParent", u.hostParent)
      .optional("cgroups", u.cgroups)
      .optional("pressure", u.pressure)
      .optional("v1Join", u.v1Join)
      .optional("duration", u.duration)
      .optional("workers", u.workers)
      .optional("load", u.load)
      .optional("climb", u.climb)
      .optional("size", u.size)
      .optional("reserve", u.reserve)
      .optional("rate", u.rate)
      .optional("mode", u.mode)
      .optional("files", u.files);
  CHAOSD_TRY(fields.done());
  if (!faultId.empty() && u.faultId != faultId) {
    return Error(ErrorCode::kInvalid, "stress undo record of fault '" + u.faultId +
                                          "' given for fault '" + std::string(faultId) + "'");
  }
  if (!isFileNameSafe(u.faultId)) {
    return Error(ErrorCode::kInvalid, "stress undo record: unsafe fault id '" + u.faultId + "'");
  }
  const std::string name = stressCgroupName(u.faultId);
  for (const auto& dir : u.cgroups) {
    std::filesystem::path p(dir);
    if (!p.is_absolute() || p.filename() != name || dir.find("/../") != std::string::npos) {
      return Error(ErrorCode::kInvalid, u.faultType + " refuses to touch cgroup " + dir +
                                            ": not the absolute path of a cgroup named " + name);
    }
  }
  for (size_t i = 0; i < u.files.size(); ++i) {
    std::filesystem::path p(u.files[i]);
    if (!p.is_absolute() || p.filename() != stressCacheFileName(u.faultId, i) ||
        u.files[i].find("/../") != std::string::npos) {
      return Error(ErrorCode::kInvalid, u.faultType + " refuses to touch " + u.files[i] +
                                            ": not the absolute path of a file named " +
                                            stressCacheFileName(u.faultId, i));
    }
  }
  for (const auto& dirs : u.v1Join) {
    for (const auto& dir : dirs) {
      if (!std::filesystem::path(dir).is_absolute() || dir.find("/../") != std::string::npos) {
        return Error(ErrorCode::kInvalid,
                     "stress undo record: v1 cgroup " + dir + " is not an absolute path");
      }
    }
  }
  if (!u.hostParent.empty() && std::filesystem::path(u.hostParent).filename() != "chaosd-faults") {
    return Error(ErrorCode::kInvalid, "stress undo record: host parent " + u.hostParent +
                                          " is not a cgroup named chaosd-faults");
  }
  return u;
}

}  // namespace chaosd
