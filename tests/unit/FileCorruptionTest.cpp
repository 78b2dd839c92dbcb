// file.corrupt without root: the corrupted copy (a memfd) of a real file, the rule's decision
// for read-only and other opens, the undo record, and the arguments as the parser checks them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bitset>
#include <filesystem>
#include <fstream>
#include <random>

#include "experiments/parser/ExperimentParser.h"
#include "injectors/syscall/FileCorruption.h"
#include "injectors/syscall/SyscallRecords.h"
#include "injectors/syscall/SyscallRules.h"
#include "tests/support/BuiltinFaults.h"
#include "tests/support/ParseErrors.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

class CorruptedCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaosd-corrupt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::mt19937 rng(7);
    original_.resize(100000);
    for (auto& c : original_) c = static_cast<char>(rng());
    std::ofstream(dir_ + "/weights.bin", std::ios::binary) << original_;
    source_ = Fd(::open((dir_ + "/weights.bin").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(source_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string contents(const Fd& fd) {
    std::string out;
    char buf[65536];
    off_t at = 0;
    ssize_t n = 0;
    while ((n = ::pread(fd.get(), buf, sizeof buf, at)) > 0) {
      out.append(buf, static_cast<size_t>(n));
      at += n;
    }
    return out;
  }

  static size_t differingBits(const std::string& a, const std::string& b) {
    size_t bits = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      bits += std::bitset<8>(static_cast<unsigned char>(a[i] ^ b[i])).count();
    }
    return bits;
  }

  std::string dir_;
  std::string original_;
  Fd source_;
};

TEST_F(CorruptedCopyTest, FlipsExactlyTheAskedBitsTheSameWayForTheSameSeed) {
  FileCorruption c;
  c.mode = FileCorruption::Mode::kFlip;
  c.flips = 8;
  c.seed = 42;
  c.maxSize = 1 << 20;
  auto copy = makeCorruptedCopy(source_.get(), "weights.bin", c);
  ASSERT_TRUE(copy.ok()) << copy.error().describe();
  EXPECT_EQ(copy->size, original_.size());
  EXPECT_EQ(copy->changedBits, 8u);
  const std::string seen = contents(copy->memfd);
  ASSERT_EQ(seen.size(), original_.size());
  EXPECT_EQ(differingBits(seen, original_), 8u);

  auto again = makeCorruptedCopy(source_.get(), "weights.bin", c);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(contents(again->memfd), seen) << "the same seed damages the same bits";
  c.seed = 43;
  auto other = makeCorruptedCopy(source_.get(), "weights.bin", c);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(contents(other->memfd), seen);

  std::ifstream disk(dir_ + "/weights.bin", std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(disk)), {}), original_)
      << "the file itself is never written";
}

TEST_F(CorruptedCopyTest, ARateFlipsAboutThatShareOfBits) {
  FileCorruption c;
  c.mode = FileCorruption::Mode::kFlip;
  c.rate = 0.001;  // 800,000 bits: 800 expected, sd about 28
  c.seed = 1;
  c.maxSize = 1 << 20;
  auto copy = makeCorruptedCopy(source_.get(), "w", c);
  ASSERT_TRUE(copy.ok());
  EXPECT_GT(copy->changedBits, 650u);
  EXPECT_LT(copy->changedBits, 950u);
  EXPECT_EQ(differingBits(contents(copy->memfd), original_), copy->changedBits);
}

TEST_F(CorruptedCopyTest, TruncatesAndZeroesARange) {
  FileCorruption t;
  t.mode = FileCorruption::Mode::kTruncate;
  t.keep = 4096;
  t.maxSize = 1 << 20;
  auto cut = makeCorruptedCopy(source_.get(), "w", t);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->size, 4096u);
  EXPECT_EQ(cut->changedBytes, original_.size() - 4096);
  EXPECT_EQ(contents(cut->memfd), original_.substr(0, 4096));

  FileCorruption z;
  z.mode = FileCorruption::Mode::kZero;
  z.offset = 1000;
  z.length = 70000;
  z.maxSize = 1 << 20;
  auto zeroed = makeCorruptedCopy(source_.get(), "w", z);
  ASSERT_TRUE(zeroed.ok());
  const std::string seen = contents(zeroed->memfd);
  ASSERT_EQ(seen.size(), original_.size());
  EXPECT_EQ(seen.substr(0, 1000), original_.substr(0, 1000));
  EXPECT_EQ(seen.substr(1000, 70000), std::string(70000, '\0'));
  EXPECT_EQ(seen.substr(71000), original_.substr(71000));
  EXPECT_EQ(zeroed->changedBytes, 70000u);
}

TEST_F(CorruptedCopyTest, ALargerFileOrADirectoryIsLetThrough) {
  FileCorruption c;
  c.mode = FileCorruption::Mode::kTruncate;
  c.maxSize = 1000;
  auto big = makeCorruptedCopy(source_.get(), "w", c);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), ErrorCode::kUnsupported);
  Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  c.maxSize = 1 << 20;
  EXPECT_EQ(makeCorruptedCopy(dir.get(), "d", c).error().code(), ErrorCode::kUnsupported);
}

