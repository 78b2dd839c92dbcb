// file.corrupt on a real started process (python3 reading a real file with read() and mmap):
// the supervisor hands it a corrupted memfd copy while the file's sha256 on disk stays the
// same; writes and other files run as usual; revert restores the real bytes; and through
// chaosctl run, kill -9 of the owner leaves nothing held and the process stopped.
#include <gtest/gtest.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bitset>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "chaosd/base/Sha256.h"
#include "injectors/process/ExecTarget.h"
#include "injectors/syscall/SyscallInjector.h"
#include "injectors/syscall/SyscallSupervisor.h"
#include "tests/support/Shell.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The target: for each go-N file, reads weights.bin with read() into readN and through mmap
// into mmapN, opens it O_RDWR and reads into rdwrN, then says doneN.
constexpr const char* kScript = R"PY(
import mmap, os, sys, time
d = sys.argv[1]
w = os.path.join(d, "weights.bin")
n = 1
while True:
    go = os.path.join(d, "go%d" % n)
    while not os.path.exists(go):
        time.sleep(0.002)
    with open(w, "rb") as f:
        data = f.read()
    with open(w, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        mapped = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)[:] if size else b""
    fd = os.open(w, os.O_RDWR)
    rdwr = os.read(fd, 1 << 20)
    os.close(fd)
    for name, content in (("read", data), ("mmap", mapped), ("rdwr", rdwr)):
        with open(os.path.join(d, "%s%d" % (name, n)), "wb") as out:
            out.write(content)
    open(os.path.join(d, "done%d" % n), "w").close()
    n += 1
)PY";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

size_t differingBits(const std::string& a, const std::string& b) {
  size_t bits = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    bits += std::bitset<8>(static_cast<unsigned char>(a[i] ^ b[i])).count();
  }
  return bits;
}

bool waitFor(const std::string& path, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(2ms);  // the target writes it: poll
  }
  return false;
}

class FileCorruptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/chaosd-corrupt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::mt19937 rng(11);
    weights_.resize(200000);
    for (auto& c : weights_) c = static_cast<char>(rng());
    std::ofstream(dir_ + "/weights.bin", std::ios::binary) << weights_;
    diskSha_ = sha256Hex(weights_);
    ExecSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", kScript, dir_};
    ExecOptions options;
    for (const auto& name : fileCorruptSyscalls()) {
      options.notifySyscalls.push_back(seccomp_syscall_resolve_name(name.c_str()));
    }
    auto started = startExec(spec, dir_ + "/target.log", nullptr, options);
    ASSERT_TRUE(started.ok()) << started.error().describe();
    pid_ = started->pid;
    undo_ = execUndo(*started, 2000ms);
    supervisor_ = std::make_unique<SyscallSupervisor>(started->pid, started->startTime,
                                                      std::move(started->listener));
    supervisor_->setFiltered({options.notifySyscalls.begin(), options.notifySyscalls.end()});
    supervisors_->add(pid_, *supervisor_);
    target_.name = "server";
    target_.kind = TargetKind::kProcess;
    target_.process.pid = pid_;
  }
  void TearDown() override {
    if (pid_ > 0) (void)stopExec(undo_);
    if (supervisor_) supervisors_->remove(pid_, *supervisor_);
    supervisor_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Lets the target read once more; the three views it got.
  struct Views {
    std::string read, mmap, rdwr;
  };
  Views round() {
    const std::string n = std::to_string(++round_);
    std::ofstream(dir_ + "/go" + n) << "go";
    EXPECT_TRUE(waitFor(dir_ + "/done" + n, 10s)) << slurp(dir_ + "/target.log");
    return {slurp(dir_ + "/read" + n), slurp(dir_ + "/mmap" + n), slurp(dir_ + "/rdwr" + n)};
  }

  nlohmann::json applyAndRevertAround(const nlohmann::json& args, Views& during) {
    SyscallInjector injector(supervisors_);
    FaultRequest r;
    r.runId = "t";
    r.faultId = "f-corrupt";
    r.stepName = "bad-weights";
    r.faultType = "file.corrupt";
    r.target = &target_;
    r.args = args;
    r.duration = 10s;
    auto prepared = injector.prepare(r);
    EXPECT_TRUE(prepared.ok()) << prepared.error().describe();
    if (!prepared.ok()) return {};
    EXPECT_TRUE(injector.apply(r.faultId, prepared->undo).ok());
    during = round();
    auto observed = injector.revert(r.faultId, prepared->undo);
    EXPECT_TRUE(observed.ok());
    return observed.ok() ? *observed : nlohmann::json();
  }

  std::string dir_;
  std::string weights_;
  std::string diskSha_;
  pid_t pid_ = 0;
  int round_ = 0;
  nlohmann::json undo_;
  std::shared_ptr<SupervisorRegistry> supervisors_ = std::make_shared<SupervisorRegistry>();
  std::unique_ptr<SyscallSupervisor> supervisor_;
  TargetSpec target_;
};

