#include "injectors/process/VictimStates.h"

#include <signal.h>

#include <cerrno>
#include <utility>

namespace chaosd {

ResumedVictims resumeVictims(ProcessKernel& kernel, const std::vector<Victim>& victims,
                             std::chrono::milliseconds wait) {
  ResumedVictims out;
  std::vector<size_t> signalled;
  for (size_t i = 0; i < victims.size(); ++i) {
    auto reached = reachVictim(kernel, victims[i]);
    if (reached && reached->state == VictimState::kLive) {
      auto sent = signalVictim(kernel, reached->pidfd, SIGCONT, victims[i]);
      if (sent) {
        signalled.push_back(i);
        continue;
      }
      if (sent.error().sysErrno() == ESRCH) {
        reached->state = VictimState::kExited;
      } else {
        reached = std::move(sent).error();
      }
    }
    if (!reached) {
      out.errors.push_back(reached.error().describe());
    } else {
      (reached->state == VictimState::kReused ? out.reused : out.gone).push_back(i);
    }
  }
  out.stillStopped =
      pollVictimStates(kernel, victims, signalled, std::chrono::steady_clock::now() + wait,
                       [&](size_t i, std::optional<char> state) {
                         if (!state) {
                           out.gone.push_back(i);
                           return true;
                         }
                         if (isStoppedState(*state)) return false;
                         out.resumed.push_back(i);
                         return true;
                       });
  return out;
}

}  // namespace chaosd
