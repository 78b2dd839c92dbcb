#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/app/cli/Cli.h"

// chaosctl as the daemon's client: submit, runs, status, abort, schedule. Each returns the
// process exit code (DESIGN.md 5); --output json prints the API's JSON as it came.
namespace chaosd::cli {

int submitCommand(const std::vector<std::string>& args);
int runsCommand(const std::vector<std::string>& args);
int statusCommand(const std::vector<std::string>& args);
int abortCommand(const std::vector<std::string>& args);
int scheduleCommand(const std::vector<std::string>& args);
// chaosctl console token|tokens|revoke (ConsoleCommand.cpp).
int consoleCommand(const std::vector<std::string>& args);

// The body the daemon's policy check takes for FILE with its variables (nullopt: FILE or a
// variable could not be read; the message is printed).
std::optional<nlohmann::json> policyCheckBody(const std::string& command, const std::string& file,
                                              const VarOptions& varOpts);
// Asks the daemon at SOCKET whether its policy lets this caller submit BODY (POST
// /v1/policy/check) and prints the answer: the grants that allow it, or the rule that refuses
// it with its line (into ANSWER instead, when given). Exit 0 allowed, 5 refused or no answer.
// Nothing runs.
int checkPolicy(const std::string& command, const std::string& socket, const nlohmann::json& body,
                bool asJson, nlohmann::json* answer = nullptr);

}  // namespace chaosd::cli
