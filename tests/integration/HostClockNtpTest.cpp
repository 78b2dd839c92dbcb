// The NTP half of time.skew's host mode on the real kernel, without ever stepping this
// machine's clock: a stand-in client (a child named chronyd, tests/support/NtpStandIn.h) is
// found through /proc, stopped and resumed through pidfds, and the injector's host mode is run
// with the real process table but a clock in memory. Real NTP clients are never signalled: when
// one runs here, the tests that would pause it skip. The clock itself is tested only in the VM
// of scripts/vm-test (TimeHostVmTest.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

#include "experiments/model/Experiment.h"
#include "injectors/time/NtpClients.h"
#include "injectors/time/TimeSkewInjector.h"
#include "tests/support/FakeClockKernel.h"
#include "tests/support/NtpStandIn.h"
#include "tests/support/Wait.h"

namespace chaosd {
namespace {

using namespace std::chrono_literals;
using testing::NtpStandIn;
using testing::waitUntil;

class HostClockNtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(waitUntil([&] { return standIn_.comm() == "chronyd"; }, 5s));
    auto found = findNtpClients(*systemProcessKernel());
    ASSERT_TRUE(found.ok()) << found.error().describe();
    for (const Victim& v : found->running) {
      if (v.pid == standIn_.pid()) {
        self_ = v;
      } else {
        GTEST_SKIP() << "a real NTP client runs here (pid " << v.pid << ", " << v.comm
                     << "): it is never paused by a test";
      }
    }
    ASSERT_EQ(self_.pid, standIn_.pid()) << "the stand-in was not found by its name";
  }

  NtpStandIn standIn_;
  Victim self_;
};

TEST_F(HostClockNtpTest, TheStandInIsFoundStoppedAndResumedThroughPidfds) {
  EXPECT_GT(self_.startTime, 0U);
  auto& kernel = *systemProcessKernel();
  const auto start = std::chrono::steady_clock::now();
  auto paused = pauseNtpClients(kernel, {self_}, 1000ms);
  const auto stoppedIn = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(paused.ok()) << paused.error().describe();
  EXPECT_EQ((*paused)["paused"].size(), 1U) << paused->dump();
  EXPECT_EQ(standIn_.state(), 'T');
  EXPECT_EQ(ntpClientsStillStopped(kernel, {self_}).size(), 1U);
  // Found again while stopped: it is then "already stopped", never paused by a second fault.
  auto again = findNtpClients(kernel);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->alreadyStopped.size(), 1U);

  auto resumed = resumeNtpClients(kernel, {self_}, 1000ms);
  ASSERT_TRUE(resumed.ok()) << resumed.error().describe();
  EXPECT_EQ((*resumed)["resumed"].size(), 1U) << resumed->dump();
  EXPECT_NE(standIn_.state(), 'T');
  EXPECT_TRUE(ntpClientsStillStopped(kernel, {self_}).empty());
  EXPECT_TRUE(resumeNtpClients(kernel, {self_}, 1000ms).ok()) << "twice";
  std::printf("[ measured ] stand-in NTP client seen stopped %.3f ms after the pause began\n",
              std::chrono::duration<double, std::milli>(stoppedIn).count());

  standIn_.stop();
  auto gone = resumeNtpClients(kernel, {self_}, 1000ms);
  ASSERT_TRUE(gone.ok()) << gone.error().describe();
  EXPECT_EQ((*gone)["gone"].size(), 1U) << gone->dump();
}

TEST_F(HostClockNtpTest, HostSkewPausesTheRealProcessAndTheGuardianResumesIt) {
  // The real process table, a clock in memory: nothing here steps this machine's clock.
  auto clock = std::make_shared<testing::FakeClockKernel>();
  TimeSkewInjector owner(std::make_shared<FakeTimeTargets>(), clock, systemProcessKernel(),
                         TimeSkewInjector::Options{});
  Guardrails g;
  g.allowHostClock = true;
  FaultRequest r;
  r.runId = "run";
  r.faultId = "host-ntp";
  r.faultType = "time.skew";
  r.args = {{"offset", "+2h"}};
  r.duration = 30s;
  r.guardrails = &g;
  auto prepared = owner.prepare(r);
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  ASSERT_EQ(prepared->undo["ntpPaused"].size(), 1U) << prepared->undo.dump();
  auto applied = owner.apply("host-ntp", prepared->undo);
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  EXPECT_EQ(standIn_.state(), 'T');
  EXPECT_EQ(applied->observed["ntp"]["paused"][0]["comm"], "chronyd");
  EXPECT_EQ(clock->stepNs, 7'200'000'000'000);

  // The owner is gone; another injector with the journalled record only.
  TimeSkewInjector guardian(std::make_shared<FakeTimeTargets>(), clock, systemProcessKernel(),
                            TimeSkewInjector::Options{});
  auto reverted = guardian.revert("host-ntp", nlohmann::json::parse(prepared->undo.dump()));
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_NE(standIn_.state(), 'T');
  EXPECT_EQ(clock->stepNs, 0);
  EXPECT_EQ((*reverted)["ntp"]["resumed"][0]["pid"], standIn_.pid());
  EXPECT_TRUE(guardian.audit(prepared->undo)->empty());
}

}  // namespace
}  // namespace chaosd
