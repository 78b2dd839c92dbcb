#include "injectors/resource/StressInjector.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "chaosd/base/Cgroup.h"
#include "chaosd/base/Fd.h"
#include "chaosd/base/Log.h"
#include "injectors/process/ProcessInjector.h"

namespace chaosd {

using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kKillTimeout = std::chrono::milliseconds(5000);
constexpr const char* kResources[] = {"cpu", "memory", "io"};

// VmHWM (peak resident set) of a process, bytes; 0 when gone.
uint64_t peakRss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream v(line.substr(6));
      uint64_t kb = 0;
      v >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

// The PSI file of a resource for the place the load runs: the host's, or the target cgroup's.
std::string pressureFile(const std::string& dir, const char* resource) {
  return dir.empty() ? std::string("/proc/pressure/") + resource
                     : dir + "/" + resource + ".pressure";
}

std::string formatBytes(uint64_t b) {
  std::ostringstream o;
  o.precision(3);
  if (b >= (1ULL << 30)) {
    o << static_cast<double>(b) / static_cast<double>(1ULL << 30) << " GiB";
  } else {
    o << static_cast<double>(b) / static_cast<double>(1ULL << 20) << " MiB";
  }
  return o.str();
}

// A number from a cgroup limit file ("max" or a v1 "unlimited" 2^63-ish: none).
std::optional<uint64_t> limitIn(const std::string& file) {
  std::ifstream in(file);
  std::string v;
  if (!(in >> v) || v == "max") return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n >= (1ULL << 60)) return std::nullopt;
  return n;
}

// The memory limit of the first place's target: v2 memory.max, else the v1 memory cgroup the
// load joins (hybrid machines).
std::optional<uint64_t> targetMemoryLimit(const StressUndo& u) {
  if (u.placement != "target" || u.pressure.empty()) return std::nullopt;
  if (auto v2 = limitIn(u.pressure[0] + "/memory.max")) return v2;
  if (!u.v1Join.empty()) {
    for (const auto& dir : u.v1Join[0]) {
      if (auto v1 = limitIn(dir + "/memory.limit_in_bytes")) return v1;
    }
  }
  return std::nullopt;
}

// A cache file of ours, created afresh (one an earlier attempt of this fault left is replaced).
Result<Fd> openCacheFile(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    Fd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd) return fd;
    if (errno != EEXIST || attempt > 0) return Error::fromErrno("creating " + path, errno);
    if (::unlink(path.c_str()) != 0) return Error::fromErrno("replacing " + path, errno);
  }
  return Error(ErrorCode::kInternal, "unreachable");
}

std::vector<std::string> joinOf(const StressUndo& u, size_t i) {
  return i < u.v1Join.size() ? u.v1Join[i] : std::vector<std::string>{};
}

double round4(double x) { return std::round(x * 1e4) / 1e4; }

Result<std::string> trimmedMount() {
  auto mount = cgroup2Mount();
  if (!mount) {
    return Error(
        ErrorCode::kUnsupported,
        "stress faults run in cgroups of their own and need cgroup v2: " + mount.error().message());
  }
  std::string m = *mount;
  while (m.size() > 1 && m.back() == '/') m.pop_back();
  return m;
}

}  // namespace

struct StressInjector::Load {
  StressUndo undo;
  std::vector<std::unique_ptr<StressGroup>> groups;  // one per cgroup
  // Per cgroup, per resource (kResources): PSI "some" total at apply.
  std::vector<std::vector<std::optional<Pressure>>> pressureBefore;
  SteadyClock::time_point startedAt;
};

uint64_t meminfoBytes(std::string_view key) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  uint64_t kb = 0;
  std::string unit;
  while (in >> name >> kb) {
    std::getline(in, unit);
    if (name.size() == key.size() + 1 && name.compare(0, key.size(), key) == 0) return kb * 1024;
  }
  return 0;
}

uint64_t defaultMemoryReserve(uint64_t memTotal) {
  return std::max<uint64_t>(256ULL << 20, memTotal / 20);
}

int usableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
}

StressInjector::StressInjector(Kind kind, std::shared_ptr<ProcessKernel> kernel)
    : kind_(kind), kernel_(std::move(kernel)) {}

StressInjector::~StressInjector() = default;

