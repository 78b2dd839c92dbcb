#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"

namespace chaosd {

// Every set field must match (AND). At least one field is set.
struct ProcessSelector {
  std::optional<int> pid;
  std::string name;     // comm, exact
  std::string cmdline;  // ECMAScript regex searched in the NUL-joined-by-space command line
  std::string cgroup;   // cgroup v2 path relative to the cgroup2 mount, "/system.slice/x"
  std::string user;     // name or numeric uid
  std::string pidFile;
  // Never matched, whatever else matches: a container's init under `init: protect`. Set by
  // the code that builds a selector for a container, not by the experiment's YAML.
  std::vector<int> exceptPids;
  // More groups a process may be in instead of `cgroup` (which is then set too): the groups of
  // several containers one fault acts on (`mode: all` over a pod). Set by code, not YAML.
  std::vector<std::string> moreCgroups;
};

// One process as /proc showed it at scan time.
struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;                    // process group
  std::string comm;                  // at most 15 bytes; may hold spaces and parentheses
  char state = '?';                  // R, S, D, T, Z, ...
  uint64_t startTime = 0;            // clock ticks after boot; (pid, startTime) names one process
  uid_t uid = 0;                     // real uid
  std::vector<std::string> cmdline;  // argv; empty for kernel threads and zombies
  std::string commandLine;           // argv joined with spaces, what `cmdline:` regexes see
  bool isKernelThread = false;
  std::string cgroup;  // cgroup v2 path ("/system.slice/x"); "" when unknown
  // Every field read, and proved to come from one process (ProcessTable::scan with
  // kScanCompleteMatches); false when only some were (a scan's other processes, fakes).
  bool complete = false;
};

// What matching needs from outside the snapshot; tests replace the passwd lookup.
struct MatchContext {
  // Looks up user names (numeric uids need no lookup); empty: the passwd database.
  std::function<Result<uid_t>(std::string_view)> uidByName;
  // Kernel threads are never fault targets; only a caller that counts them asks for them.
  bool includeKernelThreads = false;
};

// Processes a fault must never touch, beyond PID 1 and kernel threads.
struct ProtectionContext {
  pid_t selfPid = ::getpid();
  std::set<pid_t> guardedPids;  // our guardian and other helpers
  // The chaosctl that asked for the experiment (the daemon learns it from SO_PEERCRED);
  // it and its ancestors (the shell, sshd) are protected. 0: the same as selfPid.
  pid_t invokerPid = 0;
  std::string invokerName = "chaosctl";
};

// Which files of /proc/PID a scan reads beyond `stat` (pid, ppid, pgid, comm, state, start
// time, kernel-thread flag), which it always reads. Each file costs an open, a read and a
// close per process: a selector by name needs a quarter of a full scan's system calls.
enum ScanFields : unsigned {
  kScanStatus = 1u << 0,   // uid (`user:`)
  kScanCmdline = 1u << 1,  // cmdline, commandLine (`cmdline:`)
  kScanCgroup = 1u << 2,   // cgroup (`cgroup:`)
  kScanAll = kScanStatus | kScanCmdline | kScanCgroup,
  // With a hint: a process the whole hint matches is read whole in the same pass (the files
  // left, then stat again to compare the start time) and marked complete, so that a caller
  // needing every field of the matches need not open their directories again.
  kScanCompleteMatches = 1u << 3,
};

// A snapshot of the processes under a proc root. Cheap to query; re-scan to refresh.
class ProcessTable {
 public:
  // Reads every process under procRoot (a fixture tree in tests). Processes that exit
  // during the scan are left out; only an unreadable procRoot is an error. Fields a scan
  // leaves out stay empty (uid 0): match() refuses a selector that needs them.
  // With `hint`, a process its name, pid or cgroup already rules out is not read further
  // (it stays in the table, for ancestor lookups; match() with that selector rejects it).
  static Result<ProcessTable> scan(std::string procRoot = "/proc", unsigned fields = kScanAll,
                                   const ProcessSelector* hint = nullptr);
  // A table of these processes, as if a scan had read them with `fields`: what a process
  // table in memory (a fake kernel in tests) hands out.
  static ProcessTable fromProcesses(std::vector<ProcessInfo> processes, unsigned fields = kScanAll,
                                    std::string procRoot = "");
  // The fields a selector's match needs.
  static unsigned fieldsFor(const ProcessSelector& selector);

  // The processes matching every field the selector sets, by ascending pid.
  // kInvalid for an empty selector or a bad regex; errors from pidFile and user lookups.
  Result<std::vector<ProcessInfo>> match(const ProcessSelector& selector,
                                         const MatchContext& context = {}) const;

  // The process with this pid, or nullptr.
  const ProcessInfo* find(pid_t pid) const;

  // Parent, grandparent, ... up to and including PID 1 (or the first pid not in the
  // snapshot). Empty when pid itself is unknown.
  std::vector<pid_t> ancestorsOf(pid_t pid) const;

  // Refuses, with a message a user can act on, to let a fault touch PID 1, a kernel
  // thread, chaosd itself, its guardian, or the invoker and its ancestors.
  Result<void> checkNotProtected(const ProcessInfo& process,
                                 const ProtectionContext& context) const;

  const std::vector<ProcessInfo>& processes() const { return processes_; }
  const std::string& procRoot() const { return procRoot_; }

 private:
  ProcessTable(std::string procRoot, std::vector<ProcessInfo> processes, unsigned fields)
      : procRoot_(std::move(procRoot)), processes_(std::move(processes)), fields_(fields) {}

  std::string procRoot_;
  std::vector<ProcessInfo> processes_;  // sorted by pid
  unsigned fields_ = kScanAll;
};

// Reads one process; kNotFound when it does not exist (or exited meanwhile).
Result<ProcessInfo> readProcess(pid_t pid, const std::string& procRoot = "/proc");

// The start time (stat field 22) of one process: compared before and after opening a
// pidfd, it proves the pid was not reused in between. kNotFound when it has exited.
Result<uint64_t> readStartTime(pid_t pid, const std::string& procRoot = "/proc");

// This boot's id (/proc/sys/kernel/random/boot_id, 36 characters), "" when unreadable. A pid
// and start time name a process within one boot only: after a reboot both count from zero
// again, so a record of an earlier boot can match a process that has nothing to do with it.
std::string currentBootId();

// The pid written in a pid file (surrounding whitespace ignored). kInvalid when the file
// holds anything else.
Result<pid_t> readPidFile(const std::string& path);

}  // namespace chaosd
