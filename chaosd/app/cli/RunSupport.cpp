#include "chaosd/app/cli/RunSupport.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/base/Log.h"
#include "chaosd/engine/Recovery.h"

namespace chaosd::cli {
namespace {

int gSignalPipe[2] = {-1, -1};

extern "C" void onStopSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(gSignalPipe[1], &b, 1);
}

}  // namespace

StopSignals::StopSignals(std::function<void(const std::string&)> stop) {
  if (::pipe2(gSignalPipe, O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &oldInt_);
  ::sigaction(SIGTERM, &sa, &oldTerm_);
  thread_ = std::thread([stop = std::move(stop)] {
    unsigned char b = 0;
    while (::read(gSignalPipe[0], &b, 1) == 1 && b != 0) {
      std::string name = b == SIGINT ? "SIGINT" : b == SIGTERM ? "SIGTERM" : "signal";
      std::fprintf(stderr, "\nchaosctl: %s: stopping; reverting every fault first\n", name.c_str());
      stop("interrupted by " + name);
    }
  });
}

StopSignals::~StopSignals() {
  if (thread_.joinable()) {
    unsigned char zero = 0;
    [[maybe_unused]] ssize_t n = ::write(gSignalPipe[1], &zero, 1);
    thread_.join();
  }
  ::sigaction(SIGINT, &oldInt_, nullptr);
  ::sigaction(SIGTERM, &oldTerm_, nullptr);
  for (int& fd : gSignalPipe) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

std::string newRunId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

std::string utcStamp(bool iso) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y%m%dT%H%M%SZ", &tm);
  return stamp;
}

std::string runFolderName(const std::string& name, const std::string& runId) {
  return name + "-" + utcStamp() + "-" + runId.substr(0, 8);
}

Result<FaultJournal> openStateJournal(const std::string& stateDir) {
  std::error_code ec;
  std::filesystem::create_directories(stateDir, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot create state dir " + stateDir + ": " + ec.message());
  ::chmod(stateDir.c_str(), 0700);
  return openJournal(stateDir + "/journal.db");
}

void recoverLeftovers(FaultJournal& journal) {
  auto left = recoverAll(journal, builtinRegistry(), RecoveryFilter{"", false, "recovery"});
  if (!left) {
    log::get("run")->warn("recovering earlier leftovers: {}", left.error().describe());
    return;
  }
  for (const auto& o : left->outcomes) {
    const auto& f = o.fault;
    if (o.reverted) {
      std::printf("chaosctl: reverted %s (%s %s), left by run %s whose owner is gone\n",
                  f.faultId.c_str(), f.faultType.c_str(), f.target.c_str(), f.runId.c_str());
    } else {
      std::fprintf(stderr, "chaosctl: could not revert %s (%s %s) left by run %s: %s\n",
                   f.faultId.c_str(), f.faultType.c_str(), f.target.c_str(), f.runId.c_str(),
                   o.error.c_str());
    }
  }
}

}  // namespace chaosd::cli
