#include "chaosd/app/cli/Cli.h"

int main(int argc, char** argv) { return chaosd::cli::runChaosctl(argc, argv); }
