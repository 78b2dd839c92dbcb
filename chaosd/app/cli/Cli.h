#pragma once

#include <boost/program_options.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "experiments/parser/ExperimentParser.h"
#include "injectors/FaultRegistry.h"

namespace chaosd::cli {

namespace po = boost::program_options;

// chaosctl's entry: dispatches to a subcommand; returns the process exit code.
int runChaosctl(int argc, char** argv);

// Options every subcommand takes.
struct CommonOptions {
  std::string output = "text";  // text | json
  std::string logLevel = "info";
  std::string logFormat = "text";
  bool json() const { return output == "json"; }
};
void addCommonOptions(po::options_description& desc, CommonOptions& common);
// Validates --output and configures logging. Prints the problem and returns false if bad.
bool applyCommonOptions(const CommonOptions& common);

// --var NAME=VALUE / --var-file FILE into a map; later ones override earlier ones.
struct VarOptions {
  std::vector<std::string> vars;
  std::vector<std::string> varFiles;
};
void addVarOptions(po::options_description& desc, VarOptions& vars);
Result<std::map<std::string, std::string>> collectVars(const VarOptions& vars);

// The fault types this build knows.
const FaultRegistry& builtinRegistry();

// Reads FILE with the --var values, against the builtin fault types. On a problem it prints it
// (a bad --var, or every diagnostic of the file) to stderr and returns nothing: the caller
// exits kExitInvalid, having done nothing.
std::optional<ParseResult> loadExperiment(std::string_view command, const std::string& file,
                                          const VarOptions& varOpts);

// Parses a subcommand's arguments; prints usage on --help (returns 0 in `exitCode`) and the
// error on bad arguments (returns 2). Returns true when the command should run.
bool parseArgs(const std::string& usage, po::options_description& desc,
               const po::positional_options_description& positional,
               const std::vector<std::string>& args, po::variables_map& vm, int& exitCode);

int validateCommand(const std::vector<std::string>& args);
int planCommand(const std::vector<std::string>& args);
int faultTypesCommand(const std::vector<std::string>& args);
int runCommand(const std::vector<std::string>& args);
int calibrateCommand(const std::vector<std::string>& args);
int faultsCommand(const std::vector<std::string>& args);
int recoverCommand(const std::vector<std::string>& args);
int reportCommand(const std::vector<std::string>& args);
void addStateDirOption(po::options_description& desc, std::string& stateDir);

}  // namespace chaosd::cli
