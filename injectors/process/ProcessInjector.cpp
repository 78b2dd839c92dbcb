#include "injectors/process/ProcessInjector.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "chaosd/base/GuardianName.h"
#include "injectors/process/Selection.h"
#include "injectors/process/TargetResolution.h"

namespace chaosd {
namespace {

// A chaosd guardian, ours or another run's: named by prctl, or by its hidden subcommand while
// it starts. It must never be paused or killed by a fault (a selector such as `user: root`
// matches it): it is what reverts the faults when the owner dies.
bool isGuardian(const ProcessInfo& p) {
  return p.comm == kGuardianComm || (p.cmdline.size() > 1 && p.cmdline[1] == kGuardianSubcommand);
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t freshSeed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

}  // namespace

// ---- resolution -------------------------------------------------------------------------

Candidates eligibleAmong(const ProcessTable& table, std::vector<ProcessInfo> matched,
                         const ProtectionContext& protection) {
  // Only the matched processes are checked, so only they need to be recognised as guardians.
  ProtectionContext context = protection;
  for (const ProcessInfo& p : matched) {
    if (isGuardian(p)) context.guardedPids.insert(p.pid);
  }
  Candidates out;
  out.matched = matched.size();
  for (ProcessInfo& p : matched) {
    if (p.state == 'Z' || p.state == 'X') continue;
    auto allowed = table.checkNotProtected(p, context);
    if (allowed) {
      out.eligible.push_back(std::move(p));
    } else {
      out.refused.push_back(allowed.error().message());
    }
  }
  return out;
}

Result<Candidates> findCandidates(const ProcessSelector& selector,
                                  const ProtectionContext& protection,
                                  const std::string& procRoot) {
  SystemProcessKernel kernel(procRoot);
  return findCandidates(kernel, selector, protection);
}

Result<Candidates> findCandidates(ProcessKernel& kernel, const ProcessSelector& selector,
                                  const ProtectionContext& protection) {
  // Read only what the selector needs from every process, then the whole of the few it
  // matched (the guardian is recognised by its command line; the report shows it).
  // The scan reads the matches whole itself (kScanCompleteMatches); a process it could not
  // complete (a fake kernel's table) is read again here, its start time compared.
  auto table = kernel.scan(ProcessTable::fieldsFor(selector) | kScanCompleteMatches, &selector);
  if (!table) return std::move(table).error();
  auto matched = table->match(selector);
  if (matched) {
    std::vector<ProcessInfo> complete;
    for (ProcessInfo& p : *matched) {
      if (p.complete) {
        complete.push_back(std::move(p));
        continue;
      }
      auto full = kernel.readProcess(p.pid);
      if (full && full->startTime == p.startTime) complete.push_back(std::move(*full));
    }
    *matched = std::move(complete);
  }
  if (!matched) return std::move(matched).error();
  return eligibleAmong(*table, std::move(*matched), protection);
}

ProtectionContext defaultProtection() {
  ProtectionContext protection;
  protection.selfPid = ::getpid();
  protection.invokerPid = ::getpid();
  return protection;
}

Result<ProcessPlan> planProcessFault(ProcessKernel& kernel, const FaultRequest& request, int signal,
                                     std::chrono::nanoseconds interval) {
  const TargetSpec* target = request.target;
  if (target == nullptr) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs a process target");
  }
  if (target->kind == TargetKind::kExec) {
    return Error(ErrorCode::kNotFound,
                 "exec target '" + target->name + "' has no process the engine started");
  }
  if (target->kind != TargetKind::kProcess) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs a process target; '" +
                                          target->name + "' is " +
                                          std::string(targetKindName(target->kind)));
  }
  ProcessPlan plan;
  plan.faultId = request.faultId;
  plan.faultType = request.faultType;
  plan.selectorText = describeSelector(*target);
  plan.selector = target->process;
  plan.selection = target->selection;
  plan.seedFromExperiment = target->selection.seed.has_value();
  plan.seed = plan.seedFromExperiment ? *target->selection.seed : freshSeed();
  plan.selection.seed = plan.seed;
  plan.signal = signal;
  plan.duration = request.duration;
  plan.interval = interval;

  auto found = findCandidates(kernel, target->process, defaultProtection());
  if (!found) return std::move(found).error().withContext("resolving target " + target->name);
  plan.matched = found->matched;
  plan.eligible = found->eligible.size();
  plan.refused = found->refused;
  if (found->eligible.empty()) {
    if (!found->refused.empty()) {
      std::string why;
      for (const auto& r : found->refused) why += (why.empty() ? "" : "; ") + r;
      return Error(ErrorCode::kPermission, "every process matching " + plan.selectorText +
                                               " (target " + target->name +
                                               ") is protected: " + why);
    }
    if (!target->emptySkip) {
      return Error(ErrorCode::kNotFound,
                   "no process matches " + plan.selectorText + " (target " + target->name + ")");
    }
    plan.noop = true;
    return plan;
  }

  std::vector<ProcessInfo> chosen;
  if (interval.count() > 0) {
    if (auto first = chooseForRound(found->eligible, plan.selection, plan.seed, 0)) {
      chosen.push_back(std::move(*first));
    }
  } else {
    chosen = selectProcesses(found->eligible, plan.selection, plan.seed);
  }
  if (chosen.size() > kMaxVictims) {
    return Error(ErrorCode::kInvalid,
                 "target " + target->name + " selects " + std::to_string(chosen.size()) +
                     " processes, over the sanity bound of " + std::to_string(kMaxVictims));
  }
  for (const ProcessInfo& p : chosen) plan.victims.push_back(Victim{p.pid, p.startTime, p.comm});
  return plan;
}

