// Which processes a target's mode selects: how many (selectionSize) and which ones
// (selectProcesses, deterministic for a seed so a run can be replayed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "injectors/process/Selection.h"

namespace chaosd {
namespace {

using ::testing::ElementsAre;

Selection all() { return Selection{SelectionMode::kAll, 0, 0, std::nullopt}; }
Selection one() { return Selection{SelectionMode::kOne, 0, 0, std::nullopt}; }
Selection count(uint64_t n) { return Selection{SelectionMode::kCount, n, 0, std::nullopt}; }
Selection percent(double fraction) {
  return Selection{SelectionMode::kPercent, 0, fraction, std::nullopt};
}

// Candidates with pids 100, 101, ... in a scrambled order.
std::vector<ProcessInfo> candidates(size_t n) {
  std::vector<ProcessInfo> out;
  for (size_t i = 0; i < n; ++i) {
    ProcessInfo p;
    p.pid = static_cast<pid_t>(100 + (i * 7) % n);
    p.comm = "worker";
    out.push_back(p);
  }
  return out;
}

std::vector<pid_t> pids(const std::vector<ProcessInfo>& ps) {
  std::vector<pid_t> out;
  for (const auto& p : ps) out.push_back(p.pid);
  return out;
}

TEST(SelectionTest, SizeOfAll) {
  EXPECT_EQ(selectionSize(all(), 0), 0u);
  EXPECT_EQ(selectionSize(all(), 7), 7u);
}

TEST(SelectionTest, SizeOfOne) {
  EXPECT_EQ(selectionSize(one(), 0), 0u);
  EXPECT_EQ(selectionSize(one(), 1), 1u);
  EXPECT_EQ(selectionSize(one(), 50), 1u);
}

TEST(SelectionTest, SizeOfCountIsCappedAtWhatIsThere) {
  EXPECT_EQ(selectionSize(count(3), 10), 3u);
  EXPECT_EQ(selectionSize(count(3), 3), 3u);
  EXPECT_EQ(selectionSize(count(3), 2), 2u);
  EXPECT_EQ(selectionSize(count(3), 0), 0u);
}

TEST(SelectionTest, SizeOfPercentRoundsUp) {
  EXPECT_EQ(selectionSize(percent(0.5), 10), 5u);
  EXPECT_EQ(selectionSize(percent(0.25), 10), 3u);  // 2.5 -> 3
  EXPECT_EQ(selectionSize(percent(0.01), 1), 1u);   // a non-empty selection never hits zero
  EXPECT_EQ(selectionSize(percent(0.01), 150), 2u);
  EXPECT_EQ(selectionSize(percent(1.0), 9), 9u);
  EXPECT_EQ(selectionSize(percent(0.5), 0), 0u);
}

TEST(SelectionTest, SizeOfPercentIsNotPushedUpByFloatingPointNoise) {
  // 0.3 * 10 is 3.0000000000000004 in doubles, 0.7 * 10 is 7.000000000000001.
  EXPECT_EQ(selectionSize(percent(0.3), 10), 3u);
  EXPECT_EQ(selectionSize(percent(0.7), 10), 7u);
  EXPECT_EQ(selectionSize(percent(0.1), 30), 3u);
  EXPECT_EQ(selectionSize(percent(0.07), 100), 7u);
}

TEST(SelectionTest, SameSeedSameVictims) {
  auto a = selectProcesses(candidates(20), count(5), 7);
  auto b = selectProcesses(candidates(20), count(5), 7);
  EXPECT_EQ(pids(a), pids(b));
}

TEST(SelectionTest, InputOrderDoesNotMatter) {
  auto c = candidates(20);
  auto a = selectProcesses(c, count(5), 7);
  std::reverse(c.begin(), c.end());
  auto b = selectProcesses(c, count(5), 7);
  EXPECT_EQ(pids(a), pids(b));
}

TEST(SelectionTest, DifferentSeedsDiffer) {
  std::set<std::vector<pid_t>> seen;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    seen.insert(pids(selectProcesses(candidates(20), count(5), seed)));
  }
  // C(20,5) = 15504 possible picks; ten seeds giving fewer than eight picks would mean the
  // seed hardly matters.
  EXPECT_GE(seen.size(), 8u);
  EXPECT_NE(pids(selectProcesses(candidates(20), count(5), 1)),
            pids(selectProcesses(candidates(20), count(5), 2)));
}

TEST(SelectionTest, ResultIsASortedSubsetOfTheRightSize) {
  auto c = candidates(50);
  std::set<pid_t> all;
  for (const auto& p : c) all.insert(p.pid);
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xffffffffffffffffull}) {
    for (const Selection& s : {one(), count(7), percent(0.25), percent(0.99)}) {
      auto chosen = pids(selectProcesses(c, s, seed));
      EXPECT_EQ(chosen.size(), selectionSize(s, c.size()));
      EXPECT_TRUE(std::is_sorted(chosen.begin(), chosen.end()));
      EXPECT_EQ(std::set<pid_t>(chosen.begin(), chosen.end()).size(), chosen.size());
      for (pid_t pid : chosen) EXPECT_TRUE(all.contains(pid)) << pid;
    }
  }
}

TEST(SelectionTest, AllReturnsEveryCandidateSorted) {
  auto chosen = pids(selectProcesses(candidates(6), all(), 3));
  EXPECT_THAT(chosen, ElementsAre(100, 101, 102, 103, 104, 105));
}

TEST(SelectionTest, NoCandidates) {
  EXPECT_TRUE(selectProcesses({}, one(), 1).empty());
  EXPECT_TRUE(selectProcesses({}, percent(0.5), 1).empty());
}

TEST(SelectionTest, EveryCandidateCanBeChosen) {
  // Over many seeds, `one` picks each of five candidates at least once (no fixed victim).
  std::set<pid_t> picked;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    picked.insert(selectProcesses(candidates(5), one(), seed).at(0).pid);
  }
  EXPECT_EQ(picked.size(), 5u);
}

TEST(SelectionTest, ProcessDetailsAreKept) {
  auto c = candidates(3);
  c[1].cmdline = {"/usr/bin/worker", "--id", "1"};
  pid_t pid = c[1].pid;
  auto chosen = selectProcesses(c, all(), 1);
  auto it = std::find_if(chosen.begin(), chosen.end(),
                         [&](const ProcessInfo& p) { return p.pid == pid; });
  ASSERT_NE(it, chosen.end());
  EXPECT_THAT(it->cmdline, ElementsAre("/usr/bin/worker", "--id", "1"));
}

}  // namespace
}  // namespace chaosd
