#include "chaosd/base/ProcessTable.h"

#include <dirent.h>
#include <fcntl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <regex>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Log.h"
#include "chaosd/base/Users.h"

namespace chaosd {
namespace detail {
// ProcessMatch.cpp: whether a cgroup path is `cgroup` or below it.
bool inCgroup(const std::string& path, const std::string& cgroup);
// ProcessMatch.cpp: the selector compiled once (regex, user, pid file) as a predicate that
// matches as ProcessTable::match does (kernel threads aside); empty when it does not compile.
std::function<bool(const ProcessInfo&)> selectorMatcher(const ProcessSelector& selector);
}  // namespace detail

namespace {

using detail::inCgroup;

constexpr uint64_t kPfKthread = 0x00200000;  // PF_KTHREAD in include/linux/sched.h

bool isRace(int err) { return err == ENOENT || err == ESRCH; }

// Reads a whole file relative to dirFd into out; returns 0 or an errno. A read that returns
// less than it asked for is taken as the end: a regular file gives a short read only at its end,
// and so do /proc's files (stat, status and cgroup are one seq_file record, which a read copies
// whole when it fits; cmdline copies until its end or the buffer is full). That saves the
// second read(2) returning 0, a fifth of the system calls of a scan.
int readFileAt(int dirFd, const char* name, std::string& out) {
  Fd fd(::openat(dirFd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return errno;
  out.clear();
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    out.append(buffer, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buffer) return 0;
  }
}

// The files of one process: through a descriptor of its own /proc directory (pidDir ""), or
// through the descriptor of /proc itself as "PID/NAME", which saves opening and closing the
// process's directory (a scan reads most processes' stat alone).
class ProcessFiles {
 public:
  ProcessFiles(int dirFd, std::string_view pidDir) : dirFd_(dirFd) {
    if (pidDir.empty() || pidDir.size() >= kNameAt) return;  // a pid has at most 10 digits
    pidDir.copy(path_, pidDir.size());
    path_[pidDir.size()] = '/';
    nameAt_ = pidDir.size() + 1;
  }
  int read(const char* name, std::string& out) {
    const size_t len = std::strlen(name);
    if (nameAt_ + len >= sizeof path_) return ENAMETOOLONG;
    std::memcpy(path_ + nameAt_, name, len + 1);
    return readFileAt(dirFd_, path_, out);
  }

 private:
  static constexpr size_t kNameAt = 24;  // "2147483647/" fits with room to spare
  int dirFd_;
  char path_[kNameAt + 16] = {};
  size_t nameAt_ = 0;
};

template <typename T>
bool parseNumber(std::string_view text, T& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

struct StatFields {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgid = 0;
  uint64_t flags = 0;
  uint64_t startTime = 0;
};

// Fields are counted from the last ')': comm may itself contain ") " and spaces.
bool parseStat(std::string_view text, StatFields& out) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return false;
  }
  out.comm = std::string(text.substr(open + 1, close - open - 1));
  std::string_view rest = text.substr(close + 1);
  std::string_view fields[20];  // state (field 3) .. starttime (field 22)
  size_t count = 0;
  for (size_t pos = 0; pos < rest.size() && count < 20;) {
    size_t start = rest.find_first_not_of(" \n", pos);
    if (start == std::string_view::npos) break;
    size_t end = rest.find_first_of(" \n", start);
    if (end == std::string_view::npos) end = rest.size();
    fields[count++] = rest.substr(start, end - start);
    pos = end;
  }
  if (count < 20 || fields[0].size() != 1) return false;
  out.state = fields[0][0];
  return parseNumber(fields[1], out.ppid) && parseNumber(fields[2], out.pgid) &&
         parseNumber(fields[6], out.flags) && parseNumber(fields[19], out.startTime);
}

// The real uid: the first number on the "Uid:" line.
bool parseStatusUid(std::string_view text, uid_t& uid) {
  size_t pos = text.starts_with("Uid:") ? 0 : text.find("\nUid:");
  if (pos == std::string_view::npos) return false;
  pos = text.find_first_not_of(" \t", text.find(':', pos) + 1);
  if (pos == std::string_view::npos) return false;
  size_t end = text.find_first_of(" \t\n", pos);
  return parseNumber(text.substr(pos, end == std::string_view::npos ? end : end - pos), uid);
}

// The "0::PATH" line; on a hybrid machine the v1 hierarchies come first.
std::string parseCgroupV2(std::string_view text) {
  size_t pos = text.starts_with("0::") ? 0 : text.find("\n0::");
  if (pos == std::string_view::npos) return "";
  pos = text.find("::", pos) + 2;
  size_t end = text.find('\n', pos);
  return std::string(text.substr(pos, end == std::string_view::npos ? end : end - pos));
}

void splitCmdline(std::string_view raw, ProcessInfo& info) {
  // setproctitle() pads with NULs; trailing empties are not arguments.
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  if (raw.empty()) return;
  for (size_t pos = 0;;) {
    size_t end = raw.find('\0', pos);
    info.cmdline.emplace_back(raw.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  info.commandLine = std::string(raw);
  std::replace(info.commandLine.begin(), info.commandLine.end(), '\0', ' ');
}

// What a scan may use to skip reading more of a process that cannot match: fields already
// read (name and pid from stat, the cgroup from its file) that rule it out. The process
// stays in the table (its stat data serves ancestor lookups); match() rejects it the same.
// With kScanCompleteMatches, `matches` is the whole selector: a process it matches is read
// whole in the same pass.
struct ScanHint {
  std::string name;
  std::optional<pid_t> pid;
  std::vector<std::string> cgroups;  // any of, normalised as compile() does; empty for none
  std::function<bool(const ProcessInfo&)> matches;
};

ScanHint hintFor(const ProcessSelector* s, unsigned fields) {
  ScanHint h;
  if (s == nullptr) return h;
  if ((fields & kScanCompleteMatches) != 0) h.matches = detail::selectorMatcher(*s);
  h.name = s->name;
  h.pid = s->pid;
  if (!s->cgroup.empty()) {
    std::vector<std::string> groups{s->cgroup};
    groups.insert(groups.end(), s->moreCgroups.begin(), s->moreCgroups.end());
    const bool valid = std::all_of(groups.begin(), groups.end(), [](const std::string& g) {
      return !g.empty() && g.front() == '/';
    });
    for (std::string& g : groups) {
      if (!valid) break;  // no hint: match() refuses the selector
      while (g.size() > 1 && g.back() == '/') g.pop_back();
      h.cgroups.push_back(std::move(g));
    }
  }
  return h;
}

// Scratch buffers reused across the processes of one scan.
struct Buffers {
  std::string stat, status, cmdline, cgroup;
};

// Reads one process's files. Through a descriptor of its /proc directory (readProcess) every
// file comes from the same process even if the pid is reused mid-read (the old directory fails
// ESRCH); a scan reads by path under /proc, and whoever acts on a process it found reads it
// again that way and compares the start time (findCandidates). Returns 0 or an errno.
int readProcessFiles(ProcessFiles files, pid_t pid, Buffers& buf, ProcessInfo& info,
                     unsigned fields = kScanAll, const ScanHint& hint = {}) {
  if (int err = files.read("stat", buf.stat)) return err;
  StatFields stat;
  if (!parseStat(buf.stat, stat)) return buf.stat.empty() ? ESRCH : EBADMSG;
  buf.status.clear();
  buf.cmdline.clear();
  // Ruled out by what stat says: nothing more to read.
  if ((!hint.name.empty() && stat.comm != hint.name) || (hint.pid && pid != *hint.pid)) fields = 0;
  // A missing cgroup file (fixtures, kernels without cgroups) only leaves the path empty.
  int cgroupErr = (fields & kScanCgroup) != 0 ? files.read("cgroup", buf.cgroup) : ENOENT;
  if (cgroupErr != 0 && cgroupErr != ENOENT) return cgroupErr;
  if (cgroupErr == 0) info.cgroup = parseCgroupV2(buf.cgroup);
  if (!hint.cgroups.empty() && (fields & kScanCgroup) != 0 &&
      std::none_of(hint.cgroups.begin(), hint.cgroups.end(),
                   [&](const std::string& g) { return inCgroup(info.cgroup, g); })) {
    fields = 0;  // ruled out by its cgroup
  }
  bool readStatus = (fields & kScanStatus) != 0;
  bool readCmdline = (fields & kScanCmdline) != 0;
  if (readStatus) {
    if (int err = files.read("status", buf.status)) return err;
  }
  if (readCmdline) {
    if (int err = files.read("cmdline", buf.cmdline)) return err;
  }

  info.pid = pid;
  info.ppid = stat.ppid;
  info.pgid = stat.pgid;
  info.comm = std::move(stat.comm);
  info.state = stat.state;
  info.startTime = stat.startTime;
  if (readStatus && !parseStatusUid(buf.status, info.uid)) {
    return buf.status.empty() ? ESRCH : EBADMSG;
  }
  splitCmdline(buf.cmdline, info);
  // A process the whole selector matches is read whole now, not again by the caller: the
  // files not read yet, then stat once more, whose start time proves that every file came from
  // the same process (a pid reused in between fails the comparison: skipped as exited).
  if (fields != 0 && hint.matches && hint.matches(info)) {
    if (cgroupErr == ENOENT && (fields & kScanCgroup) == 0) {
      cgroupErr = files.read("cgroup", buf.cgroup);
      if (cgroupErr != 0 && cgroupErr != ENOENT) return cgroupErr;
      if (cgroupErr == 0) info.cgroup = parseCgroupV2(buf.cgroup);
    }
    if (!readStatus) {
      if (int err = files.read("status", buf.status)) return err;
      if (!parseStatusUid(buf.status, info.uid)) return buf.status.empty() ? ESRCH : EBADMSG;
      readStatus = true;
    }
    if (!readCmdline) {
      if (int err = files.read("cmdline", buf.cmdline)) return err;
      splitCmdline(buf.cmdline, info);
      readCmdline = true;
    }
    if (int err = files.read("stat", buf.stat)) return err;
    StatFields again;
    if (!parseStat(buf.stat, again)) return buf.stat.empty() ? ESRCH : EBADMSG;
    if (again.startTime != info.startTime) return ESRCH;
    info.complete = true;
  }
  // PF_KTHREAD decides; pid 2 (kthreadd) and its children are the fallback for fixtures.
  // An empty cmdline is required there because in a container's pid namespace pid 2
  // can be an ordinary process (so without the cmdline read, only the flag counts).
  info.isKernelThread = (stat.flags & kPfKthread) != 0 ||
                        (readCmdline && info.cmdline.empty() && (pid == 2 || info.ppid == 2));
  return 0;
}

Error processError(pid_t pid, int err) {
  if (err == EBADMSG) {
    return Error(ErrorCode::kIo, "unparsable /proc entry of pid " + std::to_string(pid), err);
  }
  if (isRace(err)) return Error(ErrorCode::kNotFound, "no process " + std::to_string(pid), err);
  return Error::fromErrno("reading process " + std::to_string(pid), err);
}

bool isPidName(const char* name, pid_t& pid) {
  std::string_view text(name);
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos &&
         parseNumber(text, pid) && pid > 0;
}

}  // namespace

unsigned ProcessTable::fieldsFor(const ProcessSelector& selector) {
  unsigned fields = 0;
  if (!selector.user.empty()) fields |= kScanStatus;
  if (!selector.cmdline.empty()) fields |= kScanCmdline;
  if (!selector.cgroup.empty()) fields |= kScanCgroup;
  return fields;
}

Result<ProcessTable> ProcessTable::scan(std::string procRoot, unsigned fields,
                                        const ProcessSelector* hintFrom) {
  const ScanHint hint = hintFor(hintFrom, fields);
  DIR* dir = ::opendir(procRoot.c_str());
  if (dir == nullptr) return Error::fromErrno("opening " + procRoot, errno);
  std::vector<ProcessInfo> processes;
  Buffers buffers;
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    pid_t pid = 0;
    if (!isPidName(entry->d_name, pid)) continue;
    ProcessInfo info;
    int err = readProcessFiles(ProcessFiles(::dirfd(dir), entry->d_name), pid, buffers, info,
                               fields, hint);
    if (err == 0) {
      processes.push_back(std::move(info));
    } else if (!isRace(err)) {
      log::get("system")->debug("skipping process pid={} error={}", pid,
                                processError(pid, err).describe());
    }
    errno = 0;
  }
  int readErr = errno;
  ::closedir(dir);
  if (readErr != 0) return Error::fromErrno("listing " + procRoot, readErr);
  std::sort(processes.begin(), processes.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return ProcessTable(std::move(procRoot), std::move(processes), fields);
}

ProcessTable ProcessTable::fromProcesses(std::vector<ProcessInfo> processes, unsigned fields,
                                         std::string procRoot) {
  std::sort(processes.begin(), processes.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return ProcessTable(std::move(procRoot), std::move(processes), fields);
}

Result<ProcessInfo> readProcess(pid_t pid, const std::string& procRoot) {
  std::string path = procRoot + "/" + std::to_string(pid);
  Fd pidDir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pidDir) return processError(pid, errno);
  Buffers buffers;
  ProcessInfo info;
  if (int err = readProcessFiles(ProcessFiles(pidDir.get(), ""), pid, buffers, info)) {
    return processError(pid, err);
  }
  return info;
}

Result<uint64_t> readStartTime(pid_t pid, const std::string& procRoot) {
  std::string path = procRoot + "/" + std::to_string(pid);
  Fd pidDir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pidDir) return processError(pid, errno);
  std::string text;
  if (int err = readFileAt(pidDir.get(), "stat", text)) return processError(pid, err);
  StatFields stat;
  if (!parseStat(text, stat)) return processError(pid, text.empty() ? ESRCH : EBADMSG);
  return stat.startTime;
}

std::string currentBootId() {
  static const std::string id = [] {
    std::string text;
    if (readFileAt(AT_FDCWD, "/proc/sys/kernel/random/boot_id", text) != 0) return std::string();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }();
  return id;
}

Result<pid_t> readPidFile(const std::string& path) {
  std::string text;
  if (int err = readFileAt(AT_FDCWD, path.c_str(), text)) {
    return Error::fromErrno("reading pid file " + path, err);
  }
  std::string_view trimmed(text);
  size_t first = trimmed.find_first_not_of(" \t\r\n");
  size_t last = trimmed.find_last_not_of(" \t\r\n");
  trimmed = first == std::string_view::npos ? "" : trimmed.substr(first, last - first + 1);
  pid_t pid = 0;
  if (!parseNumber(trimmed, pid) || pid <= 0) {
    std::string shown(trimmed.substr(0, 40));
    return Error(ErrorCode::kInvalid, "pid file " + path + " does not hold a pid: '" + shown + "'");
  }
  return pid;
}

const ProcessInfo* ProcessTable::find(pid_t pid) const {
  auto it = std::lower_bound(processes_.begin(), processes_.end(), pid,
                             [](const ProcessInfo& p, pid_t value) { return p.pid < value; });
  return it != processes_.end() && it->pid == pid ? &*it : nullptr;
}

std::vector<pid_t> ProcessTable::ancestorsOf(pid_t pid) const {
  std::vector<pid_t> chain;
  const ProcessInfo* current = find(pid);
  // The bound stops a cycle, which a snapshot taken across a pid reuse could contain.
  while (current != nullptr && current->ppid > 0 && chain.size() < processes_.size()) {
    chain.push_back(current->ppid);
    if (current->ppid == 1) break;
    current = find(current->ppid);
  }
  return chain;
}

}  // namespace chaosd
