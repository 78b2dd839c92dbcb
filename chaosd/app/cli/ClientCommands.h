#pragma once

#include <string>
#include <vector>

// chaosctl as the daemon's client: submit, runs, status, abort, schedule. Each returns the
// process exit code (DESIGN.md 5); --output json prints the API's JSON as it came.
namespace chaosd::cli {

int submitCommand(const std::vector<std::string>& args);
int runsCommand(const std::vector<std::string>& args);
int statusCommand(const std::vector<std::string>& args);
int abortCommand(const std::vector<std::string>& args);
int scheduleCommand(const std::vector<std::string>& args);

}  // namespace chaosd::cli