std::optional<ProcessInfo> chooseForRound(std::vector<ProcessInfo> candidates,
                                          const Selection& selection, uint64_t seed,
                                          uint64_t round) {
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(round)));
  std::vector<ProcessInfo> selected = selectProcesses(std::move(candidates), selection, rng());
  if (selected.empty()) return std::nullopt;
  // Rejection sampling, as in selectProcesses: the same draw on every standard library.
  uint64_t bound = selected.size();
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t r = 0;
  do {
    r = rng();
  } while (r >= limit);
  return std::move(selected[static_cast<size_t>(r % bound)]);
}

// ---- reaching a victim ------------------------------------------------------------------

std::string_view victimStateText(VictimState state) {
  switch (state) {
    case VictimState::kLive:
      return "live";
    case VictimState::kExited:
      return "exited before the signal";
    case VictimState::kReused:
      return "pid reused by another process: not signalled";
  }
  return "";
}

Result<ReachedVictim> reachVictim(const Victim& victim) {
  return reachVictim(*systemProcessKernel(), victim);
}

Result<ReachedVictim> reachVictim(ProcessKernel& kernel, const Victim& victim) {
  ReachedVictim out;
  // The pidfd first, the start time second: if the start time still matches after the
  // pidfd is open, the pidfd holds the recorded process and no later reuse can redirect it.
  auto opened = kernel.openPidfd(victim.pid);
  if (!opened) {
    const int err = opened.error().sysErrno();
    if (err == ESRCH) return out;
    return Error::fromErrno("pidfd_open of pid " + std::to_string(victim.pid), err);
  }
  Fd pidfd = std::move(*opened);
  auto start = kernel.readStartTime(victim.pid);
  if (!start) {
    if (start.error().code() == ErrorCode::kNotFound) return out;
    return std::move(start).error();
  }
  if (*start != victim.startTime) {
    out.state = VictimState::kReused;
    return out;
  }
  if (kernel.hasExited(pidfd)) return out;  // a zombie: its start time still reads the same
  out.state = VictimState::kLive;
  out.pidfd = std::move(pidfd);
  return out;
}

Result<void> signalVictim(const Fd& pidfd, int signal, const Victim& victim) {
  return signalVictim(*systemProcessKernel(), pidfd, signal, victim);
}

Result<void> signalVictim(ProcessKernel& kernel, const Fd& pidfd, int signal,
                          const Victim& victim) {
  auto sent = kernel.sendSignal(pidfd, signal);
  if (sent) return success();
  return Error::fromErrno("pidfd_send_signal " + std::to_string(signal) + " to pid " +
                              std::to_string(victim.pid) + " (" + victim.comm + ")",
                          sent.error().sysErrno());
}

std::optional<char> victimStateLetter(ProcessKernel& kernel, const Victim& victim) {
  auto info = kernel.readProcess(victim.pid);
  if (!info || info->startTime != victim.startTime) return std::nullopt;
  return info->state;
}

double millisBetween(std::chrono::steady_clock::time_point from,
                     std::chrono::steady_clock::time_point to) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  return static_cast<double>(us) / 1000.0;
}

std::string describeVictims(const std::vector<Victim>& victims) {
  std::string out;
  size_t shown = 0;
  for (const Victim& v : victims) {
    if (shown == 5) {
      out += ", and " + std::to_string(victims.size() - shown) + " more";
      break;
    }
    out += (out.empty() ? "" : ", ") + std::to_string(v.pid) + " (" + v.comm + ")";
    ++shown;
  }
  return out;
}

}  // namespace chaosd
