#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Result.h"

// The processes that carry cpu.stress and memory.stress: children of the owner made with
// fork() and no exec, each started inside the fault's cgroup. After fork a child of a
// multithreaded owner may only make system calls, so the loops here allocate nothing, lock
// nothing and log nothing; what they achieve goes to a shared page the owner reads.
//
// A child lives no longer than its owner: it holds the read end of a pipe whose only write end
// stays in the owner (every other descriptor is closed in the child), and it watches that pipe
// whenever it is not computing, so the owner's death (a crash, kill -9) ends it within one
// duty period. The guardian then removes the cgroup (cgroup.kill) from the undo record alone.
namespace chaosd {

// cpu.stress: one worker's duty cycle. Each period it computes until its own CPU time has grown
// by load x period, then sleeps to the period's end; behind schedule (the CPU was contended),
// the next period starts at once rather than catching up.
struct CpuDuty {
  double load = 1.0;                             // 0..1 of one CPU
  std::chrono::nanoseconds climb{0};             // ramp from 0 to load over this long
  std::chrono::nanoseconds period{100'000'000};  // 100 ms
  std::chrono::nanoseconds duration{0};          // 0: until revert (or the owner's end)
};

// memory.stress: the hog's plan.
struct MemoryHog {
  enum class Mode { kAnonymous, kLocked, kCache };
  uint64_t size = 0;     // bytes to touch
  uint64_t reserve = 0;  // never let MemAvailable fall below this
  uint64_t rate = 0;     // bytes per second while growing; 0: as fast as it can
  Mode mode = Mode::kAnonymous;
  std::chrono::nanoseconds duration{0};  // 0: until revert
  std::string meminfo = "/proc/meminfo";
  int fileFd = -1;  // kCache: the owner's descriptor of the file whose page cache is filled
};

// What a stress process shares with its owner (one page, MAP_SHARED).
struct StressShared {
  enum State : int { kStarting = 0, kRunning, kHolding, kAtFloor, kFailed, kEnded };
  std::atomic<int> state{kStarting};
  std::atomic<int> failedErrno{0};           // kFailed: what the kernel said (mmap, mlock)
  std::atomic<uint64_t> touched{0};          // memory: bytes touched (and locked) so far
  std::atomic<uint64_t> availableAtStop{0};  // memory: MemAvailable when growth stopped
  std::atomic<uint64_t> periods{0};          // cpu: duty periods run
  std::atomic<uint64_t> busyNs{0};           // cpu: CPU time the duty cycle counted
};

// The stress processes of one fault in one cgroup.
class StressGroup {
 public:
  StressGroup() = default;
  ~StressGroup();  // kills (SIGKILL) and reaps whatever still runs
  StressGroup(const StressGroup&) = delete;
  StressGroup& operator=(const StressGroup&) = delete;

  // Starts `workers` CPU workers in cgroupDir (and in each v1 cgroup of alsoJoin).
  static Result<std::unique_ptr<StressGroup>> startCpu(
      const std::string& cgroupDir, int workers, const CpuDuty& duty,
      const std::vector<std::string>& alsoJoin = {});
  // Starts one memory hog in cgroupDir (and alsoJoin), with oom_score_adj 1000 (the OOM
  // killer's first pick).
  static Result<std::unique_ptr<StressGroup>> startMemory(
      const std::string& cgroupDir, const MemoryHog& hog,
      const std::vector<std::string>& alsoJoin = {});

  struct Ending {
    pid_t pid = 0;
    std::string how;  // "running", "exited 0", "killed by SIGKILL"
    bool beforeRevert = false;
  };
  // How each process ended (or "running"); reaps the ended ones. Call before and after the
  // cgroup is killed: what had ended before is marked beforeRevert.
  std::vector<Ending> reap(bool wait);

  std::vector<pid_t> pids() const;
  int running();  // processes not yet ended
  const StressShared& shared(size_t i) const { return *shared_[i]; }
  size_t size() const { return procs_.size(); }
  std::chrono::steady_clock::time_point startedAt() const { return startedAt_; }

 private:
  static Result<std::unique_ptr<StressGroup>> spawn(const std::string& cgroupDir, int count,
                                                    const std::vector<std::string>& alsoJoin,
                                                    const char* name, int oomScoreAdj,
                                                    const CpuDuty* cpu, const MemoryHog* hog);
  struct Proc {
    pid_t pid = 0;
    Fd pidfd;
    std::optional<Ending> ended;
  };
  std::vector<Proc> procs_;
  std::vector<StressShared*> shared_;  // one page each, unmapped by the destructor
  Fd lifeline_;                        // the write end: closing it ends the children
  std::chrono::steady_clock::time_point startedAt_;
};

// MemAvailable from a meminfo file, in bytes, with no allocation (safe after fork).
// 0 when it cannot be read.
uint64_t memAvailableBytes(const char* meminfo);

}  // namespace chaosd
