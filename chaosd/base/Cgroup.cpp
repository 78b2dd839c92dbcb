#include "chaosd/base/Cgroup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"

namespace chaosd {
namespace {

std::vector<std::string_view> splitSpaces(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    if (end > pos) fields.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return fields;
}

bool isOctal(char c) { return c >= '0' && c <= '7'; }

// mountinfo writes space, tab, newline and backslash in paths as \ooo (proc_pid_mountinfo
// uses mangle_path with " \t\n\\"); everything else is verbatim.
std::string unescapeMountPath(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && isOctal(field[i + 1]) &&
        isOctal(field[i + 2]) && isOctal(field[i + 3])) {
      out += static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) |
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// The number after `key=` in a PSI line.
template <typename T>
bool fieldAfter(std::string_view line, std::string_view key, T& out) {
  size_t pos = line.find(key);
  if (pos == std::string_view::npos) return false;
  pos += key.size();
  size_t end = line.find(' ', pos);
  std::string_view v = line.substr(pos, end == std::string_view::npos ? end : end - pos);
  if constexpr (std::is_floating_point_v<T>) {
    char* stop = nullptr;
    std::string copy(v);
    out = std::strtod(copy.c_str(), &stop);
    return stop != copy.c_str();
  } else {
    return std::from_chars(v.data(), v.data() + v.size(), out).ec == std::errc();
  }
}

bool populated(std::string_view events) {
  return events.find("populated 1") != std::string_view::npos;
}

}  // namespace

Result<std::string> cgroup2MountFromText(std::string_view mountinfo) {
  // A cgroup2 mount of the whole hierarchy wins over a bind mount of a subtree.
  std::string subtreeMount;
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t end = mountinfo.find('\n', pos);
    if (end == std::string_view::npos) end = mountinfo.size();
    auto fields = splitSpaces(mountinfo.substr(pos, end - pos));
    pos = end + 1;
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    size_t sep = 6;
    while (sep < fields.size() && fields[sep] != "-") ++sep;
    if (fields.size() < 7 || sep + 1 >= fields.size() || fields[sep + 1] != "cgroup2") continue;
    if (fields[3] == "/") return unescapeMountPath(fields[4]);
    if (subtreeMount.empty()) subtreeMount = unescapeMountPath(fields[4]);
  }
  if (!subtreeMount.empty()) return subtreeMount;
  return Error(ErrorCode::kNotFound, "no cgroup2 filesystem is mounted (cgroup v2 is needed)");
}

