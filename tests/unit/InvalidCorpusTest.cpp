// The bad-config suite: every tests/data/invalid/NAME.yaml is an experiment with deliberate
// mistakes, and NAME.expected holds the exact diagnostics (one per line, in file order) the
// parser must report for it. Each case is checked twice: through parseExperimentFile, and
// through the real `chaosctl validate`, which must exit 2 and print the same lines on stderr.
// Every tests/data/valid/*.yaml must validate (exit 0); both suites are instantiated under the
// InvalidCorpus prefix so one filter runs them together.
//
// Paths in .expected are relative to the repository root, so the fixture runs from there.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/parser/ExperimentParser.h"
#include "injectors/FaultRegistry.h"
#include "tests/support/BuiltinFaults.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere in C++

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::builtinFaults;

constexpr size_t kMinimumCases = 40;
constexpr auto kChildTimeout = std::chrono::seconds(20);  // a hang fails the case, not the run

// The *.yaml stems of a data folder under the source tree, sorted.
std::vector<std::string> casesIn(const std::string& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(CHAOSD_SOURCE_DIR) / folder, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      names.push_back(entry.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> readLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string joinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

struct ChildResult {
  int exitCode = -1;  // -1 when it did not exit normally
  int signal = 0;     // the signal that killed it, if one did
  bool timedOut = false;
  std::string output;  // stderr of chaosctl, or the diagnostics of parseInChild
};

// Reads fd until EOF or the deadline (then kills pid), and reaps pid.
void collect(int fd, pid_t pid, ChildResult& result) {
  auto deadline = std::chrono::steady_clock::now() + kChildTimeout;
  std::array<char, 4096> buf{};
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timedOut = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready <= 0) continue;  // EINTR or the deadline; the check above ends it
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf.data(), static_cast<size_t>(n));
  }
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

// Parses the file in a forked child, so that a parser crash fails one case and not the whole
// run. The child writes one diagnostic per line and exits 0 when the file was refused, 1 when
// it was accepted.
ChildResult parseInChild(const std::string& yaml) {
  ChildResult result;
  std::array<int, 2> fds{-1, -1};
  if (pipe2(fds.data(), O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }
  pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  if (pid == 0) {
    close(fds[0]);
    ParseOptions options;
    options.registry = &builtinFaults();
    ParseResult parsed = parseExperimentFile(yaml, options);
    std::string text;
    for (const auto& d : parsed.diagnostics) text += d.str() + "\n";
    bool refused = !parsed.ok() && !parsed.experiment.has_value();
    for (size_t off = 0; off < text.size();) {
      ssize_t n = write(fds[1], text.data() + off, text.size() - off);
      if (n <= 0) _exit(3);
      off += static_cast<size_t>(n);
    }
    _exit(refused ? 0 : 1);
  }
  close(fds[1]);
  collect(fds[0], pid, result);
  return result;
}

// Runs CHAOSCTL_PATH with args (stdin and stdout on /dev/null) and collects stderr.
ChildResult runChaosctl(const std::vector<std::string>& args) {
  ChildResult result;
  std::array<int, 2> fds{-1, -1};
  if (pipe2(fds.data(), O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }
  std::vector<std::string> argvText{CHAOSCTL_PATH};
  argvText.insert(argvText.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argvText) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    ADD_FAILURE() << "posix_spawn " << CHAOSCTL_PATH << ": " << std::strerror(rc);
    return result;
  }

  collect(fds[0], pid, result);
  return result;
}

// gtest names allow letters, digits and '_'.
std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  return name;
}

// Runs each test from the repository root (the base of the paths in .expected files).
class RepoRootTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    previous_ = fs::current_path();
    fs::current_path(CHAOSD_SOURCE_DIR);
  }
  void TearDown() override { fs::current_path(previous_); }

 private:
  fs::path previous_;
};

class InvalidCorpusTest : public RepoRootTest {};

