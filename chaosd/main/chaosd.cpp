#include <string>

#include "chaosd/app/daemon/Daemon.h"
#include "chaosd/engine/Guardian.h"

int main(int argc, char** argv) {
  // The guardian of each run is this same binary (/proc/self/exe) with a hidden subcommand.
  if (argc > 1 && std::string(argv[1]) == chaosd::kGuardianSubcommand) {
    return chaosd::runGuardian(argc, argv);
  }
  return chaosd::daemon::runChaosd(argc, argv);
}
