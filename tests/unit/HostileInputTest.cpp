// Hostile experiment files against the real CLI: `chaosctl validate FILE` must refuse each one
// with exit code 2 and a diagnostic that names the file, quickly, and must never crash or hang.
// The inputs are generated in a temp dir (nothing large is checked in).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;  // NOLINT: POSIX declares it nowhere in C++

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeBudget = std::chrono::seconds(2);  // per file, the whole process
constexpr auto kKillAfter = std::chrono::seconds(10);  // a hang fails the test, not the suite
constexpr size_t kStderrCap = 1 << 20;                 // keep at most this much of stderr

// A small experiment the parser accepts; hostile variants below break one thing in it, so a
// rejection is known to come from that one thing.
constexpr std::string_view kValidExperiment =
    "apiVersion: chaosd/v1\n"
    "kind: Experiment\n"
    "metadata:\n"
    "  name: hostile-base\n"
    "  labels: {team: sre}\n"
    "config:\n"
    "  url: http://127.0.0.1:8080/health\n"
    "steadyState:\n"
    "  probes:\n"
    "    - name: health\n"
    "      http: {url: \"${url}\"}\n"
    "      every: 250ms\n"
    "      tolerance: {status: 200}\n"
    "method:\n"
    "  - name: wait\n"
    "    pause: 1s\n";

struct RunResult {
  bool exited = false;
  int exitCode = -1;
  int signal = 0;          // set when the child was killed by a signal
  bool timedOut = false;   // we killed it after kKillAfter
  std::string stderrText;  // at most kStderrCap bytes
  Clock::duration elapsed{};
};

// Runs CHAOSCTL_PATH with args (stdin and stdout on /dev/null), collecting stderr and the wait
// status; kills the child with SIGKILL once kKillAfter has passed.
RunResult runChaosctl(const std::vector<std::string>& args) {
  RunResult result;
  std::array<int, 2> pipeFds{-1, -1};
  if (pipe2(pipeFds.data(), O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }
  std::vector<std::string> argvStrings{CHAOSCTL_PATH};
  argvStrings.insert(argvStrings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argvStrings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 2);  // dup2 clears O_CLOEXEC

  const auto start = Clock::now();
  const auto deadline = start + kKillAfter;
  pid_t pid = -1;
  const int spawnErr = posix_spawn(&pid, CHAOSCTL_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipeFds[1]);
  if (spawnErr != 0) {
    close(pipeFds[0]);
    ADD_FAILURE() << "posix_spawn " << CHAOSCTL_PATH << ": " << std::strerror(spawnErr);
    return result;
  }

  auto remainingMs = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };

  // Drain stderr until EOF (the child exited or closed it) or the deadline.
  std::array<char, 65536> buf{};
  while (true) {
    pollfd pfd{pipeFds[0], POLLIN, 0};
    const int ready = poll(&pfd, 1, remainingMs());
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;  // deadline (or a poll error): fall through to the kill
    const ssize_t n = read(pipeFds[0], buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const size_t room = kStderrCap - std::min(kStderrCap, result.stderrText.size());
    result.stderrText.append(buf.data(), std::min(room, static_cast<size_t>(n)));
  }
  close(pipeFds[0]);

  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << std::strerror(errno);
      return result;
    }
    if (Clock::now() >= deadline) {
      result.timedOut = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  result.elapsed = Clock::now() - start;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exitCode = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

// stderr for a failure message: the first few hundred bytes, non-printable bytes escaped
// (the garbage inputs may be echoed back).
std::string excerpt(const std::string& text, size_t max = 600) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || (c >= 0x20 && c < 0x7F)) {
      out += static_cast<char>(c);
    } else {
      std::array<char, 8> hex{};
      std::snprintf(hex.data(), hex.size(), "\\x%02X", c);
      out += hex.data();
    }
  }
  if (text.size() > max) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "chaosd-hostile-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << "mkdtemp: " << std::strerror(errno);
    dir_ = tmpl;
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write(const std::string& name, std::string_view content) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    EXPECT_TRUE(out.good()) << "writing " << p;
    return p;
  }

  // The contract for every hostile input: exit code 2 (invalid experiment, nothing done), no
  // crash, a diagnostic "FILE:..." first on stderr, and an answer within kTimeBudget.
  static void expectRejected(const std::string& file) {
    const RunResult r = runChaosctl({"validate", file});
    ASSERT_FALSE(r.timedOut) << "chaosctl validate hung on " << file << "; killed after "
                             << seconds(kKillAfter) << " s. stderr:\n"
                             << excerpt(r.stderrText);
    ASSERT_TRUE(r.exited) << "chaosctl validate was killed by signal " << r.signal << " ("
                          << strsignal(r.signal) << ") on " << file << "; stderr:\n"
                          << excerpt(r.stderrText, 4000);
    EXPECT_EQ(r.exitCode, 2) << "stderr:\n" << excerpt(r.stderrText);
    EXPECT_FALSE(r.stderrText.empty()) << "no diagnostic on stderr";
    EXPECT_EQ(r.stderrText.rfind(file + ":", 0), 0U)
        << "stderr should start with \"" << file << ":\"; it is:\n"
        << excerpt(r.stderrText);
    EXPECT_LT(r.elapsed, kTimeBudget) << "took " << seconds(r.elapsed) << " s";
  }

  fs::path dir_;
};

