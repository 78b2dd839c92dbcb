#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "chaosd/base/ProcessKernel.h"
#include "chaosd/base/Result.h"
#include "injectors/process/ProcessRecords.h"

// The NTP clients a host-wide time.skew pauses, so none steps or slews the clock back while the
// fault holds it: found by name in /proc, stopped with SIGSTOP and resumed with SIGCONT through
// a pidfd whose process is proven to be the recorded one (pid and start time), as
// process.pause does. docs/faults/time.md.
namespace chaosd {

// chronyd, systemd-timesyncd (its comm is cut to "systemd-timesyn"), ntpd (ntp, ntpsec,
// OpenNTPD and busybox all name it so) and Debian's openntpd.
bool isNtpClientName(std::string_view comm);

struct NtpClients {
  std::vector<Victim> running;         // to pause
  std::vector<Victim> alreadyStopped;  // stopped by someone else: never resumed by us
};

// The NTP clients /proc lists now (zombies and kernel threads left out). Reads only.
Result<NtpClients> findNtpClients(ProcessKernel& kernel);

// SIGSTOP to each client still the recorded process, then waits (up to `wait`) until /proc
// shows each one stopped. Errors only for a signal refused for another reason than "gone"
// (the caller's revert then resumes whatever was stopped). Observed: {"paused": [...],
// "gone": [...], "notConfirmed": [...]}, each entry {"pid", "comm"}.
Result<nlohmann::json> pauseNtpClients(ProcessKernel& kernel, const std::vector<Victim>& clients,
                                       std::chrono::milliseconds wait);

// SIGCONT to each client still the recorded process (gone or reused pids are fine), then waits
// (up to `wait`) until each has left the stopped state. Idempotent. Fails, after trying every
// client, when one could not be signalled or stays stopped. Observed: {"resumed", "gone",
// "pidReused"}.
Result<nlohmann::json> resumeNtpClients(ProcessKernel& kernel, const std::vector<Victim>& clients,
                                        std::chrono::milliseconds wait);

// The recorded clients still stopped, one line each (audit).
std::vector<std::string> ntpClientsStillStopped(ProcessKernel& kernel,
                                                const std::vector<Victim>& clients);

}  // namespace chaosd