TEST_F(FileCorruptTest, FlippedBitsAreReadAndMappedWhileTheFileOnDiskStaysIntact) {
  const Views before = round();
  EXPECT_EQ(before.read, weights_) << "no fault: the real bytes";
  Views during;
  const auto observed = applyAndRevertAround({{"path", dir_ + "/*.bin"},
                                              {"mode", "flip"},
                                              {"flips", 16},
                                              {"seed", 5},
                                              {"maxSize", 1 << 30},
                                              {"probability", 1.0}},
                                             during);
  ASSERT_EQ(during.read.size(), weights_.size());
  EXPECT_EQ(differingBits(during.read, weights_), 16u);
  EXPECT_EQ(during.mmap, during.read) << "mmap of the handed fd maps the same corrupted copy";
  EXPECT_EQ(during.rdwr, weights_.substr(0, during.rdwr.size())) << "an O_RDWR open runs as usual";
  EXPECT_EQ(sha256Hex(slurp(dir_ + "/weights.bin")), diskSha_);
  EXPECT_EQ(observed["corrupted"], 2) << observed.dump();
  EXPECT_EQ(observed["notReadOnly"], 1) << observed.dump();
  EXPECT_EQ(observed["copyFailed"], 0) << observed.dump();

  const Views after = round();
  EXPECT_EQ(after.read, weights_) << "after the revert: the real bytes again";
  EXPECT_EQ(after.mmap, weights_);
}

TEST_F(FileCorruptTest, TruncationAndAZeroedRangeAreWhatTheProcessSees) {
  Views cut;
  applyAndRevertAround({{"path", dir_ + "/weights.bin"},
                        {"mode", "truncate"},
                        {"size", 4096},
                        {"maxSize", 1 << 30},
                        {"probability", 1.0}},
                       cut);
  EXPECT_EQ(cut.read, weights_.substr(0, 4096));
  EXPECT_EQ(cut.mmap, weights_.substr(0, 4096)) << "fstat shows the copy's size";
  Views zeroed;
  applyAndRevertAround({{"path", dir_ + "/weights.bin"},
                        {"mode", "zero"},
                        {"offset", 100},
                        {"length", 1000},
                        {"maxSize", 1 << 30},
                        {"probability", 1.0}},
                       zeroed);
  ASSERT_EQ(zeroed.read.size(), weights_.size());
  EXPECT_EQ(zeroed.read.substr(100, 1000), std::string(1000, '\0'));
  EXPECT_EQ(zeroed.read.substr(1100), weights_.substr(1100));
  EXPECT_EQ(sha256Hex(slurp(dir_ + "/weights.bin")), diskSha_);
}