TEST_P(InvalidCorpusTest, ParserReportsExactlyTheExpectedDiagnostics) {
  const std::string yaml = "tests/data/invalid/" + GetParam() + ".yaml";
  const fs::path expectedPath = "tests/data/invalid/" + GetParam() + ".expected";
  ASSERT_TRUE(fs::exists(expectedPath)) << expectedPath << " is missing";
  std::vector<std::string> expected = readLines(expectedPath);
  ASSERT_FALSE(expected.empty()) << expectedPath << " lists no diagnostic";

  ChildResult r = parseInChild(yaml);
  ASSERT_FALSE(r.timedOut) << "parsing " << yaml << " hung";
  ASSERT_EQ(r.signal, 0) << "parsing " << yaml << " crashed with signal " << r.signal;
  ASSERT_EQ(r.exitCode, 0) << "parsing " << yaml << " accepted the file or failed: " << r.output;
  EXPECT_EQ(r.output, joinLines(expected)) << "for " << yaml;
}

TEST_P(InvalidCorpusTest, ChaosctlValidateExitsTwoAndPrintsTheDiagnostics) {
  const std::string yaml = "tests/data/invalid/" + GetParam() + ".yaml";
  std::vector<std::string> expected = readLines("tests/data/invalid/" + GetParam() + ".expected");
  ChildResult r = runChaosctl({"validate", yaml});
  ASSERT_FALSE(r.timedOut) << "chaosctl validate " << yaml << " hung";
  ASSERT_EQ(r.signal, 0) << "chaosctl validate " << yaml << " was killed by signal " << r.signal
                         << "; stderr:\n"
                         << r.output;
  EXPECT_EQ(r.exitCode, 2) << "stderr:\n" << r.output;
  for (const auto& line : expected) {
    EXPECT_NE(r.output.find(line + "\n"), std::string::npos)
        << "missing from stderr: " << line << "\nstderr:\n"
        << r.output;
  }
}

INSTANTIATE_TEST_SUITE_P(InvalidCorpus, InvalidCorpusTest,
                         ::testing::ValuesIn(casesIn("tests/data/invalid")), testName);

TEST(InvalidCorpusLayoutTest, HoldsEnoughCases) {
  EXPECT_GE(casesIn("tests/data/invalid").size(), kMinimumCases);
}

TEST(InvalidCorpusLayoutTest, EveryExpectedFileHasItsExperiment) {
  fs::path dir = fs::path(CHAOSD_SOURCE_DIR) / "tests/data/invalid";
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".expected") continue;
    fs::path yaml = entry.path();
    yaml.replace_extension(".yaml");
    EXPECT_TRUE(fs::exists(yaml)) << entry.path() << " has no experiment next to it";
  }
}

class ValidCorpusTest : public RepoRootTest {};

TEST_P(ValidCorpusTest, ParserAcceptsIt) {
  const std::string yaml = "tests/data/valid/" + GetParam() + ".yaml";
  ChildResult r = parseInChild(yaml);
  ASSERT_FALSE(r.timedOut) << "parsing " << yaml << " hung";
  ASSERT_EQ(r.signal, 0) << "parsing " << yaml << " crashed with signal " << r.signal;
  EXPECT_EQ(r.exitCode, 1) << "refused:\n" << r.output;
  EXPECT_EQ(r.output, "");
}

TEST_P(ValidCorpusTest, ChaosctlValidateExitsZero) {
  const std::string yaml = "tests/data/valid/" + GetParam() + ".yaml";
  ChildResult r = runChaosctl({"validate", yaml});
  ASSERT_FALSE(r.timedOut);
  ASSERT_EQ(r.signal, 0) << r.output;
  EXPECT_EQ(r.exitCode, 0) << "stderr:\n" << r.output;
}

INSTANTIATE_TEST_SUITE_P(InvalidCorpus, ValidCorpusTest,
                         ::testing::ValuesIn(casesIn("tests/data/valid")), testName);

}  // namespace
}  // namespace chaosd
