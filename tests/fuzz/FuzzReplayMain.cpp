// Replay driver for builds without libFuzzer (CHAOSD_FUZZ off): linked with one fuzz target's
// file, it feeds every regular file under the given files and directories to its
// LLVMFuzzerTestOneInput once (the FuzzCorpusReplay tests). A crash, an escaping exception or a
// sanitizer report fails the test; the file being run is printed first so the culprit is named.
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

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
