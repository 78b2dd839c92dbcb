// time.skew on real started processes: python3 started as an exec target through the time
// family's exec hook (libfaketime preloaded, reading a control file of ours), a sibling
// started without it, and the injector moving the first one's clock at apply and back at
// revert while both keep running. Each process prints, every few ms, its CLOCK_REALTIME minus
// CLOCK_MONOTONIC (monotonic is left true), and every 100 ms a child of it prints its own:
// the skew each sees is that difference minus ours, exact to the microseconds between reads.
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "injectors/ExecHook.h"
#include "injectors/FaultRegistry.h"
#include "injectors/process/ExecTarget.h"
#include "injectors/time/TimeRecords.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using chaosd::testing::waitUntil;

// "self MONO_NS DIFF_NS" every 5 ms, "child MONO_NS DIFF_NS" from a child every 100 ms.
// It waits with select, not time.sleep: Python 3.11 sleeps with an absolute
// clock_nanosleep(CLOCK_MONOTONIC), which libfaketime 0.9.10 fails with EINVAL when
// FAKETIME_DONT_FAKE_MONOTONIC is set (docs/faults/time.md).
constexpr const char* kScript = R"PY(
import select, subprocess, sys, time
child = "import time; m = time.monotonic_ns(); print('child', m, time.time_ns() - m, flush=True)"
n = 0
while True:
    m = time.monotonic_ns()
    print("self", m, time.time_ns() - m, flush=True)
    n += 1
    if n % 20 == 0:
        subprocess.run([sys.executable, "-c", child])
    select.select([], [], [], 0.005)
)PY";

int64_t ns(clockid_t clock) {
  timespec t{};
  ::clock_gettime(clock, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Our own CLOCK_REALTIME - CLOCK_MONOTONIC: what an unskewed process prints.
int64_t trueDiff() { return ns(CLOCK_REALTIME) - ns(CLOCK_MONOTONIC); }

struct Reading {
  int64_t mono = 0;
  int64_t skewNs = 0;  // the process's diff minus ours
};

// The newest line of `kind` in the log printed after `since` (monotonic ns).
std::optional<Reading> newest(const std::string& log, const std::string& kind, int64_t since) {
  std::ifstream in(log);
  std::string line;
  std::optional<Reading> out;
  const int64_t ours = trueDiff();
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string k;
    int64_t mono = 0, diff = 0;
    if (!(f >> k >> mono >> diff) || k != kind || mono <= since) continue;
    out = Reading{mono, diff - ours};
  }
  return out;
}

// Waits for a line of `kind` printed after now and returns the skew it shows.
std::optional<int64_t> skewSeen(const std::string& log, const std::string& kind) {
  const int64_t since = ns(CLOCK_MONOTONIC);
  std::optional<Reading> r;
  waitUntil([&] { return (r = newest(log, kind, since)).has_value(); }, 10s);
  if (!r) return std::nullopt;
  return r->skewNs;
}

constexpr int64_t kTolerance = 5'000'000;  // 5 ms

class TimeSkewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaosd-timeskew-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    registerBuiltinFaults(registry_);
    type_ = registry_.find("time.skew");
    ASSERT_NE(type_, nullptr);
    ExecSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", kScript};
    // The skewed one: what the engine does for an exec target a time.skew step aims at.
    ExecOptions options;
    options.runDir = dir_;
    for (const auto& hook : registry_.execHooks()) {
      if (auto c = hook({ExecStep{"time.skew", {{"offset", "-2h"}}}})) {
        c->beforeExec(options);
        contributions_.push_back(std::move(c));
      }
    }
    ASSERT_EQ(contributions_.size(), 1U);
    auto started = startExec(spec, dir_ + "/skewed.log", nullptr, options);
    ASSERT_TRUE(started.ok()) << started.error().describe();
    nlohmann::json observed;
    for (auto& c : contributions_) c->started(*started, observed);
    ASSERT_TRUE(observed["faketime"].contains("controlFile")) << observed.dump();
    controlFile_ = observed["faketime"]["controlFile"];
    skewedUndo_ = execUndo(*started, 2000ms);
    target_.name = "app";
    target_.kind = TargetKind::kProcess;
    target_.process.pid = started->pid;
    // The sibling: the same program, no hook.
    auto sibling = startExec(spec, dir_ + "/sibling.log");
    ASSERT_TRUE(sibling.ok()) << sibling.error().describe();
    siblingUndo_ = execUndo(*sibling, 2000ms);
  }
  void TearDown() override {
    if (!skewedUndo_.is_null()) (void)stopExec(skewedUndo_);
    if (!siblingUndo_.is_null()) (void)stopExec(siblingUndo_);
    contributions_.clear();
    if (!controlFile_.empty()) {
      EXPECT_FALSE(fs::exists(controlFile_)) << "the control file outlived its process";
    }
    fs::remove_all(dir_);
  }

  FaultRequest request(const std::string& id, nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.stepName = id;
    r.faultType = "time.skew";
    r.target = &target_;
    r.args = std::move(args);
    r.duration = 10s;
    return r;
  }
  std::string skewedLog() const { return dir_ + "/skewed.log"; }
  std::string siblingLog() const { return dir_ + "/sibling.log"; }

  std::string dir_;
  FaultRegistry registry_;
  const FaultType* type_ = nullptr;
  std::vector<std::unique_ptr<ExecContribution>> contributions_;
  std::string controlFile_;
  nlohmann::json skewedUndo_;
  nlohmann::json siblingUndo_;
  TargetSpec target_;
};

