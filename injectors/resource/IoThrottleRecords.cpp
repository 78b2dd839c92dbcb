#include "injectors/resource/IoThrottleRecords.h"

#include <array>
#include <set>

#include "injectors/RecordFields.h"
#include "injectors/disk/OwnedFiles.h"

namespace chaosd {
namespace {

constexpr std::string_view kWhat = "io.throttle undo record";

struct KeyNames {
  std::string_view arg;
  std::string_view v1File;
  std::string_view v2Key;
};
constexpr std::array<KeyNames, 4> kKeys{{
    {"readBps", "blkio.throttle.read_bps_device", "rbps"},
    {"writeBps", "blkio.throttle.write_bps_device", "wbps"},
    {"readIops", "blkio.throttle.read_iops_device", "riops"},
    {"writeIops", "blkio.throttle.write_iops_device", "wiops"},
}};

Error invalid(const std::string& message) {
  return Error(ErrorCode::kInvalid, std::string(kWhat) + ": " + message);
}

bool allDigits(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "rbps=N wbps=max ...": io.max keys, each at most once, with a number or max.
bool isIoMaxLimits(std::string_view text) {
  if (text.empty()) return false;
  std::set<std::string_view> seen;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(pos, end - pos);
    size_t eq = token.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = token.substr(0, eq);
    std::string_view value = token.substr(eq + 1);
    bool known = false;
    for (const auto& k : kKeys) known = known || k.v2Key == key;
    if (!known || !seen.insert(key).second || (value != "max" && !allDigits(value))) return false;
    pos = end + 1;
  }
  return true;
}

// An absolute path strictly under mount, without "." or ".." components or empty ones.
bool isStrictlyUnder(const std::string& dir, const std::string& mount) {
  if (mount.empty() || dir.size() <= mount.size() + 1 || dir.compare(0, mount.size(), mount) != 0 ||
      dir[mount.size()] != '/') {
    return false;
  }
  std::string_view rest(dir);
  rest.remove_prefix(mount.size() + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t end = rest.find('/', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view part = rest.substr(pos, end - pos);
    if (part.empty() || part == "." || part == "..") return false;
    pos = end + 1;
  }
  return true;
}

Result<IoThrottleCgroup> cgroupFromJson(const nlohmann::json& j, const std::string& mode,
                                        const std::string& mount) {
  IoThrottleCgroup c;
  RecordFields fields(j, std::string(kWhat) + " cgroup");
  fields.required("dir", c.dir);
  CHAOSD_TRY(fields.done());
  if (!isStrictlyUnder(c.dir, mount)) {
    return invalid("refuses cgroup " + c.dir + ": not a cgroup under the " +
                   (mode == "v2" ? "cgroup2" : "blkio") + " mount" +
                   (mount.empty() ? " (none is mounted)" : " " + mount));
  }
  if (!j.contains("files") || !j["files"].is_array()) return invalid("cgroup without files");
  std::set<std::string> names;
  for (const auto& f : j["files"]) {
    IoThrottleWrite w;
    RecordFields ff(f, std::string(kWhat) + " file");
    ff.required("file", w.file).required("previous", w.previous).required("written", w.written);
    CHAOSD_TRY(ff.done());
    const std::string prefix = c.dir + "/";
    const std::string name =
        w.file.compare(0, prefix.size(), prefix) == 0 ? w.file.substr(prefix.size()) : "";
    bool known = false;
    for (const auto& k : kKeys) known = known || (mode == "v1" && k.v1File == name);
    if (mode == "v2") known = name == "io.max";
    if (!known || !names.insert(name).second) {
      return invalid("refuses to write " + w.file + ": not " +
                     (mode == "v2" ? "the io.max" : "a blkio.throttle.*_device") +
                     " file of cgroup " + c.dir + " (or named twice)");
    }
    const bool good =
        mode == "v2" ? isIoMaxLimits(w.written) && (w.previous.empty() || isIoMaxLimits(w.previous))
                     : allDigits(w.written) && (w.previous.empty() || allDigits(w.previous));
    if (!good) {
      return invalid("values of " + w.file + " are not in the kernel's syntax: previous '" +
                     w.previous + "', written '" + w.written + "'");
    }
    c.files.push_back(std::move(w));
  }
  return c;
}

}  // namespace

std::string blkioThrottleFile(std::string_view key) {
  for (const auto& k : kKeys) {
    if (k.arg == key) return std::string(k.v1File);
  }
  return "";
}

std::string ioMaxKey(std::string_view key) {
  for (const auto& k : kKeys) {
    if (k.arg == key) return std::string(k.v2Key);
  }
  return "";
}

nlohmann::json IoThrottleUndo::toJson() const {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& c : cgroups) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& w : c.files) {
      files.push_back({{"file", w.file}, {"previous", w.previous}, {"written", w.written}});
    }
    groups.push_back({{"dir", c.dir}, {"files", files}});
  }
  return {{"version", version}, {"faultId", faultId},       {"noop", noop}, {"mode", mode},
          {"device", device},   {"deviceName", deviceName}, {"path", path}, {"cgroups", groups}};
}

Result<IoThrottleUndo> IoThrottleUndo::fromJson(const nlohmann::json& undo,
                                                std::string_view faultId,
                                                const IoCgroupMounts& mounts) {
  RecordFields fields(undo, std::string(kWhat));
  IoThrottleUndo u;
  fields.required("faultId", u.faultId)
      .optional("version", u.version)
      .optional("noop", u.noop)
      .required("mode", u.mode)
      .optional("device", u.device)
      .optional("deviceName", u.deviceName)
      .optional("path", u.path);
  CHAOSD_TRY(fields.done());
  CHAOSD_TRY(checkRecordOwner(kWhat, u.faultId, faultId));
  if (!isFileNameSafe(u.faultId)) return invalid("unsafe fault id '" + u.faultId + "'");
  if (u.version != 1) return invalid("version " + std::to_string(u.version) + " is not known");
  if (u.mode != "v1" && u.mode != "v2") return invalid("mode '" + u.mode + "' is not v1 or v2");
  if (!undo.contains("cgroups") || !undo["cgroups"].is_array()) {
    if (u.noop && !undo.contains("cgroups")) return u;
    return invalid("no cgroups array");
  }
  if (!undo["cgroups"].empty() && !isDeviceNumber(u.device)) {
    return invalid("device '" + u.device + "' is not MAJ:MIN");
  }
  const std::string& mount = u.mode == "v2" ? mounts.v2 : mounts.blkioV1;
  for (const auto& c : undo["cgroups"]) {
    auto group = cgroupFromJson(c, u.mode, mount);
    if (!group) return std::move(group).error();
    u.cgroups.push_back(std::move(*group));
  }
  return u;
}

Result<IoThrottleUndo> IoThrottleUndo::fromJson(const nlohmann::json& undo,
                                                std::string_view faultId) {
  auto mounts = ioCgroupMounts();
  if (!mounts) return std::move(mounts).error().withContext(std::string(kWhat));
  return fromJson(undo, faultId, *mounts);
}

}  // namespace chaosd
