// What injectors observed, as the reports print it: a kill's victims and the restart, a
// fill's size, IO throughput, syscall counts, packets; garbage reads as nothing.
#include <gtest/gtest.h>

#include <string>

#include "reports/HtmlReport.h"
#include "reports/JunitReport.h"
#include "reports/MarkdownReport.h"
#include "reports/ObservedText.h"

namespace chaosd::report {
namespace {

Json fault(const std::string& type, Json observed, Json args = Json::object()) {
  return {{"step", "s1"},         {"type", type},       {"state", "reverted"},
          {"target", "t"},        {"description", "d"}, {"args", std::move(args)},
          {"observed", observed}, {"revertible", true}};
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(ObservedTextTest, AKillNamesItsVictimAndTheRestart) {
  auto lines = observedLines(fault(
      "process.kill",
      {{"signalName", "SIGKILL"},
       {"signalled", 1},
       {"died", 1},
       {"victims",
        {{{"pid", 30809},
          {"comm", "python3"},
          {"outcome", "signalled"},
          {"diedAfterSignalMs", 1.17}}}},
       {"restarts",
        {{{"pid", 30855}, {"comm", "python3"}, {"replaces", 30809}, {"restartMs", 522.2}}}}}));
  ASSERT_EQ(lines.size(), 3u) << joined(lines);
  EXPECT_EQ(lines[0], "SIGKILL sent to 1 process(es), 1 died");
  EXPECT_EQ(lines[1], "30809 (python3): died 1.17 ms after the signal");
  EXPECT_EQ(lines[2], "restarted: 30855 (python3) 522 ms after 30809 was killed");
}

TEST(ObservedTextTest, ARestartThatExecdIsNamedByWhatItRunsAndWhatItStartedAs) {
  auto lines = observedLines(
      fault("process.kill", {{"signalName", "SIGKILL"},
                             {"signalled", 2},
                             {"died", 2},
                             {"victims", Json::array()},
                             {"restarts",
                              {{{"pid", 19557},
                                {"comm", "python3"},
                                {"startedAs", "ip"},
                                {"replaces", 19001},
                                {"restartMs", 80.0}},
                               {{"pid", 19560}, {"comm", "ip"}, {"startedAs", "ip"}}}}}));
  ASSERT_EQ(lines.size(), 3u) << joined(lines);
  EXPECT_EQ(lines[1], "restarted: 19557 (python3, started as ip) 80 ms after 19001 was killed");
  EXPECT_EQ(lines[2], "restarted: 19560 (started as ip)") << "gone by the revert";
}

TEST(ObservedTextTest, AKillWithoutRestartSaysSo) {
  auto lines = observedLines(fault("process.kill", {{"signalName", "SIGTERM"},
                                                    {"signalled", 1},
                                                    {"died", 1},
                                                    {"victims", Json::array()},
                                                    {"restarts", Json::array()},
                                                    {"watchedMs", 2500.0}}));
  ASSERT_EQ(lines.size(), 2u) << joined(lines);
  EXPECT_EQ(lines[1],
            "no process matching the selector appeared in the 2.50 s watched: not restarted");
  // SIGTERM to a process that handles it: signalled, not dead.
  auto survived = observedLines(
      fault("process.kill",
            {{"signalName", "SIGTERM"},
             {"signalled", 1},
             {"died", 0},
             {"victims", {{{"pid", 7}, {"outcome", "signalled"}, {"diedMs", nullptr}}}}}));
  ASSERT_EQ(survived.size(), 2u) << joined(survived);
  EXPECT_EQ(survived[1], "7: had not died when the watch ended");
  EXPECT_EQ(observedLines(fault("process.kill", {{"noop", true}}))[0],
            "nothing matched the selector: no signal sent");
}

TEST(ObservedTextTest, AFillItsSizeUsageAndAPartialFill) {
  auto lines = observedLines(fault("disk.fill", {{"bytesAllocated", 268435456},
                                                 {"bytesPlanned", 1073741824},
                                                 {"method", "fallocate"},
                                                 {"usageBefore", 0.27},
                                                 {"usageAfter", 1.0},
                                                 {"partial", true},
                                                 {"partialReason", "ENOSPC"}}));
  ASSERT_EQ(lines.size(), 2u) << joined(lines);
  EXPECT_EQ(
      lines[0],
      "256 MiB allocated of 1 GiB planned (fallocate); the filesystem went from 27% to 100% used");
  EXPECT_EQ(lines[1], "partial fill: ENOSPC");
  // What an older report holds: only the bytes.
  EXPECT_EQ(observedLines(fault("disk.fill", {{"bytesAllocated", 536870912}}))[0],
            "512 MiB allocated");
}

TEST(ObservedTextTest, IoLoadThroughput) {
  auto lines = observedLines(fault("disk.io-load", {{"readMBps", 120.25},
                                                    {"writeMBps", 80.0},
                                                    {"totalMBps", 200.25},
                                                    {"loadSeconds", 5.0},
                                                    {"bytesRead", 601250000},
                                                    {"bytesWritten", 400000000},
                                                    {"directAtEnd", true}}));
  ASSERT_EQ(lines.size(), 2u) << joined(lines);
  EXPECT_EQ(lines[0], "read 120.2 MB/s, wrote 80.0 MB/s (200.2 MB/s in all over 5.0 s)");
  EXPECT_EQ(lines[1], "573 MiB read, 381 MiB written, direct IO yes");
}

TEST(ObservedTextTest, StressAskedAgainstAchievedAndThePressure) {
  Json cpu = {
      {"places",
       Json::array({{{"askedLoad", 0.5},
                     {"achievedLoad", 0.4971},
                     {"cpuSeconds", 9.94},
                     {"pressure",
                      {{"cpu", {{"someShareDuring", 0.123}}}, {"io", {{"someShareDuring", 0.0}}}}},
                     {"endedBeforeRevert", Json::array()}}})}};
  auto lines = observedLines(fault("cpu.stress", cpu));
  ASSERT_EQ(lines.size(), 2u) << joined(lines);
  EXPECT_EQ(lines[0], "cpu: asked 50% per worker, achieved 49.7% (9.9 CPU-s)");
  EXPECT_EQ(lines[1], "stalled during the fault (PSI some): cpu 12.3%, io 0.0%");

  Json memory = {
      {"places", Json::array({{{"askedBytes", 2147483648ULL},
                               {"heldBytes", 805306368},
                               {"reserveBytes", 268435456},
                               {"stoppedAtReserve", true},
                               {"endedBeforeRevert",
                                Json::array({{{"pid", 42}, {"how", "killed by SIGKILL"}}})}}})}};
  lines = observedLines(fault("memory.stress", memory));
  ASSERT_EQ(lines.size(), 2u) << joined(lines);
  EXPECT_EQ(lines[0], "memory: held 768 MiB of 2 GiB asked, stopped at the reserve of 256 MiB");
  EXPECT_EQ(lines[1], "pid 42 killed by SIGKILL before the revert");
}

TEST(ObservedTextTest, ThrottleIoDuringAndWhatBecameOfEachFile) {
  Json o = {
      {"device", "7:0"},
      {"places",
       Json::array({{{"cgroup", "/sys/fs/cgroup/blkio/app"},
                     {"during",
                      {{"seconds", 4.0},
                       {"writeBytes", 4194304},
                       {"writeOps", 16},
                       {"readBytes", 0},
                       {"readOps", 0}}},
                     {"files", Json::array({{{"file", "/cg/app/blkio.throttle.write_bps_device"},
                                             {"written", "1048576"},
                                             {"previous", ""},
                                             {"action", "restored"}}})}}})}};
  auto lines = observedLines(fault("io.throttle", o));
  ASSERT_EQ(lines.size(), 2u) << joined(lines);
  EXPECT_EQ(lines[0],
            "/sys/fs/cgroup/blkio/app on 7:0, 4.0 s under the throttle: wrote 4 MiB in 16 op(s) "
            "(1 MiB/s), read 0 B in 0 op(s) (0 B/s)");
  EXPECT_EQ(lines[1],
            "/cg/app/blkio.throttle.write_bps_device: set 1048576, restored (before: none)");
}

TEST(ObservedTextTest, SyscallCountsNameTheEffect) {
  EXPECT_EQ(observedLines(fault("syscall.error", {{"matched", 23}, {"hit", 10}, {"passed", 13}},
                                {{"errno", "EIO"}}))[0],
            "23 call(s) matched, 10 failed with EIO, 13 let through");
  EXPECT_EQ(observedLines(fault("syscall.delay", {{"matched", 5}, {"hit", 5}, {"passed", 0}},
                                {{"delay", "50ms"}}))[0],
            "5 call(s) matched, 5 delayed by 50ms, 0 let through");
}

TEST(ObservedTextTest, PacketsThroughAQdiscOrTheQueue) {
  EXPECT_EQ(observedLines(fault(
                "network.loss",
                {{"packets", 800}, {"bytes", 1024000}, {"drops", 200}, {"overlimits", 0}}))[0],
            "800 packet(s) (1000 KiB) through the fault's qdisc, 200 dropped, 0 over the limit");
  EXPECT_EQ(observedLines(fault("network.delay",
                                {{"queued", 174}, {"releasedAtStop", 15}, {"overflow", 2}}))[0],
            "174 packet(s) held and released (15 released early at the revert); 2 passed "
            "undelayed (queue full)");
}

TEST(ObservedTextTest, LongListsAreCutAndGarbageReadsAsNothing) {
  Json victims = Json::array();
  for (int i = 0; i < 20; ++i) {
    victims.push_back({{"pid", 100 + i}, {"outcome", "signalled"}, {"diedAfterSignalMs", 1.0}});
  }
  auto lines = observedLines(
      fault("process.kill", {{"signalled", 20}, {"died", 20}, {"victims", victims}}), 6);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[5], "... and 17 more (report.json has them all)");
  EXPECT_TRUE(observedLines(fault("disk.io-load", "not an object")).empty());
  EXPECT_TRUE(observedLines(Json::array()).empty());
  EXPECT_TRUE(observedLines(fault("network.partition", Json::object())).empty());
  // Wrong types inside read as zero or empty, never a throw.
  EXPECT_NO_THROW(observedLines(fault("process.kill", {{"victims", 3}, {"restarts", "x"}})));
}

// Host names a network fault's filter named, and the resets a network.reset sent.
TEST(ObservedTextTest, HostNamesAndResets) {
  EXPECT_EQ(
      observedLines(fault("network.reset", {{"hosts", {{"db.internal", {"10.0.0.5", "fd00::5"}}}},
                                            {"resetsSent", 12}})),
      (std::vector<std::string>{"db.internal resolved to 10.0.0.5, fd00::5",
                                "12 TCP reset(s) sent"}));
}

// `refresh`: each change of a name, a name that stopped resolving, a refresh that failed.
TEST(ObservedTextTest, HostRefreshes) {
  const Json o = Json::parse(R"({"hosts": {"db.internal": ["10.0.0.5"]},
      "hostChanges": [{"atMs": 2500, "name": "db.internal", "from": ["10.0.0.5"],
                       "to": ["10.0.0.6", "fd00::6"]}],
      "hostsUnresolved": [{"atMs": 4000, "name": "db.internal", "error": "unknown",
                           "kept": ["10.0.0.6", "fd00::6"]}],
      "hostRefreshErrors": [{"atMs": 6000, "error": "updating the filter: refused"}]})");
  EXPECT_EQ(observedLines(fault("network.partition", o)),
            (std::vector<std::string>{
                "db.internal resolved to 10.0.0.5",
                "db.internal changed after 2.50 s: 10.0.0.5 -> 10.0.0.6, fd00::6 (the filter "
                "followed)",
                "db.internal stopped resolving after 4.00 s (unknown): kept 10.0.0.6, fd00::6",
                "refresh failed after 6.00 s: updating the filter: refused"}));
}

TEST(ObservedTextTest, EveryReportCarriesTheLines) {
  Json report = {
      {"schema", "chaosd.report/v1"},
      {"runId", "r"},
      {"experiment", {{"name", "obs"}}},
      {"outcome", "ok"},
      {"exitCode", 0},
      {"startedAt", "2026-11-27T01:00:00.000Z"},
      {"endedAt", "2026-11-27T01:00:10.000Z"},
      {"faults",
       {fault("syscall.error", {{"matched", 3}, {"hit", 1}, {"passed", 2}}, {{"errno", "EIO"}})}}};
  const std::string line = "3 call(s) matched, 1 failed with EIO, 2 let through";
  EXPECT_NE(htmlReport(report).find("<li>" + line + "</li>"), std::string::npos);
  EXPECT_NE(markdownSummary(report).find("- **s1**: " + line), std::string::npos);
  const std::string junit = junitXml(report);
  EXPECT_NE(junit.find("<system-out>" + line + "\n</system-out>"), std::string::npos) << junit;
}

}  // namespace
}  // namespace chaosd::report