// Replaces the first occurrence of `from` in the valid experiment.
std::string validWith(std::string_view from, std::string_view to) {
  std::string text(kValidExperiment);
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// ---- the baseline: proves the variants below fail for their one defect --------------------

TEST_F(HostileInputTest, BaseExperimentIsValid) {
  const std::string file = write("base.yaml", kValidExperiment);
  const RunResult r = runChaosctl({"validate", file});
  ASSERT_TRUE(r.exited) << "signal " << r.signal << "; stderr:\n" << excerpt(r.stderrText);
  EXPECT_EQ(r.exitCode, 0) << "stderr:\n" << excerpt(r.stderrText);
  EXPECT_LT(r.elapsed, kTimeBudget);
}

// ---- whole-file problems -----------------------------------------------------------------

TEST_F(HostileInputTest, EmptyFile) { expectRejected(write("empty.yaml", "")); }

TEST_F(HostileInputTest, BinaryGarbage) {
  std::mt19937 rng(20240601);  // fixed: the same bytes every run
  std::uniform_int_distribution<int> byte(0, 255);
  std::string text(64 * 1024, '\0');
  for (auto& c : text) c = static_cast<char>(byte(rng));
  for (size_t i = 0; i < text.size(); i += 97) text[i] = '\0';  // NULs for certain
  expectRejected(write("garbage.yaml", text));
}

TEST_F(HostileInputTest, HugeSparseFile) {
  const std::string file = path("sparse-50mb.yaml");
  const int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, 50L * 1024 * 1024), 0) << std::strerror(errno);
  close(fd);
  expectRejected(file);
}

TEST_F(HostileInputTest, HugeYamlText) {
  // 50 MB of plausible YAML: an experiment whose labels go on and on.
  std::string text = validWith("  labels: {team: sre}\n", "  labels:\n");
  const std::string head = text.substr(0, text.find("config:"));
  const std::string tail = text.substr(text.find("config:"));
  std::string labels;
  labels.reserve(51 * 1024 * 1024);
  for (int i = 0; labels.size() < 50UL * 1024 * 1024; ++i) {
    labels += "    label" + std::to_string(i) + ": \"value number " + std::to_string(i) + "\"\n";
  }
  expectRejected(write("huge-text.yaml", head + labels + tail));
}

TEST_F(HostileInputTest, LongSingleLine) {
  // Just under the 1 MiB limit, so it is parsed rather than refused by size: one plain scalar.
  expectRejected(write("long-line.yaml", std::string(1024 * 1024 - 64, 'a') + "\n"));
}

