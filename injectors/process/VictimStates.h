#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "injectors/process/ProcessInjector.h"

// Waiting for recorded processes to reach a state: process.pause and time.skew's NTP clients
// both stop processes with SIGSTOP and resume them with SIGCONT, then watch /proc for it.
namespace chaosd {

// Whether a /proc state letter is "stopped": 'T' (by a signal) or 't' (by a tracer).
inline bool isStoppedState(char state) { return state == 'T' || state == 't'; }

// Polls /proc until done(index, state letter or nullopt when gone or reused) holds for every
// index in `left`, or the deadline passes; returns the indexes still left. Polls after 200 us,
// then twice as long each time, at most 20 ms apart.
template <typename Done>
std::vector<size_t> pollVictimStates(ProcessKernel& kernel, const std::vector<Victim>& victims,
                                     std::vector<size_t> left,
                                     std::chrono::steady_clock::time_point deadline, Done done) {
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    std::erase_if(left, [&](size_t i) { return done(i, victimStateLetter(kernel, victims[i])); });
    if (left.empty() || std::chrono::steady_clock::now() >= deadline) return left;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

// What resumeVictims did, by index into its victims.
struct ResumedVictims {
  std::vector<size_t> resumed;       // running again
  std::vector<size_t> gone;          // exited before or after the SIGCONT
  std::vector<size_t> reused;        // the pid is another process now: not signalled
  std::vector<size_t> stillStopped;  // signalled, still stopped when the wait ended
  std::vector<std::string> errors;   // failures other than "gone" (EPERM, unreadable /proc)
};

// SIGCONT through a pidfd to each recorded process that is still the one recorded, then waits
// up to `wait` to see each one leave the stopped state. Idempotent: a process already running
// counts as resumed, one gone as gone. process.pause's revert and time.skew's NTP clients.
ResumedVictims resumeVictims(ProcessKernel& kernel, const std::vector<Victim>& victims,
                             std::chrono::milliseconds wait);

}  // namespace chaosd