TEST(FileCorruptRulesTest, OnlyReadOnlyOpensAreHitAndAFailedCopyCountsAsPassed) {
  SyscallRuleSet rules;
  SyscallRule r;
  r.faultId = "f1";
  const int openat = seccomp_syscall_resolve_name("openat");
  r.syscalls = {openat};
  r.pathGlob = "*/weights.bin";
  FileCorruption c;
  c.mode = FileCorruption::Mode::kTruncate;
  r.corrupt = c;
  ASSERT_TRUE(rules.add(r).ok());
  auto weights = [] { return std::string("/models/weights.bin"); };
  auto other = [] { return std::string("/models/config.json"); };
  const SyscallVerdict hit = rules.judge(openat, weights, true);
  EXPECT_TRUE(hit.hit);
  ASSERT_TRUE(hit.corrupt);
  EXPECT_EQ(hit.faultId, "f1");
  rules.corruptionDone("f1", true);
  EXPECT_FALSE(rules.judge(openat, weights, false).hit) << "a write open runs";
  EXPECT_FALSE(rules.judge(openat, other, true).hit);
  EXPECT_TRUE(rules.judge(openat, weights, true).hit);
  rules.corruptionDone("f1", false);  // the copy could not be made: the open ran
  auto stats = rules.remove("f1");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->matched, 3u);
  EXPECT_EQ(stats->hit, 1u);
  EXPECT_EQ(stats->corrupted, 1u);
  EXPECT_EQ(stats->notReadOnly, 1u);
  EXPECT_EQ(stats->copyFailed, 1u);
  EXPECT_EQ(stats->passed, 2u);
}

TEST(FileCorruptRecordTest, TheUndoRecordRoundTripsAndRefusesTwoActions) {
  SyscallUndo u;
  u.faultId = "f1";
  u.pid = 42;
  u.startTime = 7;
  u.syscalls = {"openat", "open"};
  u.numbers = {257, 2};
  FileCorruption c;
  c.mode = FileCorruption::Mode::kFlip;
  c.flips = 3;
  c.seed = 99;
  c.maxSize = 1 << 30;
  u.action = c;
  u.path = "/models/*.bin";
  const auto j = u.toJson();
  EXPECT_EQ(j["corrupt"]["mode"], "flip");
  auto back = SyscallUndo::fromJson(j);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  ASSERT_TRUE(std::holds_alternative<FileCorruption>(back->action));
  EXPECT_EQ(std::get<FileCorruption>(back->action).flips, 3u);
  EXPECT_EQ(std::get<FileCorruption>(back->action).seed, 99u);
  ASSERT_TRUE(back->rule().corrupt);
  EXPECT_EQ(back->rule().pathGlob, "/models/*.bin");

  auto both = j;
  both["delayNs"] = 5;
  EXPECT_FALSE(SyscallUndo::fromJson(both).ok());
  auto badMode = j;
  badMode["corrupt"]["mode"] = "melt";
  EXPECT_FALSE(SyscallUndo::fromJson(badMode).ok());
}

ParseResult parseStep(const std::string& args) {
  const std::string text =
      "apiVersion: chaosd/v1\nkind: Experiment\nmetadata: {name: corrupt}\n"
      "targets: {server: {exec: {argv: [/usr/bin/python3, server.py]}}}\n"
      "steadyState: {probes: []}\n"
      "method:\n"
      "  - {name: bad-weights, fault: file.corrupt, target: server, duration: 10s, args: " +
      args + "}\n";
  ParseOptions options;
  options.registry = &testing::builtinFaults();
  return parseExperimentText(text, "exp.yaml", options);
}

using testing::errorsOf;

TEST(FileCorruptParseTest, AcceptsEachModeAndRefusesArgsOfAnother) {
  EXPECT_TRUE(parseStep("{path: \"/m/*.bin\", mode: flip, flips: 8, seed: 1}").ok());
  EXPECT_TRUE(parseStep("{path: \"/m/*.bin\", mode: flip, rate: 0.0001}").ok());
  EXPECT_TRUE(parseStep("{path: \"/m/*.bin\", mode: truncate, size: 4KiB}").ok());
  EXPECT_TRUE(parseStep("{path: \"/m/*.bin\", mode: zero, offset: 1KiB, length: 4KiB}").ok());

  auto noCount = parseStep("{path: \"/m/*.bin\", mode: flip}");
  EXPECT_NE(errorsOf(noCount).find("exactly one of rate and flips"), std::string::npos)
      << errorsOf(noCount);
  auto wrongMode = parseStep("{path: \"/m/*.bin\", mode: truncate, size: 1KiB, flips: 2}");
  EXPECT_NE(errorsOf(wrongMode).find("'flips' belongs to mode flip, not truncate"),
            std::string::npos)
      << errorsOf(wrongMode);
  EXPECT_NE(errorsOf(wrongMode).find("exp.yaml:7:"), std::string::npos) << errorsOf(wrongMode);
  auto noSize = parseStep("{path: \"/m/*.bin\", mode: truncate}");
  EXPECT_NE(errorsOf(noSize).find("needs size"), std::string::npos) << errorsOf(noSize);
  auto zeroRate = parseStep("{path: \"/m/*.bin\", mode: flip, rate: 0}");
  EXPECT_NE(errorsOf(zeroRate).find("method[0].args.rate: a rate of 0 flips nothing"),
            std::string::npos)
      << errorsOf(zeroRate);
  auto badMode = parseStep("{path: \"/m/*.bin\", mode: melt}");
  EXPECT_FALSE(badMode.ok());
  auto noPath = parseStep("{mode: truncate, size: 1}");
  EXPECT_NE(errorsOf(noPath).find("path"), std::string::npos) << errorsOf(noPath);
}

}  // namespace
}  // namespace chaosd
