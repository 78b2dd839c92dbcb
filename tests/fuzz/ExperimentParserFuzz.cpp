// libFuzzer target for the experiment parser: arbitrary bytes in, diagnostics out.
// parseExperimentText promises never to throw and never to crash on hostile input, so
// nothing here catches: an exception escaping is a finding (libFuzzer reports it as a crash).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "experiments/parser/ExperimentParser.h"
#include "injectors/FaultRegistry.h"

namespace {

// Built once: registering the builtin faults per input would dominate the run time.
const chaosd::FaultRegistry& registry() {
  static const chaosd::FaultRegistry kRegistry = [] {
    chaosd::FaultRegistry r;
    chaosd::registerBuiltinFaults(r);
    return r;
  }();
  return kRegistry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chaosd::ParseOptions options;
  options.registry = &registry();
  // Exercise the variable substitution path too; fixed so a crash input replays the same way.
  options.vars["api_url"] = "http://127.0.0.1:8080/health";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const chaosd::ParseResult result = chaosd::parseExperimentText(text, "fuzz.yaml", options);
  // The result's invariant: an experiment exactly when there are no diagnostics.
  if (result.ok() != result.experiment.has_value()) __builtin_trap();
  for (const chaosd::Diagnostic& d : result.diagnostics) {
    if (d.str().empty()) __builtin_trap();
  }
  return 0;
}

#ifdef CHAOSD_FUZZ_REPLAY_MAIN
// Replay driver (the fuzz_corpus_replay test): feeds every regular file under the given files
// and directories to the entry point once. A crash, an escaping exception or a sanitizer
// report fails the test; the file being run is printed first so the culprit is named.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace {

// A hang must name its input and fail fast, as libFuzzer's -timeout=5 would, rather than wait
// for ctest's timeout with the culprit unnamed.
constexpr unsigned kPerFileTimeoutSeconds = 10;
char currentFile[4096] = "";  // NOLINT: read by the signal handler

extern "C" void onAlarm(int /*sig*/) {
  constexpr char kMsg[] = "replay: TIMEOUT: no answer within 10 s for ";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  (void)!write(STDERR_FILENO, currentFile, std::strlen(currentFile));
  (void)!write(STDERR_FILENO, "\n", 1);
  _exit(70);
}

int replayFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return 1;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay %s (%zu bytes)\n", file.c_str(), bytes.size());
  std::snprintf(currentFile, sizeof currentFile, "%s", file.c_str());
  alarm(kPerFileTimeoutSeconds);
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  alarm(0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::signal(SIGALRM, onAlarm);
  int failures = 0;
  size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path root(argv[i]);
    std::error_code ec;
    if (fs::is_regular_file(root, ec)) {
      failures += replayFile(root);
      ++count;
      continue;
    }
    if (!fs::is_directory(root, ec)) continue;  // an optional folder that does not exist yet
    for (const auto& entry : fs::recursive_directory_iterator(root, ec)) {
      if (!entry.is_regular_file()) continue;
      failures += replayFile(entry.path());
      ++count;
    }
  }
  std::fprintf(stderr, "replayed %zu files, %d unreadable\n", count, failures);
  return failures == 0 && count > 0 ? 0 : 1;
}
#endif  // CHAOSD_FUZZ_REPLAY_MAIN