Result<PreparedFault> StressInjector::prepare(const FaultRequest& request) {
  auto mount = trimmedMount();
  if (!mount) return std::move(mount).error();
  StressUndo u;
  u.faultId = request.faultId;
  u.faultType = request.faultType;
  u.duration = request.duration;
  const std::string name = stressCgroupName(request.faultId);
  std::string where;
  if (request.target != nullptr && request.args.contains("cgroup")) {
    return Error(ErrorCode::kInvalid, request.faultType +
                                          ": give a target or args.cgroup, not both (the load "
                                          "runs in the target's cgroup, or in the one named)");
  }
  if (request.target == nullptr && request.args.contains("cgroup")) {
    // A cgroup the user names (a service's, a container's): the load runs inside it.
    const std::string path = request.args["cgroup"].get<std::string>();
    auto dir = cgroup2Dir(path);
    if (!dir) return std::move(dir).error().withContext(request.faultType + " args.cgroup");
    struct stat st {};
    if (::stat(dir->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error(ErrorCode::kNotFound,
                   request.faultType + ": no cgroup " + path + " (no directory " + *dir + ")");
    }
    u.placement = "cgroup";
    u.cgroups = {*dir + "/" + name};
    u.pressure = {*dir};
    where = "inside cgroup " + path + " (" + *dir + ")";
  } else if (request.target == nullptr) {
    u.placement = "host";
    u.hostParent = *mount + "/chaosd-faults";
    u.cgroups = {u.hostParent + "/" + name};
    u.pressure = {""};
    where = "on the host, in cgroup " + u.cgroups[0];
  } else {
    u.placement = "target";
    auto plan = planProcessFault(*kernel_, request, 0, std::chrono::nanoseconds(0));
    if (!plan) return std::move(plan).error();
    u.noop = plan->noop;
    std::set<std::string> seen;
    for (const Victim& v : plan->victims) {
      auto path = cgroup2PathOfPid(v.pid);
      if (!path) {
        return std::move(path).error().withContext("the cgroup of process " +
                                                   std::to_string(v.pid) + " (" + v.comm + ")");
      }
      std::string dir = *mount + (*path == "/" ? "" : *path);
      if (!seen.insert(dir).second) continue;
      u.cgroups.push_back(dir + "/" + name);
      u.pressure.push_back(dir);
      auto v1 = cgroupV1DirsOfPid(v.pid, {"cpu", "cpuacct", "memory"});
      u.v1Join.push_back(v1 ? *v1 : std::vector<std::string>{});
    }
    where = "inside the cgroup of " + plan->selectorText + ": ";
    for (size_t i = 0; i < u.pressure.size(); ++i) where += (i ? ", " : "") + u.pressure[i];
    if (u.noop) where = "nothing: no process matches " + plan->selectorText + " (empty: skip)";
  }

  PreparedFault prepared;
  if (kind_ == Kind::kCpu) {
    const std::string workers = request.args.value("workers", std::string("1"));
    u.workers = workers == "all" ? usableCpus() : 0;
    (void)std::from_chars(workers.data(), workers.data() + workers.size(), u.workers);
    if (u.workers < 1 || u.workers > 1024) {
      return Error(ErrorCode::kInvalid,
                   "cpu.stress: workers '" + workers + "' is not 1..1024 or all");
    }
    u.load = request.args.value("load", 1.0);
    u.climb = std::chrono::nanoseconds(request.args.value("climb", int64_t{0}));
    std::ostringstream d;
    d << "cpu stress: " << u.workers << " worker(s) at " << round4(u.load * 100) << "% of a CPU";
    if (u.climb.count() > 0) d << " (climbing over " << u.climb.count() / 1'000'000 << " ms)";
    d << ", " << where;
    prepared.description = d.str();
  } else {
    const uint64_t total = meminfoBytes("MemTotal");
    const uint64_t available = meminfoBytes("MemAvailable");
    u.reserve = request.args.contains("reserve") ? request.args["reserve"].get<uint64_t>()
                                                 : defaultMemoryReserve(total);
    u.rate = request.args.value("rate", uint64_t{0});
    u.mode = request.args.value("mode", std::string("anonymous"));
    std::string ofWhat = "of the memory available";
    if (request.args.contains("size")) {
      u.size = request.args["size"].get<uint64_t>();
    } else {
      // Of the target's memory limit when it has one (v2 memory.max, else the v1 memory
      // cgroup it joins), else of what the machine has available.
      uint64_t base = available;
      if (auto limit = targetMemoryLimit(u); limit && *limit < available) {
        base = *limit;
        ofWhat = "of the target's memory limit (" + formatBytes(*limit) + ")";
      }
      u.size =
          static_cast<uint64_t>(request.args.value("percent", 0.0) * static_cast<double>(base));
    }
    if (u.mode == "cache") {
      // The file's directory: absolute and existing; one file per place, all of which must fit.
      const std::string dir = request.args.value("path", std::string("/var/tmp"));
      struct stat st {};
      if (dir.empty() || dir.front() != '/' || ::stat(dir.c_str(), &st) != 0 ||
          !S_ISDIR(st.st_mode)) {
        return Error(ErrorCode::kNotFound,
                     "memory.stress mode cache: " + dir + " is not an existing directory");
      }
      struct statvfs vfs {};
      if (::statvfs(dir.c_str(), &vfs) != 0) return Error::fromErrno("statvfs " + dir, errno);
      const uint64_t free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      const uint64_t need = u.size * std::max<size_t>(1, u.cgroups.size()) + (64ULL << 20);
      if (need > free) {
        return Error(ErrorCode::kConflict, "memory.stress mode cache needs " + formatBytes(need) +
                                               " of disk in " + dir +
                                               " (its file, with 64 MiB "
                                               "to spare); it has " +
                                               formatBytes(free));
      }
      for (size_t i = 0; i < u.cgroups.size(); ++i) {
        u.files.push_back((dir == "/" ? "" : dir) + "/" + stressCacheFileName(u.faultId, i));
      }
    }
    if (available <= u.reserve) {
      return Error(ErrorCode::kConflict, "memory.stress would take nothing: the machine has " +
                                             formatBytes(available) +
                                             " available, at or below the reserve of " +
                                             formatBytes(u.reserve) + " that is never crossed");
    }
    std::ostringstream d;
    d << "memory stress: " << formatBytes(u.size) << " " << u.mode;
    if (!request.args.contains("size")) {
      d << " (" << round4(request.args.value("percent", 0.0) * 100) << "% " << ofWhat << ")";
    }
    if (u.rate > 0) d << " at " << formatBytes(u.rate) << "/s";
    if (!u.files.empty()) d << " in the page cache of " << u.files[0];
    d << ", keeping " << formatBytes(u.reserve) << " available";
    if (u.size + u.reserve > available) {
      d << " (" << formatBytes(available) << " available now: it will stop at the reserve, near "
        << formatBytes(available - u.reserve) << ")";
    }
    d << ", " << where;
    prepared.description = d.str();
  }
  for (const auto& dir : u.cgroups) prepared.resources.push_back("cgroup:" + dir);
  prepared.undo = u.toJson();
  return prepared;
}

Result<AppliedFault> StressInjector::apply(const std::string& faultId, const nlohmann::json& undo) {
  auto u = StressUndo::fromJson(undo, faultId);
  if (!u) return std::move(u).error();
  AppliedFault applied;
  applied.backend = "cgroup";
  if (u->noop) {
    applied.backend = "none";
    applied.observed = {{"noop", true}};
    return applied;
  }
  {
    std::lock_guard lock(mutex_);
    if (loads_.count(faultId) != 0) {
      return Error(ErrorCode::kConflict, faultId + " is applied already");
    }
  }
  auto load = std::make_unique<Load>();
  load->undo = *u;
  if (!u->hostParent.empty()) {
    if (auto made = makeCgroup(u->hostParent); !made) return std::move(made).error();
  }
  nlohmann::json pids = nlohmann::json::array();
  for (size_t i = 0; i < u->cgroups.size(); ++i) {
    const std::string& dir = u->cgroups[i];
    auto made = makeCgroup(dir);
    if (!made) return std::move(made).error();
    if (!*made) {  // left by an earlier attempt of this very fault: start from nothing
      if (auto gone = killAndRemoveCgroup(dir, kKillTimeout); !gone) return std::move(gone).error();
      if (auto again = makeCgroup(dir); !again) return std::move(again).error();
    }
    std::vector<std::optional<Pressure>> before;
    const std::string place = i < u->pressure.size() ? u->pressure[i] : "";
    for (const char* r : kResources) {
      auto p = readPressure(pressureFile(place, r));
      before.push_back(p ? std::optional<Pressure>(*p) : std::nullopt);
    }
    load->pressureBefore.push_back(std::move(before));
    Result<std::unique_ptr<StressGroup>> group = Error(ErrorCode::kInternal, "not started");
    if (kind_ == Kind::kCpu) {
      CpuDuty duty;
      duty.load = u->load;
      duty.climb = u->climb;
      duty.duration = u->duration;
      group = StressGroup::startCpu(dir, u->workers, duty, joinOf(*u, i));
    } else {
      MemoryHog hog;
      hog.size = u->size;
      hog.reserve = u->reserve;
      hog.rate = u->rate;
      hog.mode = u->mode == "locked"  ? MemoryHog::Mode::kLocked
                 : u->mode == "cache" ? MemoryHog::Mode::kCache
                                      : MemoryHog::Mode::kAnonymous;
      hog.duration = u->duration;
      Fd file;
      if (hog.mode == MemoryHog::Mode::kCache) {
        if (i >= u->files.size()) {
          return Error(ErrorCode::kInvalid, "memory.stress cache: no file recorded for " + dir);
        }
        auto opened = openCacheFile(u->files[i]);
        if (!opened) return std::move(opened).error();
        file = std::move(*opened);
        hog.fileFd = file.get();
      }
      group = StressGroup::startMemory(dir, hog, joinOf(*u, i));
    }
    if (!group) return std::move(group).error().withContext("starting the load in " + dir);
    for (pid_t pid : (*group)->pids()) pids.push_back(pid);
    load->groups.push_back(std::move(*group));
  }
  load->startedAt = SteadyClock::now();
  log::get("resource")
      ->info("{} started fault={} cgroups={} pids={}", u->faultType, faultId,
             nlohmann::json(u->cgroups).dump(), pids.dump());
  applied.observed = {{"cgroups", u->cgroups}, {"pids", pids}, {"usableCpus", usableCpus()}};
  std::lock_guard lock(mutex_);
  loads_[faultId] = std::move(load);
  return applied;
}

Result<nlohmann::json> StressInjector::revert(const std::string& faultId,
                                              const nlohmann::json& undo) {
  auto u = StressUndo::fromJson(undo, faultId);
  if (!u) return std::move(u).error();
  std::unique_ptr<Load> load;
  {
    std::lock_guard lock(mutex_);
    if (auto it = loads_.find(faultId); it != loads_.end()) {
      load = std::move(it->second);
      loads_.erase(it);
    }
  }
  nlohmann::json out = {{"loadInThisProcess", load != nullptr}};
  nlohmann::json places = nlohmann::json::array();
  const auto now = SteadyClock::now();
  if (load) {
    double loadSeconds = std::chrono::duration<double>(now - load->startedAt).count();
    if (u->duration.count() > 0) {
      loadSeconds = std::min(loadSeconds, std::chrono::duration<double>(u->duration).count());
    }
    out["loadSeconds"] = loadSeconds;
    for (size_t i = 0; i < load->groups.size(); ++i) {
      StressGroup& g = *load->groups[i];
      nlohmann::json place = {{"cgroup", u->cgroups[i]}};
      auto endings = g.reap(false);
      double wall = std::chrono::duration<double>(now - g.startedAt()).count();
      if (u->duration.count() > 0) {
        wall = std::min(wall, std::chrono::duration<double>(u->duration).count());
      }
      if (kind_ == Kind::kCpu) {
        place["askedLoad"] = u->load;
        if (auto usage = cgroupCpuUsageUsec(u->cgroups[i]); usage && wall > 0) {
          place["cpuSeconds"] = static_cast<double>(*usage) / 1e6;
          place["achievedLoad"] =
              round4(static_cast<double>(*usage) / 1e6 / wall / std::max(1, u->workers));
        }
        uint64_t periods = 0;
        for (size_t w = 0; w < g.size(); ++w) periods += g.shared(w).periods.load();
        place["periods"] = periods;
      } else {
        const StressShared& sh = g.shared(0);
        const int state = sh.state.load();
        place["askedBytes"] = u->size;
        place["heldBytes"] = sh.touched.load();
        place["reserveBytes"] = u->reserve;
        place["stoppedAtReserve"] = state == StressShared::kAtFloor;
        if (sh.availableAtStop.load() > 0) place["availableAtStop"] = sh.availableAtStop.load();
        if (state == StressShared::kFailed) {
          place["error"] = std::string(std::strerror(sh.failedErrno.load()));
        }
        if (!g.pids().empty()) place["peakRssBytes"] = peakRss(g.pids()[0]);
      }
      nlohmann::json pressure = nlohmann::json::object();
      const std::string where = i < u->pressure.size() ? u->pressure[i] : "";
      for (size_t r = 0; r < std::size(kResources); ++r) {
        auto after = readPressure(pressureFile(where, kResources[r]));
        const auto& before = load->pressureBefore[i][r];
        if (!after || !before) continue;
        const double during = std::chrono::duration<double>(now - load->startedAt).count();
        pressure[kResources[r]] = {
            {"someAvg10Before", before->someAvg10},
            {"someShareDuring",
             during > 0 ? round4(static_cast<double>(after->someTotalUs - before->someTotalUs) /
                                 1e6 / during)
                        : 0.0},
            {"someAvg10AtRevert", after->someAvg10}};
      }
      place["pressure"] = pressure;
      nlohmann::json ended = nlohmann::json::array();
      for (const auto& e : endings) {
        if (e.beforeRevert) ended.push_back({{"pid", e.pid}, {"how", e.how}});
      }
      place["endedBeforeRevert"] = ended;
      places.push_back(std::move(place));
    }
  }
  nlohmann::json removed = nlohmann::json::array();
  for (const auto& dir : u->cgroups) {
    auto gone = killAndRemoveCgroup(dir, kKillTimeout);
    if (!gone) return std::move(gone).error().withContext(u->faultType + " revert");
    if (gone->existed) {
      removed.push_back({{"cgroup", dir},
                         {"killed", gone->killed},
                         {"method", gone->method},
                         {"emptyMs", round4(gone->emptySeconds * 1e3)}});
    }
  }
  if (load) {
    for (auto& g : load->groups) (void)g->reap(true);
  }
  nlohmann::json filesRemoved = nlohmann::json::array();
  for (const auto& file : u->files) {
    if (::unlink(file.c_str()) == 0) {
      filesRemoved.push_back(file);
    } else if (errno != ENOENT) {
      return Error::fromErrno("removing " + file, errno).withContext(u->faultType + " revert");
    }
  }
  if (!u->files.empty()) out["filesRemoved"] = filesRemoved;
  if (!u->hostParent.empty()) {
    // Shared by the stress faults on the host: removed with the last one (EBUSY otherwise).
    if (::rmdir(u->hostParent.c_str()) != 0 && errno != EBUSY && errno != ENOENT &&
        errno != ENOTEMPTY) {
      log::get("resource")->warn("could not remove {}: {}", u->hostParent, std::strerror(errno));
    }
  }
  if (load) out["places"] = places;
  out["removed"] = removed;
  return out;
}

Result<std::vector<std::string>> StressInjector::audit(const nlohmann::json& undo) {
  auto u = StressUndo::fromJson(undo);
  if (!u) return std::move(u).error();
  std::vector<std::string> left;
  for (const auto& dir : u->cgroups) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
      auto procs = cgroupProcs(dir);
      left.push_back("cgroup " + dir + " still exists" +
                     (procs ? " with " + std::to_string(procs->size()) + " process(es)" : ""));
    }
  }
  for (const auto& file : u->files) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) == 0) left.push_back("cache file " + file + " still exists");
  }
  std::lock_guard lock(mutex_);
  if (loads_.count(u->faultId) != 0) left.push_back("stress processes still running here");
  return left;
}

std::optional<StressInjector::Progress> StressInjector::progress(const std::string& faultId) {
  std::lock_guard lock(mutex_);
  auto it = loads_.find(faultId);
  if (it == loads_.end()) return std::nullopt;
  Progress p;
  for (auto& g : it->second->groups) {
    for (pid_t pid : g->pids()) p.pids.push_back(pid);
    p.running += g->running();
    if (kind_ == Kind::kMemory && g->size() > 0) {
      p.touched += g->shared(0).touched.load();
      p.memoryState = g->shared(0).state.load();
      p.atFloor = p.atFloor || p.memoryState == StressShared::kAtFloor;
    }
  }
  return p;
}

}  // namespace chaosd