TEST_F(HostileInputTest, LongSingleLineAsValue) {
  const std::string text =
      validWith("hostile-base", std::string(1024 * 1024 - 64 - kValidExperiment.size(), 'a'));
  const RunResult r = runChaosctl({"validate", write("long-value.yaml", text)});
  // A long name may or may not be valid; what matters is that the answer is quick and clean.
  ASSERT_TRUE(r.exited) << "signal " << r.signal;
  EXPECT_TRUE(r.exitCode == 0 || r.exitCode == 2) << r.exitCode;
  EXPECT_LT(r.elapsed, kTimeBudget) << "took " << seconds(r.elapsed) << " s";
}

TEST_F(HostileInputTest, Directory) {
  const std::string dir = path("a-directory.yaml");
  ASSERT_TRUE(fs::create_directory(dir));
  expectRejected(dir);
}

TEST_F(HostileInputTest, NonexistentFile) { expectRejected(path("does-not-exist.yaml")); }

// ---- alias bombs ("billion laughs") -------------------------------------------------------

// Ten levels, each a list of nine aliases to the level below: 9^10 (3.4 billion) leaves.
std::string aliasBomb(const std::string& indent) {
  std::string out = indent + "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int level = 1; level < 10; ++level) {
    const std::string prev = "*l" + std::to_string(level - 1);
    out += indent + "l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) out += (i ? ", " : "") + prev;
    out += "]\n";
  }
  return out;
}

TEST_F(HostileInputTest, AliasBombInLabels) {
  expectRejected(write("bomb-labels.yaml",
                       validWith("  labels: {team: sre}\n", "  labels:\n" + aliasBomb("    "))));
}

TEST_F(HostileInputTest, AliasBombInConfig) {
  expectRejected(write("bomb-config.yaml", validWith("config:\n", "config:\n" + aliasBomb("  "))));
}

TEST_F(HostileInputTest, AliasBombUsedInMethod) {
  // Defined under config, then used where the parser must read it: a step's field.
  std::string text = validWith("config:\n", "config:\n" + aliasBomb("  "));
  text += "  - name: boom\n    pause: *l9\n";
  expectRejected(write("bomb-method.yaml", text));
}

// ---- nesting ------------------------------------------------------------------------------

TEST_F(HostileInputTest, DeepFlowNestingTopLevel) {
  expectRejected(write("deep-flow.yaml", std::string(10000, '[') + std::string(10000, ']')));
}

TEST_F(HostileInputTest, DeepFlowNestingInConfig) {
  const std::string deep = std::string(10000, '[') + "x" + std::string(10000, ']');
  expectRejected(write("deep-flow-config.yaml",
                       validWith("  url: http://127.0.0.1:8080/health\n",
                                 "  url: http://127.0.0.1:8080/health\n  deep: " + deep + "\n")));
}

TEST_F(HostileInputTest, DeepFlowMappings) {
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "{a: ";
  deep += "x" + std::string(10000, '}');
  expectRejected(write("deep-flow-map.yaml",
                       validWith("  labels: {team: sre}\n", "  labels: " + deep + "\n")));
}

TEST_F(HostileInputTest, DeepBlockSequences) {
  // "- - - ... x": block sequences, one level per two columns, 10,000 deep on one line.
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "- ";
  expectRejected(write("deep-block-seq.yaml", "config:\n  deep:\n    " + deep + "x\n"));
}

TEST_F(HostileInputTest, DeepBlockMappings) {
  // Indented block mappings, one more space per level. 10,000 levels would be 50 MB and be
  // refused by size alone; 1,400 levels (~1 MB) is as deep as fits under the size limit.
  std::string text = "apiVersion: chaosd/v1\nkind: Experiment\nconfig:\n";
  for (int level = 1; level <= 1400; ++level) text += std::string(level, ' ') + "a:\n";
  text += std::string(1401, ' ') + "x\n";
  ASSERT_LT(text.size(), 1024U * 1024);
  expectRejected(write("deep-block-map.yaml", text));
}

