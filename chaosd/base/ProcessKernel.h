#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "chaosd/base/Fd.h"
#include "chaosd/base/ProcessTable.h"
#include "chaosd/base/Result.h"

// The kernel surface the process faults touch: the process table under /proc, pidfds and the
// signals sent through them. The process injectors hold one (the real one by default), so a
// test hands them a process table in memory (tests/support/FakeProcesses.h) and drives kill,
// pause and an exec target's stop without root and without touching a real process.
namespace chaosd {

class ProcessKernel {
 public:
  virtual ~ProcessKernel() = default;

  // Every process now (ProcessTable::scan: a process exiting meanwhile is left out; only an
  // unreadable table is an error), reading beyond stat only `fields`, and with `hint` only
  // what can still match it.
  virtual Result<ProcessTable> scan(unsigned fields = kScanAll,
                                    const ProcessSelector* hint = nullptr) = 0;
  // The pids listed now, read nothing else (a cheap look for new processes); empty when the
  // table cannot be read.
  virtual std::set<pid_t> listPids() = 0;
  // One process, every field; kNotFound when it does not exist. A zombie is still listed.
  virtual Result<ProcessInfo> readProcess(pid_t pid) = 0;
  // The start time of the process holding `pid` now; kNotFound when there is none.
  virtual Result<uint64_t> readStartTime(pid_t pid) = 0;
  // A pidfd to the process holding `pid` now (a zombie too). Errors carry the errno: ESRCH
  // when there is no such process, EPERM, EMFILE.
  virtual Result<Fd> openPidfd(pid_t pid) = 0;
  // Sends `signal` to the pidfd's process. Errors carry the errno: ESRCH once it is reaped.
  virtual Result<void> sendSignal(const Fd& pidfd, int signal) = 0;
  // True when the pidfd's process has exited (a zombie or reaped), without waiting. A pidfd
  // is readable (POLLIN) from then on, so callers may also poll it with other descriptors.
  virtual bool hasExited(const Fd& pidfd) = 0;
  // Collects the exit status of `pid` when it is our exited child (waitpid WNOHANG), so it
  // leaves no zombie; does nothing otherwise.
  virtual void reapChild(pid_t pid) = 0;
  // Now on the clock start times count in (CLOCK_BOOTTIME), in nanoseconds.
  virtual int64_t bootTimeNs() = 0;
};

// The real kernel: /proc (or a fixture tree at procRoot for the reads), pidfd_open,
// pidfd_send_signal, poll, waitpid and CLOCK_BOOTTIME. Stateless.
class SystemProcessKernel final : public ProcessKernel {
 public:
  explicit SystemProcessKernel(std::string procRoot = "/proc") : procRoot_(std::move(procRoot)) {}

  Result<ProcessTable> scan(unsigned fields, const ProcessSelector* hint) override;
  std::set<pid_t> listPids() override;
  Result<ProcessInfo> readProcess(pid_t pid) override;
  Result<uint64_t> readStartTime(pid_t pid) override;
  Result<Fd> openPidfd(pid_t pid) override;
  Result<void> sendSignal(const Fd& pidfd, int signal) override;
  bool hasExited(const Fd& pidfd) override;
  void reapChild(pid_t pid) override;
  int64_t bootTimeNs() override;

 private:
  std::string procRoot_;
};

// The real kernel over /proc, shared: it holds no state, so every user may hold it.
std::shared_ptr<ProcessKernel> systemProcessKernel();

}  // namespace chaosd