TEST_F(FileCorruptTest, AFileAboveMaxSizeIsLetThrough) {
  Views during;
  const auto observed = applyAndRevertAround({{"path", dir_ + "/*.bin"},
                                              {"mode", "truncate"},
                                              {"size", 1},
                                              {"maxSize", 1000},
                                              {"probability", 1.0}},
                                             during);
  EXPECT_EQ(during.read, weights_);
  EXPECT_EQ(observed["corrupted"], 0) << observed.dump();
  EXPECT_EQ(observed["copyFailed"], 2) << observed.dump();
}

// Through chaosctl run: the fault held for a minute, chaosctl killed with SIGKILL: the guardian
// reverts (nothing left in the journal) and stops the started process; the file is intact.
TEST(FileCorruptRunTest, KillMinusNineOfTheOwnerLeavesNothingHeld) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/chaosd-corrupt-run-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  std::string weights(50000, 'w');
  std::ofstream(root + "/weights.bin", std::ios::binary) << weights;
  const std::string sha = sha256Hex(weights);
  const std::string reader = root + "/reader.py";
  // Reads the weights every 20 ms and records whether what it read was intact.
  std::ofstream(reader) << "import sys, time\n"
                           "while True:\n"
                           "    data = open(sys.argv[1], 'rb').read()\n"
                           "    open(sys.argv[2], 'w').write('ok' if data == b'w' * 50000 else "
                           "'corrupt %d' % len(data))\n"
                           "    time.sleep(0.02)\n";
  std::ofstream(root + "/exp.yaml")
      << "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: corrupt-kill}\n"
         "targets: {server: {exec: {argv: [/usr/bin/python3, "
      << reader << ", " << root << "/weights.bin, " << root
      << "/seen]}}}\n"
         "steadyState:\n  baseline: {duration: 200ms}\n  probes: []\n"
         "method:\n  - {name: bad-weights, fault: file.corrupt, target: server, duration: 60s,"
         " args: {path: \""
      << root << "/*.bin\", mode: truncate, size: 10}}\n"
      << "report: {dir: " << root << "/reports}\n";
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::execl(CHAOSCTL_PATH, CHAOSCTL_PATH, "run", "--state-dir", (root + "/state").c_str(),
            (root + "/exp.yaml").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the process reads the corrupted copy.
  bool corrupted = false;
  const auto deadline = Clock::now() + 20s;
  while (!corrupted && Clock::now() < deadline) {
    corrupted = slurp(root + "/seen") == "corrupt 10";
    if (!corrupted) std::this_thread::sleep_for(5ms);  // the target writes it: poll
  }
  EXPECT_TRUE(corrupted) << "the started process never saw the truncated copy";
  // The reader's pid, from its command line.
  pid_t reader_pid = -1;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string cmd = slurp(e.path().string() + "/cmdline");
    if (cmd.find(reader) != std::string::npos) reader_pid = std::stoi(e.path().filename());
  }
  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  // The guardian empties the journal and stops the reader.
  bool clean = false;
  const auto cleanBy = Clock::now() + 10s;
  std::string held;
  while (!clean && Clock::now() < cleanBy) {
    int st = -1;
    held = testing::runCommand(std::string(CHAOSCTL_PATH) + " faults --output json --state-dir " +
                                   root + "/state 2>/dev/null",
                               &st);
    const auto j = nlohmann::json::parse(held, nullptr, false);
    const bool readerGone =
        reader_pid <= 0 || ::kill(reader_pid, 0) != 0 ||
        slurp("/proc/" + std::to_string(reader_pid) + "/stat").find(") Z") != std::string::npos;
    clean = st == 0 && j.is_array() && j.empty() && readerGone;
    if (!clean) std::this_thread::sleep_for(10ms);  // another process acts: poll
  }
  EXPECT_TRUE(clean) << "journal: " << held;
  EXPECT_GT(reader_pid, 0);
  EXPECT_EQ(sha256Hex(slurp(root + "/weights.bin")), sha);
  testing::runCommand(std::string(CHAOSCTL_PATH) + " recover --force --state-dir " + root +
                      "/state >/dev/null 2>&1");
  fs::remove_all(root);
}

}  // namespace
}  // namespace chaosd