Result<std::string> cgroup2Mount(std::string mountinfoPath) {
  std::ifstream in(mountinfoPath);
  if (!in) return Error::fromErrno("reading " + mountinfoPath, errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error::fromErrno("reading " + mountinfoPath, errno);
  return cgroup2MountFromText(text.str());
}

Result<std::string> cgroup2Dir(std::string_view cgroupPath, std::string mountinfoPath) {
  if (cgroupPath.empty() || cgroupPath.front() != '/') {
    return Error(ErrorCode::kInvalid,
                 "cgroup path must start with '/': '" + std::string(cgroupPath) + "'");
  }
  for (size_t pos = 0; pos < cgroupPath.size();) {
    size_t end = cgroupPath.find('/', pos);
    if (end == std::string_view::npos) end = cgroupPath.size();
    if (cgroupPath.substr(pos, end - pos) == "..") {
      return Error(ErrorCode::kInvalid,
                   "cgroup path may not contain '..': '" + std::string(cgroupPath) + "'");
    }
    pos = end + 1;
  }
  auto mount = cgroup2Mount(std::move(mountinfoPath));
  if (!mount) return std::move(mount).error();
  std::string dir = *mount;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  dir += cgroupPath;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

Result<std::string> cgroup2PathOfPid(pid_t pid, const std::string& procRoot) {
  auto text = readKernelFile(procRoot + "/" + std::to_string(pid) + "/cgroup");
  if (!text) return std::move(text).error();
  std::string_view t = *text;
  size_t pos = t.starts_with("0::") ? 0 : t.find("\n0::");
  if (pos == std::string_view::npos) {
    return Error(ErrorCode::kNotFound, "process " + std::to_string(pid) + " has no cgroup v2 path");
  }
  pos = t.find("::", pos) + 2;
  size_t end = t.find('\n', pos);
  return std::string(t.substr(pos, end == std::string_view::npos ? end : end - pos));
}

namespace {

std::vector<std::string_view> splitOn(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t end = text.find(sep, pos);
    out.push_back(text.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return out;
}

bool namesAny(std::string_view list, const std::vector<std::string>& controllers) {
  for (auto c : splitOn(list, ',')) {
    if (std::find(controllers.begin(), controllers.end(), c) != controllers.end()) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> cgroupV1DirsFromText(std::string_view procCgroup,
                                              std::string_view mountinfo,
                                              const std::vector<std::string>& controllers) {
  std::vector<std::string> out;
  for (auto line : splitOn(procCgroup, '\n')) {
    // hierarchy-id:controller-list:path
    auto parts = splitOn(line, ':');
    if (parts.size() < 3 || parts[1].empty() || !namesAny(parts[1], controllers)) continue;
    std::string_view path = line.substr(parts[0].size() + parts[1].size() + 2);
    const auto wanted = splitOn(parts[1], ',');
    for (auto m : splitOn(mountinfo, '\n')) {
      auto fields = splitSpaces(m);
      size_t sep = 6;
      while (sep < fields.size() && fields[sep] != "-") ++sep;
      if (fields.size() < 7 || sep + 3 >= fields.size() || fields[sep + 1] != "cgroup") continue;
      // The super options name the hierarchy's controllers: the same set as the line's.
      auto opts = splitOn(fields[sep + 3], ',');
      bool same = true;
      for (auto w : wanted) same = same && std::find(opts.begin(), opts.end(), w) != opts.end();
      if (!same) continue;
      std::string root = unescapeMountPath(fields[3]);
      std::string_view rel = path;
      if (root != "/") {
        if (!rel.starts_with(root) || (rel.size() > root.size() && rel[root.size()] != '/')) break;
        rel.remove_prefix(root.size());
      }
      std::string dir = unescapeMountPath(fields[4]);
      if (!rel.empty() && rel != "/") dir += std::string(rel);
      out.push_back(dir);
      break;
    }
  }
  return out;
}

Result<std::vector<std::string>> cgroupV1DirsOfPid(pid_t pid,
                                                   const std::vector<std::string>& controllers) {
  auto proc = readKernelFile("/proc/" + std::to_string(pid) + "/cgroup");
  if (!proc) return std::move(proc).error();
  auto mounts = readKernelFile("/proc/self/mountinfo");
  if (!mounts) return std::move(mounts).error();
  return cgroupV1DirsFromText(*proc, *mounts, controllers);
}

Result<Pressure> parsePressure(std::string_view text) {
  Pressure p;
  bool some = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.starts_with("some ")) {
      some = fieldAfter(line, "avg10=", p.someAvg10) && fieldAfter(line, "total=", p.someTotalUs);
    } else if (line.starts_with("full ")) {
      (void)(fieldAfter(line, "avg10=", p.fullAvg10) && fieldAfter(line, "total=", p.fullTotalUs));
    }
  }
  if (!some) return Error(ErrorCode::kInvalid, "no 'some avg10=... total=...' line in PSI text");
  return p;
}

Result<Pressure> readPressure(const std::string& file) {
  auto text = readKernelFile(file);
  if (!text) return std::move(text).error();
  auto p = parsePressure(*text);
  if (!p) return Error(ErrorCode::kIo, file + ": " + p.error().message());
  return p;
}

Result<uint64_t> cgroupCpuUsageUsec(const std::string& dir) {
  auto text = readKernelFile(dir + "/cpu.stat");
  if (!text) return std::move(text).error();
  std::string_view t = *text;
  size_t pos = t.starts_with("usage_usec ") ? 0 : t.find("\nusage_usec ");
  if (pos == std::string_view::npos) {
    return Error(ErrorCode::kIo, dir + "/cpu.stat has no usage_usec");
  }
  pos = t.find(' ', pos) + 1;
  uint64_t v = 0;
  size_t end = t.find('\n', pos);
  std::string_view num = t.substr(pos, end == std::string_view::npos ? end : end - pos);
  if (std::from_chars(num.data(), num.data() + num.size(), v).ec != std::errc()) {
    return Error(ErrorCode::kIo, dir + "/cpu.stat: usage_usec is not a number");
  }
  return v;
}

Result<bool> makeCgroup(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return true;
  if (errno == EEXIST) return false;
  return Error::fromErrno("creating cgroup " + dir, errno);
}

Result<void> moveToCgroup(const std::string& dir, pid_t pid) {
  return writeKernelFile(dir + "/cgroup.procs", std::to_string(pid));
}

Result<std::vector<pid_t>> cgroupProcs(const std::string& dir) {
  auto text = readKernelFile(dir + "/cgroup.procs");
  if (!text) return std::move(text).error();
  std::vector<pid_t> out;
  std::istringstream in(*text);
  pid_t pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

Result<CgroupRemoval> killAndRemoveCgroup(const std::string& dir,
                                          std::chrono::milliseconds timeout) {
  CgroupRemoval out;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return out;
    return Error::fromErrno("looking at cgroup " + dir, errno);
  }
  out.existed = true;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  if (auto procs = cgroupProcs(dir)) out.killed = procs->size();
  auto killed = writeKernelFile(dir + "/cgroup.kill", "1");
  out.method = killed ? "cgroup.kill" : "SIGKILL each";
  Fd events(::open((dir + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
  for (;;) {
    if (!killed) {  // no cgroup.kill (before 5.14): signal whoever is still there
      if (auto procs = cgroupProcs(dir)) {
        for (pid_t pid : *procs) ::kill(pid, SIGKILL);
      }
    }
    bool empty = false;
    if (events) {
      char buf[256];
      ssize_t n = ::pread(events.get(), buf, sizeof buf - 1, 0);
      empty = n >= 0 && !populated(std::string_view(buf, static_cast<size_t>(n)));
    } else if (auto procs = cgroupProcs(dir)) {
      empty = procs->empty();
    }
    if (empty) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error(ErrorCode::kTimeout, "cgroup " + dir + " still holds processes " +
                                            std::to_string(timeout.count()) +
                                            " ms after they were killed");
    }
    if (events) {
      // kernfs wakes pollers of cgroup.events with POLLPRI when "populated" changes; the
      // timeout re-reads anyway, in case the change came between the read and the poll.
      pollfd p{events.get(), POLLPRI, 0};
      (void)::poll(&p, 1, 10);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  out.emptySeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
    // EBUSY: a child cgroup, or the last task not yet detached: retry until the deadline.
    if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline) {
      return Error::fromErrno("removing cgroup " + dir, errno);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return out;
}

Result<std::string> readKernelFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                 "reading " + path + ": " + std::strerror(err), err);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("reading " + path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<void> writeKernelFile(const std::string& path, std::string_view text) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                 "opening " + path + ": " + std::strerror(err), err);
  }
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return Error::fromErrno("writing '" + std::string(text) + "' to " + path, errno);
  return success();
}

}  // namespace chaosd