TEST_F(TimeSkewTest, TheProcessAndItsChildrenSeeTheOffsetItsSiblingDoesNot) {
  ASSERT_TRUE(fs::path(controlFile_).parent_path() == dir_) << controlFile_;
  // Started at the true time: the hook alone moves nothing.
  auto before = skewSeen(skewedLog(), "self");
  ASSERT_TRUE(before.has_value()) << "the target printed nothing";
  EXPECT_LT(std::llabs(*before), kTolerance) << *before;

  auto injector = type_->factory();
  auto prepared = injector->prepare(request("back", {{"offset", "-2h"}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  auto applied = injector->apply("back", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  const int64_t want = -7200LL * 1000000000;
  auto self = skewSeen(skewedLog(), "self");
  auto child = skewSeen(skewedLog(), "child");
  auto sibling = skewSeen(siblingLog(), "self");
  ASSERT_TRUE(self && child && sibling);
  EXPECT_LT(std::llabs(*self - want), kTolerance) << *self;
  EXPECT_LT(std::llabs(*child - want), kTolerance) << "a child inherits it: " << *child;
  EXPECT_LT(std::llabs(*sibling), kTolerance) << "the sibling must see the true time";
  std::printf("[ measured ] skew seen: self %+.3f ms, child %+.3f ms off -2h; sibling %+.3f ms\n",
              (*self - want) / 1e6, (*child - want) / 1e6, *sibling / 1e6);

  auto reverted = injector->revert("back", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  auto after = skewSeen(skewedLog(), "self");
  auto afterChild = skewSeen(skewedLog(), "child");
  ASSERT_TRUE(after && afterChild);
  EXPECT_LT(std::llabs(*after), kTolerance) << *after;
  EXPECT_LT(std::llabs(*afterChild), kTolerance) << *afterChild;
  EXPECT_TRUE(injector->audit(prepared->undo)->empty());
}

TEST_F(TimeSkewTest, OffsetChangesMidRunAndTheGuardianRevertsFromTheRecord) {
  auto injector = type_->factory();
  auto first = injector->prepare(request("ahead", {{"offset", "+30s"}}));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(injector->apply("ahead", first->undo).ok());
  auto seen = skewSeen(skewedLog(), "self");
  ASSERT_TRUE(seen);
  EXPECT_LT(std::llabs(*seen - 30'000'000'000LL), kTolerance) << *seen;
  ASSERT_TRUE(injector->revert("ahead", first->undo).ok());

  auto second = injector->prepare(request("behind", {{"offset", "-1m30s"}}));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(injector->apply("behind", second->undo).ok());
  seen = skewSeen(skewedLog(), "self");
  ASSERT_TRUE(seen);
  EXPECT_LT(std::llabs(*seen + 90'000'000'000LL), kTolerance) << *seen;
  // Another injector with only the record (a guardian after the owner died) reverts it.
  auto guardian = type_->factory();
  ASSERT_TRUE(guardian->revert("behind", second->undo).ok());
  seen = skewSeen(skewedLog(), "self");
  ASSERT_TRUE(seen);
  EXPECT_LT(std::llabs(*seen), kTolerance) << *seen;
  EXPECT_TRUE(guardian->revert("behind", second->undo).ok()) << "a second revert";
}

}  // namespace
}  // namespace chaosd
