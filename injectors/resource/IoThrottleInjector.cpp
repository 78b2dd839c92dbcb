#include "injectors/resource/IoThrottleInjector.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "injectors/process/ProcessInjector.h"

namespace chaosd {
namespace {

constexpr std::array<const char*, 4> kArgKeys = {"readBps", "writeBps", "readIops", "writeIops"};
constexpr const char* kAllMax = "rbps=max wbps=max riops=max wiops=max";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '/' || s.back() == '\n') && s.size() > 1) s.pop_back();
  return s;
}

// "write 1MiB/s" / "read 100 IOPS".
std::string limitText(std::string_view key, uint64_t value) {
  const bool bps = key.find("Bps") != std::string_view::npos;
  const std::string dir = key.substr(0, 4) == "read" ? "read" : "write";
  return dir + " " + (bps ? units::formatSize(value) + "/s" : std::to_string(value) + " IOPS");
}

// The cgroup directory of a process for the mode, refusing the root cgroup (that would throttle
// the whole machine, chaosd included).
Result<std::string> cgroupDirOf(const std::string& mode, const IoCgroupMounts& mounts, pid_t pid,
                                const std::string& procRoot) {
  std::string path;
  std::string mount;
  if (mode == "v2") {
    auto p = cgroup2PathOfPid(pid, procRoot);
    if (!p) return std::move(p).error();
    path = *p;
    mount = trimmed(mounts.v2);
  } else {
    auto p = blkioPathOfPid(pid, procRoot);
    if (!p) return std::move(p).error();
    path = *p;
    mount = trimmed(mounts.blkioV1);
    const std::string root = trimmed(mounts.blkioRoot);
    if (root != "/") {
      if (path.compare(0, root.size(), root) != 0) {
        return Error(ErrorCode::kNotFound, "blkio cgroup " + path + " of process " +
                                               std::to_string(pid) +
                                               " is outside the mounted subtree " + root);
      }
      path = path.substr(root.size());
    }
  }
  if (path.empty() || path == "/") {
    return Error(ErrorCode::kInvalid,
                 "process " + std::to_string(pid) + " is in the root " +
                     (mode == "v2" ? "cgroup" : "blkio cgroup") +
                     ": io.throttle limits a cgroup of the target's own, never the whole machine");
  }
  return mount + path;
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Result<std::string> currentThrottleValue(const std::string& mode, const std::string& file,
                                         const std::string& device) {
  auto text = readKernelFile(file);
  if (!text) return std::move(text).error();
  auto value = mode == "v2" ? ioMaxLineOf(*text, device) : throttleRuleOf(*text, device);
  return value.value_or("");
}

std::string restoreText(const std::string& mode, const std::string& device,
                        const std::string& previous) {
  if (!previous.empty()) return device + " " + previous;
  return device + " " + (mode == "v2" ? std::string(kAllMax) : std::string("0"));
}

IoThrottleInjector::IoThrottleInjector(std::shared_ptr<ProcessKernel> kernel, IoThrottleHost host)
    : kernel_(std::move(kernel)), host_(std::move(host)) {}

Result<IoThrottleUndo> IoThrottleInjector::record(const nlohmann::json& undo,
                                                  std::string_view faultId) const {
  auto mounts = ioCgroupMounts(host_.mountinfo);
  if (!mounts) return std::move(mounts).error();
  return IoThrottleUndo::fromJson(undo, faultId, *mounts);
}

Result<PreparedFault> IoThrottleInjector::prepare(const FaultRequest& request) {
  IoThrottleUndo u;
  u.faultId = request.faultId;
  u.path = request.args.value("path", std::string());
  if (request.target == nullptr) {
    return Error(ErrorCode::kInvalid, "io.throttle needs a process or exec target");
  }
  struct stat st {};
  if (::stat(u.path.c_str(), &st) != 0) {
    return Error::fromErrno("io.throttle: path " + u.path, errno);
  }
  // A block device node names its own device (path: /dev/vdb); anything else, the device of
  // the filesystem that holds it.
  const dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
  const std::string fsDevice = std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  auto mountinfo = readKernelFile(host_.mountinfo);
  if (!mountinfo) return std::move(mountinfo).error();
  if (major(dev) == 0) {
    std::string fstype = fstypeOfDevice(*mountinfo, fsDevice);
    return Error(ErrorCode::kInvalid,
                 "io.throttle: " + u.path + " is on a " + (fstype.empty() ? "virtual" : fstype) +
                     " filesystem (device " + fsDevice +
                     "), which has no block device to throttle; give a path on a disk");
  }
  auto disk = wholeDiskOf(major(dev), minor(dev), host_.sysfsRoot);
  if (!disk) return std::move(disk).error().withContext("io.throttle: the device of " + u.path);
  u.device = disk->device;
  u.deviceName = disk->name;

  const IoCgroupMounts mounts = ioCgroupMountsFromText(*mountinfo);
  auto plan = planProcessFault(*kernel_, request, 0, std::chrono::nanoseconds(0));
  if (!plan) return std::move(plan).error();
  u.noop = plan->noop;

  // v2 when every selected process's cgroup has io.max (the io controller is enabled for it).
  bool v2 = !mounts.v2.empty() && !plan->victims.empty();
  for (const Victim& v : plan->victims) {
    auto dir = cgroupDirOf("v2", mounts, v.pid, host_.procRoot);
    v2 = v2 && dir.ok() && fileExists(*dir + "/io.max");
  }
  // Nothing matched (`empty: skip`): a no-op in whichever mode the machine has.
  if (plan->victims.empty()) v2 = mounts.blkioV1.empty();
  u.mode = v2 ? "v2" : "v1";
  if (!v2 && mounts.blkioV1.empty()) {
    return Error(ErrorCode::kUnsupported,
                 "io.throttle needs the io controller: it is not enabled for the target's cgroup "
                 "in cgroup v2 (no io.max; enable it in the parent's cgroup.subtree_control) and "
                 "no cgroup v1 hierarchy has blkio");
  }

  std::set<std::string> seen;
  std::vector<std::string> hierarchyPaths;
  std::vector<std::string> was;  // of the first cgroup
  bool anyPrevious = false;
  for (const Victim& v : plan->victims) {
    auto dir = cgroupDirOf(u.mode, mounts, v.pid, host_.procRoot);
    if (!dir) {
      return std::move(dir).error().withContext("the cgroup of process " + std::to_string(v.pid) +
                                                " (" + v.comm + ")");
    }
    if (!seen.insert(*dir).second) continue;
    const bool firstCgroup = u.cgroups.empty();
    IoThrottleCgroup c;
    c.dir = *dir;
    const std::string& mount = trimmed(u.mode == "v2" ? mounts.v2 : mounts.blkioV1);
    hierarchyPaths.push_back(c.dir.substr(mount.size()));
    std::string v2Written;
    for (const char* key : kArgKeys) {
      if (!request.args.contains(key)) continue;
      const std::string value = std::to_string(request.args[key].get<uint64_t>());
      if (u.mode == "v2") {
        v2Written += (v2Written.empty() ? "" : " ") + ioMaxKey(key) + "=" + value;
        continue;
      }
      IoThrottleWrite w{c.dir + "/" + blkioThrottleFile(key), "", value};
      auto previous = currentThrottleValue(u.mode, w.file, u.device);
      if (!previous) return std::move(previous).error().withContext("io.throttle prepare");
      w.previous = *previous;
      if (firstCgroup)
        was.push_back(std::string(key) + " " + (w.previous.empty() ? "none" : w.previous));
      anyPrevious = anyPrevious || !w.previous.empty();
      c.files.push_back(std::move(w));
    }
    if (u.mode == "v2") {
      IoThrottleWrite w{c.dir + "/io.max", "", v2Written};
      auto previous = currentThrottleValue(u.mode, w.file, u.device);
      if (!previous) return std::move(previous).error().withContext("io.throttle prepare");
      w.previous = *previous;
      if (firstCgroup) was.push_back(w.previous.empty() ? "none" : w.previous);
      anyPrevious = anyPrevious || !w.previous.empty();
      c.files.push_back(std::move(w));
    }
    u.cgroups.push_back(std::move(c));
  }

  std::ostringstream d;
  d << "io.throttle ";
  bool first = true;
  for (const char* key : kArgKeys) {
    if (!request.args.contains(key)) continue;
    d << (first ? "" : ", ") << limitText(key, request.args[key].get<uint64_t>());
    first = false;
  }
  d << " on " << u.device << " (" << (u.deviceName.empty() ? "?" : u.deviceName);
  if (!disk->partitionOf.empty()) d << ", the disk of partition " << disk->partitionOf;
  d << ")";
  if (u.noop) {
    d << ": nothing, no process matches " << plan->selectorText << " (empty: skip)";
  } else {
    d << " for cgroup" << (hierarchyPaths.size() > 1 ? "s " : " ");
    for (size_t i = 0; i < hierarchyPaths.size(); ++i) d << (i ? ", " : "") << hierarchyPaths[i];
    d << (u.mode == "v2" ? " (cgroup v2 io.max)" : " (blkio v1)") << ", was: ";
    if (!anyPrevious) {
      d << "none";
    } else {
      for (size_t i = 0; i < was.size(); ++i) d << (i ? ", " : "") << was[i];
    }
  }

  PreparedFault prepared;
  prepared.description = d.str();
  for (const auto& c : u.cgroups)
    prepared.resources.push_back("io.throttle:" + c.dir + ":" + u.device);
  prepared.undo = u.toJson();
  return prepared;
}

Result<IoCounters> IoThrottleInjector::counters(const IoThrottleUndo& u,
                                                const std::string& dir) const {
  if (u.mode == "v2") {
    auto stat = readKernelFile(dir + "/io.stat");
    if (!stat) return std::move(stat).error();
    return ioStatOf(*stat, u.device);
  }
  auto bytes = readKernelFile(dir + "/blkio.throttle.io_service_bytes_recursive");
  if (!bytes) bytes = readKernelFile(dir + "/blkio.throttle.io_service_bytes");
  auto ops = readKernelFile(dir + "/blkio.throttle.io_serviced_recursive");
  if (!ops) ops = readKernelFile(dir + "/blkio.throttle.io_serviced");
  if (!bytes) return std::move(bytes).error();
  if (!ops) return std::move(ops).error();
  return blkioCountersOf(*bytes, *ops, u.device);
}

Result<AppliedFault> IoThrottleInjector::apply(const std::string& faultId,
                                               const nlohmann::json& undo) {
  auto u = record(undo, faultId);
  if (!u) return std::move(u).error();
  AppliedFault applied;
  applied.backend = u->noop ? "none" : (u->mode == "v2" ? "io.max" : "blkio.throttle");
  Started started;
  nlohmann::json written = nlohmann::json::array();
  for (const auto& c : u->cgroups) {
    auto before = counters(*u, c.dir);
    started.before.push_back(before.valueOr(IoCounters{}));
    for (const auto& w : c.files) {
      const std::string text = u->device + " " + w.written;
      if (auto done = writeKernelFile(w.file, text); !done) {
        return std::move(done).error().withContext("io.throttle apply");
      }
      written.push_back({{"file", w.file}, {"wrote", text}});
    }
  }
  started.at = std::chrono::steady_clock::now();
  log::get("resource")
      ->info("io.throttle applied fault={} device={} mode={} files={}", faultId, u->device, u->mode,
             written.size());
  applied.observed = {{"mode", u->mode}, {"device", u->device}, {"written", written}};
  std::lock_guard lock(mutex_);
  started_[faultId] = std::move(started);
  return applied;
}

Result<nlohmann::json> IoThrottleInjector::revert(const std::string& faultId,
                                                  const nlohmann::json& undo) {
  auto u = record(undo, faultId);
  if (!u) return std::move(u).error();
  std::optional<Started> started;
  {
    std::lock_guard lock(mutex_);
    if (auto it = started_.find(faultId); it != started_.end()) {
      started = std::move(it->second);
      started_.erase(it);
    }
  }
  nlohmann::json places = nlohmann::json::array();
  for (size_t i = 0; i < u->cgroups.size(); ++i) {
    const auto& c = u->cgroups[i];
    nlohmann::json place = {{"cgroup", c.dir}};
    if (started && i < started->before.size()) {
      if (auto after = counters(*u, c.dir)) {
        const IoCounters& b = started->before[i];
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started->at).count();
        place["during"] = {{"seconds", seconds},
                           {"readBytes", after->readBytes - b.readBytes},
                           {"writeBytes", after->writeBytes - b.writeBytes},
                           {"readOps", after->readOps - b.readOps},
                           {"writeOps", after->writeOps - b.writeOps}};
      }
    }
    nlohmann::json files = nlohmann::json::array();
    for (const auto& w : c.files) {
      nlohmann::json f = {{"file", w.file}, {"written", w.written}, {"previous", w.previous}};
      auto now = currentThrottleValue(u->mode, w.file, u->device);
      if (!now && now.error().code() == ErrorCode::kNotFound) {
        f["action"] = "cgroup gone";  // its processes ended and it was removed: nothing to undo
      } else if (!now) {
        return std::move(now).error().withContext("io.throttle revert");
      } else if (*now == w.previous) {
        f["action"] = "unchanged";
      } else {
        const std::string text = restoreText(u->mode, u->device, w.previous);
        if (auto done = writeKernelFile(w.file, text); !done) {
          if (done.error().code() != ErrorCode::kNotFound) {
            return std::move(done).error().withContext("io.throttle revert");
          }
          f["action"] = "cgroup gone";
        } else {
          f["action"] = "restored";
          f["found"] = *now;
          f["wrote"] = text;
        }
      }
      files.push_back(std::move(f));
    }
    place["files"] = std::move(files);
    places.push_back(std::move(place));
  }
  return nlohmann::json{{"mode", u->mode},
                        {"device", u->device},
                        {"deviceName", u->deviceName},
                        {"statsInThisProcess", started.has_value()},
                        {"places", places}};
}

Result<std::vector<std::string>> IoThrottleInjector::audit(const nlohmann::json& undo) {
  auto u = record(undo, {});
  if (!u) return std::move(u).error();
  std::vector<std::string> left;
  for (const auto& c : u->cgroups) {
    for (const auto& w : c.files) {
      auto now = currentThrottleValue(u->mode, w.file, u->device);
      if (!now && now.error().code() == ErrorCode::kNotFound) continue;
      if (!now) {
        left.push_back(now.error().describe());
      } else if (*now != w.previous) {
        left.push_back(w.file + " has '" + (now->empty() ? "no rule" : *now) + "' for " +
                       u->device + ", was " +
                       (w.previous.empty() ? "none" : "'" + w.previous + "'"));
      }
    }
  }
  return left;
}

}  // namespace chaosd
