#include "chaosd/app/cli/ClientCommands.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/DaemonClient.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/StartAt.h"

namespace chaosd::cli {
namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* key, const std::string& fallback = "-") {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// Prints an API error (and its diagnostics) and returns the exit code for it.
int failed(const std::string& command, const DaemonResponse& r, bool asJson) {
  if (asJson) {
    std::cout << r.body << (r.body.empty() || r.body.back() != '\n' ? "\n" : "");
  } else {
    std::cerr << "chaosctl " << command << ": " << r.errorMessage() << "\n";
    auto j = r.json();
    if (j.is_object() && j.contains("error") && j["error"].contains("diagnostics")) {
      for (const auto& d : j["error"]["diagnostics"]) std::cerr << d.get<std::string>() << "\n";
    }
  }
  return exitCodeForStatus(r.status);
}

std::optional<DaemonResponse> call(const std::string& command, const DaemonClient& client,
                                   const std::string& method, const std::string& path,
                                   const std::string& body = "") {
  auto r = client.request(method, path, body);
  if (!r) {
    std::cerr << "chaosctl " << command << ": " << r.error().describe() << "\n";
    return std::nullopt;
  }
  return *r;
}

Result<std::string> readText(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error(ErrorCode::kNotFound, "cannot read " + file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// {"experiment": <file's text>, "vars": {...}, "fileName": file} for submit and schedule add.
std::optional<json> experimentBody(const std::string& command, const std::string& file,
                                   const VarOptions& varOpts) {
  auto text = readText(file);
  if (!text) {
    std::cerr << "chaosctl " << command << ": " << text.error().describe() << "\n";
    return std::nullopt;
  }
  auto vars = collectVars(varOpts);
  if (!vars) {
    std::cerr << "chaosctl " << command << ": " << vars.error().describe() << "\n";
    return std::nullopt;
  }
  return json{{"experiment", *text}, {"vars", *vars}, {"fileName", file}};
}

// Who asked for a run: "alice(1001)", "root(0)", "schedule:ID alice(1001)"; "-" for a run
// without a journalled caller (chaosctl run, or from before journal version 4).
std::string callerText(const json& run) {
  if (!run.contains("caller") || !run["caller"].is_object()) return "-";
  const json& c = run["caller"];
  std::string out = c.value("user", "") + "(" + str(c, "uid") + ")";
  const std::string source = c.value("source", "");
  if (source.starts_with("schedule:")) out = source + " " + out;
  return out;
}

void printStatus(const json& run) {
  std::cout << "run " << str(run, "id") << " (" << str(run, "experiment")
            << "): " << str(run, "state");
  if (str(run, "outcome", "") != "") {
    std::cout << ", outcome " << str(run, "outcome") << " (exit " << str(run, "exitCode") << ")";
  }
  std::cout << "\n  started " << str(run, "startedAt") << ", ended " << str(run, "endedAt")
            << ", caller " << callerText(run) << "\n";
  if (run.contains("progress")) {
    const auto& p = run["progress"];
    std::cout << "  phase " << str(p, "phase");
    if (p.contains("phaseSeconds")) {
      std::cout << " (" << str(p, "phaseSeconds") << " s from " << str(p, "phaseStartedAt") << ")";
    }
    std::cout << "\n";
    if (p.contains("aborting")) std::cout << "  aborting: " << str(p, "aborting") << "\n";
    for (const auto& [name, pr] : p["probes"].items()) {
      std::cout << "  probe " << name << ": " << str(pr, "samples") << " samples, "
                << str(pr, "failures") << " failed\n";
    }
  }
  if (run.contains("faults")) {
    for (const auto& f : run["faults"]) {
      std::cout << "  fault " << str(f, "step") << " (" << str(f, "type") << ") " << str(f, "state")
                << ": " << str(f, "target") << "\n";
    }
  }
  if (run.contains("reasons")) {
    for (const auto& r : run["reasons"]) std::cout << "  - " << r.get<std::string>() << "\n";
  }
  if (run.contains("reportDir")) std::cout << "  reports: " << str(run, "reportDir") << "\n";
}

// Polls a run until it ends; prints phase changes (text). Returns the run's last status.
std::optional<json> waitForEnd(const std::string& command, const DaemonClient& client,
                               const std::string& id, bool quiet) {
  std::string lastPhase;
  for (;;) {
    auto r = call(command, client, "GET", "/v1/runs/" + id);
    if (!r) return std::nullopt;
    if (!r->ok()) {
      std::cerr << "chaosctl " << command << ": " << r->errorMessage() << "\n";
      return std::nullopt;
    }
    json run = r->json();
    if (str(run, "state") == "ended") return run;
    if (!quiet && run.contains("progress")) {
      std::string phase = str(run["progress"], "phase");
      if (phase != lastPhase) {
        std::cout << "  phase " << phase << "\n" << std::flush;
        lastPhase = phase;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int exitOfRun(const json& run) {
  if (run.contains("exitCode") && run["exitCode"].is_number_integer()) {
    return run["exitCode"].get<int>();
  }
  return kExitRuntimeError;
}

}  // namespace

std::optional<nlohmann::json> policyCheckBody(const std::string& command, const std::string& file,
                                              const VarOptions& varOpts) {
  return experimentBody(command, file, varOpts);
}

int checkPolicy(const std::string& command, const std::string& socket, const nlohmann::json& body,
                bool asJson, nlohmann::json* answer) {
  DaemonClient client(socket);
  auto c = call(command, client, "POST", "/v1/policy/check", body.dump());
  if (!c) return kExitRuntimeError;
  if (!c->ok()) return failed(command, *c, asJson);
  json d = c->json();
  const bool allowed = d.value("allowed", false);
  if (answer != nullptr) {
    *answer = d;
  } else if (asJson) {
    std::cout << d.dump(2) << "\n";
  } else if (allowed) {
    std::cout << "daemon policy: allowed"
              << (d.contains("grants") && !d["grants"].empty()
                      ? " by " + d["grants"].dump()
                      : std::string(" (") + str(d, "reason") + ")")
              << "\n";
  } else {
    std::cout << "daemon policy: refused: " << str(d, "reason") << "\n";
  }
  return allowed ? kExitOk : kExitRuntimeError;
}

int submitCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl submit options");
  CommonOptions common;
  VarOptions varOpts;
  std::string file;
  std::string socket;
  std::string startAt;
  bool wait = false;
  bool check = false;
  desc.add_options()("file", po::value(&file)->required(), "the experiment file")(
      "wait", po::bool_switch(&wait), "wait for the run to end; exit with its outcome's code")(
      "check", po::bool_switch(&check),
      "only ask whether the daemon's policy lets you submit it (exit 0 yes, 5 no); nothing runs")(
      "start-at", po::value(&startAt),
      "a synchronised start (RFC 3339, e.g. 2026-05-01T10:00:00Z): the method begins at that "
      "instant on the daemon's clock, the baseline runs until then");
  addSocketOption(desc, socket);
  addVarOptions(desc, varOpts);
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl submit [options] FILE", desc, pos, args, vm, code)) return code;
  if (!applyCommonOptions(common)) return kExitInvalid;
  auto body = experimentBody("submit", file, varOpts);
  if (!body) return kExitInvalid;
  if (!startAt.empty()) {
    // Checked here for a clear message; the daemon checks again against its own clock.
    if (auto at = parseStartAt(startAt); !at) {
      std::cerr << "chaosctl submit: --start-at: " << at.error().message() << "\n";
      return kExitInvalid;
    }
    (*body)["startAt"] = startAt;
  }
  DaemonClient client(socket);
  if (check) return checkPolicy("submit", socket, *body, common.json());
  auto r = call("submit", client, "POST", "/v1/runs", body->dump());
  if (!r) return kExitRuntimeError;
  if (!r->ok()) return failed("submit", *r, common.json());
  json accepted = r->json();
  const std::string id = str(accepted, "id");
  if (!wait) {
    if (common.json()) {
      std::cout << accepted.dump(2) << "\n";
    } else {
      std::cout << "submitted run " << id << " (" << str(accepted, "experiment") << ")\n"
                << "follow it with: chaosctl status " << id << "\n";
    }
    return kExitOk;
  }
  if (!common.json()) std::cout << "run " << id << " (" << str(accepted, "experiment") << ")\n";
  auto run = waitForEnd("submit", client, id, common.json());
  if (!run) return kExitRuntimeError;
  if (common.json()) {
    std::cout << run->dump(2) << "\n";
  } else {
    printStatus(*run);
  }
  return exitOfRun(*run);
}

int runsCommand(const std::vector<std::string>& args) {
  po::options_description desc("chaosctl runs options");
  CommonOptions common;
  std::string socket;
  int limit = 20;
  desc.add_options()("limit", po::value(&limit)->default_value(20), "newest N runs (0: all)");
  addSocketOption(desc, socket);
  addCommonOptions(desc, common);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl runs [options]", desc, {}, args, vm, code)) return code;
  if (!applyCommonOptions(common)) return kExitInvalid;
  DaemonClient client(socket);
  auto r = call("runs", client, "GET", "/v1/runs?limit=" + std::to_string(limit));
  if (!r) return kExitRuntimeError;
  if (!r->ok()) return failed("runs", *r, common.json());
  json runs = r->json()["runs"];
  if (common.json()) {
    std::cout << runs.dump(2) << "\n";
    return kExitOk;
  }
  if (runs.empty()) {
    std::cout << "no runs\n";
    return kExitOk;
  }
  std::printf("%-16s  %-24s  %-8s  %-10s  %-14s  %s\n", "RUN", "STARTED", "STATE", "OUTCOME",
              "CALLER", "EXPERIMENT");
  for (const auto& run : runs) {
    std::printf("%-16s  %-24s  %-8s  %-10s  %-14s  %s\n", str(run, "id").c_str(),
                str(run, "startedAt").c_str(), str(run, "state").c_str(),
                str(run, "outcome").c_str(), callerText(run).c_str(),
                str(run, "experiment").c_str());
  }
  return kExitOk;
}

// The options of a command about one run of the daemon: RUN, --wait, the socket and the
// common ones. False (with the exit code) when the command line is not one.
struct RunRefOptions {
  CommonOptions common;
  std::string socket;
  std::string id;
  bool wait = false;
};

bool parseRunRef(const std::string& command, const char* waitHelp,
                 const std::vector<std::string>& args, RunRefOptions& o, int& code) {
  po::options_description desc("chaosctl " + command + " options");
  desc.add_options()("run", po::value(&o.id)->required(), "the run id")(
      "wait", po::bool_switch(&o.wait), waitHelp);
  addSocketOption(desc, o.socket);
  addCommonOptions(desc, o.common);
  po::positional_options_description pos;
  pos.add("run", 1);
  po::variables_map vm;
  code = kExitOk;
  if (!parseArgs("chaosctl " + command + " [options] RUN", desc, pos, args, vm, code)) {
    return false;
  }
  if (applyCommonOptions(o.common)) return true;
  code = kExitInvalid;
  return false;
}

int statusCommand(const std::vector<std::string>& args) {
  RunRefOptions o;
  int code = kExitOk;
  if (!parseRunRef("status", "wait for the run to end; exit with its outcome's code", args, o,
                   code)) {
    return code;
  }
  const CommonOptions& common = o.common;
  const std::string& socket = o.socket;
  const std::string& id = o.id;
  const bool wait = o.wait;
  DaemonClient client(socket);
  json run;
  if (wait) {
    auto ended = waitForEnd("status", client, id, common.json());
    if (!ended) return kExitRuntimeError;
    run = *ended;
  } else {
    auto r = call("status", client, "GET", "/v1/runs/" + id);
    if (!r) return kExitRuntimeError;
    if (!r->ok()) return failed("status", *r, common.json());
    run = r->json();
  }
  if (common.json()) {
    std::cout << run.dump(2) << "\n";
  } else {
    printStatus(run);
  }
  return wait ? exitOfRun(run) : kExitOk;
}

int abortCommand(const std::vector<std::string>& args) {
  RunRefOptions o;
  int code = kExitOk;
  if (!parseRunRef("abort", "wait until the run has reverted and ended", args, o, code)) {
    return code;
  }
  const CommonOptions& common = o.common;
  const std::string& socket = o.socket;
  const std::string& id = o.id;
  const bool wait = o.wait;
  DaemonClient client(socket);
  auto r = call("abort", client, "POST", "/v1/runs/" + id + "/abort");
  if (!r) return kExitRuntimeError;
  if (!r->ok()) return failed("abort", *r, common.json());
  if (wait) {
    auto ended = waitForEnd("abort", client, id, true);
    if (!ended) return kExitRuntimeError;
    if (common.json()) {
      std::cout << ended->dump(2) << "\n";
    } else {
      printStatus(*ended);
    }
    return kExitOk;
  }
  if (common.json()) {
    std::cout << r->body;
  } else {
    std::cout << "aborting run " << id << "; its faults are being reverted\n";
  }
  return kExitOk;
}

int scheduleCommand(const std::vector<std::string>& args) {
  const std::string usageLine =
      "chaosctl schedule add FILE [--cron EXPR] [--timezone TZ] [--window HH:MM-HH:MM] "
      "[--max-runs N] [--var ...]\n"
      "       chaosctl schedule list | show ID | delete ID | pause ID | resume ID";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << "usage: " << usageLine << "\n";
    return args.empty() ? kExitInvalid : kExitOk;
  }
  const std::string action = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  po::options_description desc("chaosctl schedule options");
  CommonOptions common;
  VarOptions varOpts;
  std::string socket;
  std::string operand;
  std::string cron, timezone, window;
  unsigned maxRuns = 0;
  desc.add_options()("operand", po::value(&operand), "FILE (add) or ID");
  if (action == "add") {
    desc.add_options()("cron", po::value(&cron),
                       "5-field cron (default: the file's schedule.cron)")(
        "timezone", po::value(&timezone), "IANA time zone (default: the file's, else UTC)")(
        "window", po::value(&window), "HH:MM-HH:MM: runs start only inside it")(
        "max-runs", po::value(&maxRuns), "stop after N runs");
    addVarOptions(desc, varOpts);
  }
  addSocketOption(desc, socket);
  addCommonOptions(desc, common);
  po::positional_options_description pos;
  pos.add("operand", 1);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs(usageLine, desc, pos, rest, vm, code)) return code;
  if (!applyCommonOptions(common)) return kExitInvalid;
  DaemonClient client(socket);
  const std::string cmd = "schedule " + action;
  std::optional<DaemonResponse> r;
  if (action == "list") {
    r = call(cmd, client, "GET", "/v1/schedules");
  } else if (action == "add") {
    if (operand.empty()) {
      std::cerr << "chaosctl schedule add: the experiment FILE is missing\n";
      return kExitInvalid;
    }
    auto body = experimentBody(cmd, operand, varOpts);
    if (!body) return kExitInvalid;
    if (!cron.empty()) (*body)["cron"] = cron;
    if (!timezone.empty()) (*body)["timezone"] = timezone;
    if (!window.empty()) (*body)["window"] = window;
    if (maxRuns > 0) (*body)["maxRuns"] = maxRuns;
    r = call(cmd, client, "POST", "/v1/schedules", body->dump());
  } else if (action == "show" || action == "delete" || action == "pause" || action == "resume") {
    if (operand.empty()) {
      std::cerr << "chaosctl " << cmd << ": the schedule ID is missing\n";
      return kExitInvalid;
    }
    if (action == "show") r = call(cmd, client, "GET", "/v1/schedules/" + operand);
    if (action == "delete") r = call(cmd, client, "DELETE", "/v1/schedules/" + operand);
    if (action == "pause" || action == "resume") {
      r = call(cmd, client, "POST", "/v1/schedules/" + operand + "/" + action);
    }
  } else {
    std::cerr << "chaosctl schedule: unknown action '" << action << "'\nusage: " << usageLine
              << "\n";
    return kExitInvalid;
  }
  if (!r) return kExitRuntimeError;
  if (!r->ok()) return failed(cmd, *r, common.json());
  json j = r->json();
  if (common.json()) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  auto line = [](const json& s) {
    std::cout << str(s, "id") << "  " << str(s, "name") << "  cron \"" << str(s, "cron") << "\" "
              << str(s, "timezone")
              << (str(s, "window", "") != "" ? " window " + str(s, "window") : "")
              << (s.value("paused", false) ? "  PAUSED" : "") << "  runs " << str(s, "runsStarted")
              << (str(s, "maxRuns", "") != "" ? "/" + str(s, "maxRuns") : "") << "  next "
              << str(s, "nextRunAt") << "\n";
  };
  if (action == "list") {
    if (j["schedules"].empty()) std::cout << "no schedules\n";
    for (const auto& s : j["schedules"]) line(s);
  } else if (action == "delete") {
    std::cout << "deleted schedule " << operand << "\n";
  } else {
    line(j);
  }
  return kExitOk;
}

}  // namespace chaosd::cli
