#include "injectors/time/NtpClients.h"

#include <signal.h>

#include <array>
#include <thread>

#include "injectors/process/ProcessInjector.h"
#include "injectors/process/VictimStates.h"

namespace chaosd {
namespace {

using Clock = std::chrono::steady_clock;

nlohmann::json entry(const Victim& v) { return {{"pid", v.pid}, {"comm", v.comm}}; }

}  // namespace

bool isNtpClientName(std::string_view comm) {
  static constexpr std::array<std::string_view, 4> kNames = {"chronyd", "systemd-timesyn", "ntpd",
                                                             "openntpd"};
  for (auto name : kNames) {
    if (comm == name) return true;
  }
  return false;
}

Result<NtpClients> findNtpClients(ProcessKernel& kernel) {
  auto table = kernel.scan(0);
  if (!table) return std::move(table).error().withContext("looking for NTP clients");
  NtpClients out;
  for (const ProcessInfo& p : table->processes()) {
    if (p.isKernelThread || p.state == 'Z' || p.state == 'X' || !isNtpClientName(p.comm)) continue;
    Victim v{p.pid, p.startTime, p.comm};
    (isStoppedState(p.state) ? out.alreadyStopped : out.running).push_back(std::move(v));
  }
  return out;
}

Result<nlohmann::json> pauseNtpClients(ProcessKernel& kernel, const std::vector<Victim>& clients,
                                       std::chrono::milliseconds wait) {
  nlohmann::json paused = nlohmann::json::array(), gone = nlohmann::json::array(),
                 notConfirmed = nlohmann::json::array();
  std::vector<size_t> signalled;
  for (size_t i = 0; i < clients.size(); ++i) {
    auto reached = reachVictim(kernel, clients[i]);
    if (!reached) return std::move(reached).error().withContext("pausing NTP clients");
    if (reached->state == VictimState::kLive) {
      auto sent = signalVictim(kernel, reached->pidfd, SIGSTOP, clients[i]);
      if (sent) {
        signalled.push_back(i);
        continue;
      }
      if (sent.error().sysErrno() != ESRCH) {
        return std::move(sent).error().withContext("pausing NTP clients");
      }
    }
    gone.push_back(entry(clients[i]));
  }
  auto left = pollVictimStates(kernel, clients, signalled, Clock::now() + wait,
                               [&](size_t i, std::optional<char> state) {
                                 if (!state) {
                                   gone.push_back(entry(clients[i]));
                                   return true;
                                 }
                                 if (!isStoppedState(*state)) return false;
                                 paused.push_back(entry(clients[i]));
                                 return true;
                               });
  for (size_t i : left) notConfirmed.push_back(entry(clients[i]));
  return nlohmann::json{{"paused", paused}, {"gone", gone}, {"notConfirmed", notConfirmed}};
}

Result<nlohmann::json> resumeNtpClients(ProcessKernel& kernel, const std::vector<Victim>& clients,
                                        std::chrono::milliseconds wait) {
  ResumedVictims r = resumeVictims(kernel, clients, wait);
  for (size_t i : r.stillStopped) {
    r.errors.push_back("NTP client pid " + std::to_string(clients[i].pid) + " (" + clients[i].comm +
                       ") is still stopped after SIGCONT");
  }
  if (!r.errors.empty()) {
    std::string all;
    for (const auto& e : r.errors) all += (all.empty() ? "" : "; ") + e;
    return Error(ErrorCode::kKernel, "resuming NTP clients: " + all);
  }
  const auto entries = [&](const std::vector<size_t>& indexes) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i : indexes) out.push_back(entry(clients[i]));
    return out;
  };
  return nlohmann::json{
      {"resumed", entries(r.resumed)}, {"gone", entries(r.gone)}, {"pidReused", entries(r.reused)}};
}

std::vector<std::string> ntpClientsStillStopped(ProcessKernel& kernel,
                                                const std::vector<Victim>& clients) {
  std::vector<std::string> out;
  for (const Victim& v : clients) {
    auto state = victimStateLetter(kernel, v);
    if (state && isStoppedState(*state)) {
      out.push_back("NTP client pid " + std::to_string(v.pid) + " (" + v.comm +
                    ") is still stopped (state " + std::string(1, *state) + ")");
    }
  }
  return out;
}

}  // namespace chaosd
