#include "chaosd/app/cli/Cli.h"

#include <functional>
#include <iostream>

#include "chaosd/app/cli/ClientCommands.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Log.h"
#include "chaosd/engine/Guardian.h"
#include "injectors/FaultRegistry.h"

namespace chaosd::cli {
namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"validate", "check experiment files; exit 0 when all are valid, 2 otherwise",
       validateCommand},
      {"plan", "the dry run: timeline, targets as they resolve now, guardrails; applies nothing",
       planCommand},
      {"run", "run an experiment here, in-process (the CI path): exit code = outcome", runCommand},
      {"calibrate", "A/A test: run N times with no fault; the statistical mode's false alarms",
       calibrateCommand},
      {"faults", "list the faults held now (journal): what, where, since, deadline, owner",
       faultsCommand},
      {"recover", "revert every fault the journal holds whose owner is gone", recoverCommand},
      {"report", "write junit.xml, summary.md and report.html from a run's report.json; --compare",
       reportCommand},
      {"fault-types", "list the fault types and document their arguments", faultTypesCommand},
      {"submit", "hand an experiment to the daemon (chaosd); --wait for its outcome",
       submitCommand},
      {"runs", "list the daemon's runs with their outcomes", runsCommand},
      {"status", "one run's state and live progress, from the daemon; --wait", statusCommand},
      {"abort", "stop a run the daemon is running; its faults are reverted at once", abortCommand},
      {"schedule", "game days on the daemon: schedule add|list|show|delete|pause|resume",
       scheduleCommand},
      {"console", "the daemon's web console: console token [--read-only] | tokens | revoke ID",
       consoleCommand},
  };
  return kCommands;
}

void usage(std::ostream& out) {
  out << "usage: chaosctl <command> [options]\n\n"
         "chaosd's command line: validate, plan and run chaos experiments.\n\ncommands:\n";
  for (const auto& c : commands()) {
    out << "  " << c.name << std::string(14 - std::string(c.name).size(), ' ') << c.summary << "\n";
  }
  out << "\n`chaosctl <command> --help` shows a command's options.\n"
         "Exit codes: 0 ok, 1 deviated, 2 invalid input, 3 aborted, 4 leftovers or rollback "
         "failed, 5 runtime error.\n";
}

}  // namespace

void addCommonOptions(po::options_description& desc, CommonOptions& common) {
  desc.add_options()("output,o", po::value(&common.output)->default_value("text"), "text or json")(
      "log-level", po::value(&common.logLevel)->default_value("info"),
      "trace, debug, info, warn, error, critical, off")(
      "log-format", po::value(&common.logFormat)->default_value("text"), "text or json lines");
}

bool applyCommonOptions(const CommonOptions& common) {
  if (common.output != "text" && common.output != "json") {
    std::cerr << "chaosctl: --output '" << common.output << "' is not text or json\n";
    return false;
  }
  auto format = log::parseFormat(common.logFormat);
  if (!format) {
    std::cerr << "chaosctl: --log-format: " << format.error().message() << "\n";
    return false;
  }
  auto ok = log::setup(*format, common.logLevel);
  if (!ok) {
    std::cerr << "chaosctl: --log-level: " << ok.error().message() << "\n";
    return false;
  }
  return true;
}

void addVarOptions(po::options_description& desc, VarOptions& vars) {
  desc.add_options()("var", po::value(&vars.vars)->composing(),
                     "NAME=VALUE, overrides config: (repeatable)")(
      "var-file", po::value(&vars.varFiles)->composing(),
      "a YAML file of NAME: VALUE pairs (repeatable; --var wins)");
}

Result<std::map<std::string, std::string>> collectVars(const VarOptions& vars) {
  std::map<std::string, std::string> out;
  for (const auto& file : vars.varFiles) {
    auto m = readVarFile(file);
    if (!m) return std::move(m).error();
    for (auto& [k, v] : *m) out[k] = v;
  }
  for (const auto& kv : vars.vars) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(ErrorCode::kInvalid, "--var '" + kv + "' is not NAME=VALUE");
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

const FaultRegistry& builtinRegistry() {
  static const FaultRegistry kRegistry = [] {
    FaultRegistry r;
    registerBuiltinFaults(r);
    return r;
  }();
  return kRegistry;
}

std::optional<ParseResult> loadExperiment(std::string_view command, const std::string& file,
                                          const VarOptions& varOpts) {
  auto vars = collectVars(varOpts);
  if (!vars) {
    std::cerr << "chaosctl " << command << ": " << vars.error().describe() << "\n";
    return std::nullopt;
  }
  ParseOptions options;
  options.vars = *vars;
  options.registry = &builtinRegistry();
  ParseResult parsed = parseExperimentFile(file, options);
  if (!parsed.ok()) {
    for (const auto& d : parsed.diagnostics) std::cerr << d.str() << "\n";
    return std::nullopt;
  }
  return parsed;
}

bool parseArgs(const std::string& usageLine, po::options_description& desc,
               const po::positional_options_description& positional,
               const std::vector<std::string>& args, po::variables_map& vm, int& exitCode) {
  desc.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usageLine << "\n\n" << desc << "\n";
      exitCode = kExitOk;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "chaosctl: " << e.what() << "\nusage: " << usageLine << "\n";
    exitCode = kExitInvalid;
    return false;
  }
  return true;
}

int runChaosctl(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? kExitInvalid : kExitOk;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "chaosctl " << CHAOSD_VERSION << "\n";
    return kExitOk;
  }
  if (args[0] == kGuardianSubcommand) return runGuardian(argc, argv);
  for (const auto& c : commands()) {
    if (args[0] == c.name) {
      try {
        return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
      } catch (const std::exception& e) {
        std::cerr << "chaosctl " << c.name << ": internal error: " << e.what() << "\n";
        return kExitRuntimeError;
      }
    }
  }
  std::cerr << "chaosctl: unknown command '" << args[0] << "'\n\n";
  usage(std::cerr);
  return kExitInvalid;
}

}  // namespace chaosd::cli