TEST_F(HostileInputTest, DeepBlockMappingsBeyondSizeLimit) {
  std::string text = "config:\n";
  text.reserve(51 * 1024 * 1024);
  for (int level = 1; level <= 10000; ++level) text += std::string(level, ' ') + "a:\n";
  text += std::string(10001, ' ') + "x\n";
  expectRejected(write("deep-block-map-huge.yaml", text));
}

// ---- syntax and encoding -----------------------------------------------------------------

TEST_F(HostileInputTest, TabIndentation) {
  expectRejected(write("tabs.yaml", validWith("  name: hostile-base\n", "\tname: hostile-base\n")));
}

TEST_F(HostileInputTest, TabIndentationNested) {
  expectRejected(write("tabs-nested.yaml", validWith("    pause: 1s\n", "  \t pause: 1s\n")));
}

TEST_F(HostileInputTest, DuplicateTopLevelKey) {
  expectRejected(write("dup-top.yaml",
                       validWith("kind: Experiment\n", "kind: Experiment\nkind: Experiment\n")));
}

TEST_F(HostileInputTest, DuplicateNestedKey) {
  expectRejected(write("dup-nested.yaml", validWith("  name: hostile-base\n",
                                                    "  name: hostile-base\n  name: other\n")));
}

TEST_F(HostileInputTest, DuplicateFlowKey) {
  expectRejected(write("dup-flow.yaml", validWith("{team: sre}", "{team: sre, team: payments}")));
}

TEST_F(HostileInputTest, InvalidUtf8Sequence) {
  // 0xC3 starts a two-byte sequence; 0x28 '(' is not a continuation byte.
  expectRejected(write("utf8-c328.yaml", validWith("hostile-base",
                                                   "hostile\xC3\x28"
                                                   "base")));
}

TEST_F(HostileInputTest, LoneFFInString) {
  expectRejected(write("utf8-ff.yaml", validWith("{team: sre}", "{team: \"s\xFFre\"}")));
}

TEST_F(HostileInputTest, EncodedSurrogate) {
  // U+D800 encoded as if it were a code point: never valid UTF-8.
  expectRejected(write("utf8-surrogate.yaml", validWith("hostile-base", "hostile\xED\xA0\x80")));
}

TEST_F(HostileInputTest, OverlongEncoding) {
  expectRejected(write("utf8-overlong.yaml", validWith("hostile-base", "hostile\xC0\xAF")));
}

TEST_F(HostileInputTest, NulInsideValue) {
  expectRejected(write("nul.yaml", validWith("hostile-base", std::string("host\0ile", 8))));
}

TEST_F(HostileInputTest, EscapedSurrogateInQuotedString) {
  expectRejected(write("escaped-surrogate.yaml", validWith("{team: sre}", "{team: \"\\uD800\"}")));
}

TEST_F(HostileInputTest, UndefinedAlias) {
  expectRejected(write("undefined-alias.yaml", validWith("{team: sre}", "*nowhere")));
}

// Inputs on which yaml-cpp 0.7 alone loops forever while allocating (jbeder/yaml-cpp#499,
// #938, #1040, and three our fuzzer found). The libyaml gate must answer each quickly.
TEST_F(HostileInputTest, YamlCppEndlessLoopInputs) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"brace-colon.yaml", "{:"},
      {"bracket-colon.yaml", "[:"},
      {"comma.yaml", ",\n"},
      {"comment-brace.yaml", "{# ke\ny{:"},
      {"stray-closer.yaml", validWith("  - name: ", "  - name: ]")},
      {"unclosed-flow.yaml", validWith("{team: sre}", "{team: [sre}")},
      {"flow-after-comment.yaml", "# x: 25%}, y: 3s},\n{name: b, p: [{name: c},\n k: v\n"},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    expectRejected(write(name, text));
  }
}

TEST_F(HostileInputTest, NotAMapping) {
  expectRejected(write("list.yaml", "- apiVersion: chaosd/v1\n- kind: Experiment\n"));
}

}  // namespace
}  // namespace chaosd
