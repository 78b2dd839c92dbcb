// `chaosctl recover` and `chaosctl faults`: the journal seen from the command line.
#include <iostream>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/engine/Recovery.h"
#include "reports/ReportJson.h"

namespace chaosd::cli {
namespace {

nlohmann::json faultJson(const FaultRecord& f, const std::string& owner) {
  return {{"id", f.faultId},
          {"run", f.runId},
          {"step", f.step},
          {"type", f.faultType},
          {"target", f.target},
          {"state", std::string(faultStateName(f.state))},
          {"since", isoTime(f.appliedAt.value_or(f.intentAt))},
          {"deadline", f.deadline ? nlohmann::json(isoTime(*f.deadline)) : nlohmann::json(nullptr)},
          {"owner", owner},
          {"error", f.error}};
}

// The journal as it is: reading or recovering never creates one (nor its directory).
Result<FaultJournal> openExisting(const std::string& stateDir) {
  return openJournal(stateDir + "/journal.db", JournalOpen::kExisting);
}

bool noJournal(const Result<FaultJournal>& journal) {
  return !journal && journal.error().code() == ErrorCode::kNotFound;
}

}  // namespace

int faultsCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl faults options");
  CommonOptions common;
  std::string stateDir;
  addStateDirOption(desc, stateDir);
  addCommonOptions(desc, common);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl faults [--state-dir DIR]", desc, {}, args, vm, code)) return code;
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto journal = openExisting(stateDir);
  if (noJournal(journal)) {
    // Nothing was ever applied with this state directory.
    std::cout << (common.json() ? "[]" : "no faults held (" + journal.error().message() + ")")
              << "\n";
    return kExitOk;
  }
  if (!journal) {
    std::cerr << "chaosctl faults: " << journal.error().describe() << "\n";
    return kExitRuntimeError;
  }
  // Held (intent, applied) and those whose revert failed: all may still be on the machine.
  auto held = journal->unreverted();
  if (!held) {
    std::cerr << "chaosctl faults: " << held.error().describe() << "\n";
    return kExitRuntimeError;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : *held) {
    std::string owner = "unknown";
    if (auto run = journal->run(f.runId)) {
      bool alive = journalOwnerAlive(*run);
      owner = "pid " + std::to_string(run->ownerPid) + (alive ? " (running)" : " (gone)");
    }
    out.push_back(faultJson(f, owner));
  }
  if (common.json()) {
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (out.empty()) {
    std::cout << "no faults held\n";
    return kExitOk;
  }
  for (const auto& f : out) {
    std::cout << f["id"].get<std::string>() << "  " << f["type"].get<std::string>() << "  "
              << f["target"].get<std::string>() << "  " << f["state"].get<std::string>()
              << "  since " << f["since"].get<std::string>() << "  deadline "
              << (f["deadline"].is_null() ? "-" : f["deadline"].get<std::string>()) << "  owner "
              << f["owner"].get<std::string>() << "\n";
    if (!f["error"].get<std::string>().empty()) {
      std::cout << "    revert failed: " << f["error"].get<std::string>()
                << " (run chaosctl recover)\n";
    }
  }
  return kExitOk;
}

int recoverCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl recover options");
  CommonOptions common;
  std::string stateDir;
  std::string run;
  bool force = false;
  addStateDirOption(desc, stateDir);
  desc.add_options()("run", po::value(&run), "only this run's faults")(
      "force", po::bool_switch(&force),
      "also revert faults whose owner is still running (it will find them gone)");
  addCommonOptions(desc, common);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl recover [--run ID] [--force] [--state-dir DIR]", desc, {}, args, vm,
                 code)) {
    return code;
  }
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto journal = openExisting(stateDir);
  if (noJournal(journal)) {
    if (common.json()) {
      std::cout << R"({"reverted": [], "failed": [], "ownerAlive": []})"
                << "\n";
    } else {
      std::cout << "nothing to recover (" << journal.error().message() << ")\n";
    }
    return kExitOk;
  }
  if (!journal) {
    std::cerr << "chaosctl recover: " << journal.error().describe() << "\n";
    return kExitRuntimeError;
  }
  RecoveryFilter filter;
  filter.runId = run;
  filter.force = force;
  auto report = recoverAll(*journal, builtinRegistry(), filter);
  if (!report) {
    std::cerr << "chaosctl recover: " << report.error().describe() << "\n";
    return kExitRuntimeError;
  }
  nlohmann::json out{{"reverted", nlohmann::json::array()},
                     {"failed", nlohmann::json::array()},
                     {"ownerAlive", nlohmann::json::array()}};
  for (const auto& o : report->outcomes) {
    if (o.reverted) {
      out["reverted"].push_back(faultJson(o.fault, ""));
    } else {
      auto j = faultJson(o.fault, "");
      j["error"] = o.error;
      out["failed"].push_back(j);
    }
  }
  for (const auto& f : report->ownerAlive) out["ownerAlive"].push_back(faultJson(f, "running"));
  if (common.json()) {
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& f : out["reverted"]) {
      std::cout << "reverted " << f["id"].get<std::string>() << " (" << f["type"].get<std::string>()
                << " " << f["target"].get<std::string>() << ")\n";
    }
    for (const auto& f : out["failed"]) {
      std::cout << "FAILED   " << f["id"].get<std::string>() << ": "
                << f["error"].get<std::string>() << "\n";
    }
    for (const auto& f : out["ownerAlive"]) {
      std::cout << "left     " << f["id"].get<std::string>()
                << ": its owner is still running (use --force to revert anyway)\n";
    }
    if (report->outcomes.empty() && report->ownerAlive.empty()) std::cout << "nothing to recover\n";
  }
  return report->clean() ? kExitOk : kExitLeftovers;
}

}  // namespace chaosd::cli
