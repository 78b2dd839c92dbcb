#pragma once

// chaosd's main: options, recovery of what an earlier life left, the API on the UNIX socket,
// the metrics listener, the scheduler, signals (SIGTERM/SIGINT: abort runs, revert, exit;
// SIGHUP: reopen the log file). Returns the process exit code.
namespace chaosd::daemon {

int runChaosd(int argc, char** argv);

}  // namespace chaosd::daemon
