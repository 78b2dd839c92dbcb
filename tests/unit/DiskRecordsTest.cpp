// The disk faults' typed records without root: the undo records of disk.fill and disk.io-load
// (and of the test fault test.file, the journal tests' file on disk) in the exact format the
// journal holds parse and convert back to the same JSON; damaged records fail as values; the
// normalised args parse to the structs prepare acts on. prepare() itself runs on a scratch
// directory, which it only reads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/disk/DiskFillInjector.h"
#include "injectors/disk/DiskRecords.h"
#include "injectors/disk/IoLoadInjector.h"
#include "injectors/testing/FileFaultInjector.h"
#include "injectors/testing/FileFaultRecords.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// As prepare() writes them today (the journal stores the dump; the guardian parses it again).
constexpr const char* kFillBySize = R"({
  "version": 1, "faultId": "run7-3", "dir": "/srv/data", "file": "/srv/data/.chaosd-fill-run7-3",
  "bytes": 10485760, "noop": false, "usageAtPrepare": 0.4132, "dev": 2049,
  "fsid": "0b1c2d3e4f5a6b7c"})";
constexpr const char* kFillByUsage = R"({
  "version": 1, "faultId": "f1", "dir": "/", "file": "/.chaosd-fill-f1",
  "bytes": 4026531840, "noop": false, "usageAtPrepare": 0.25, "dev": 64768, "fsid": "",
  "usage": 0.9})";
constexpr const char* kFillNoop = R"({
  "version": 1, "faultId": "full", "dir": "/mnt/t", "file": "/mnt/t/.chaosd-fill-full",
  "bytes": 0, "noop": true, "usageAtPrepare": 0.97, "dev": 42, "fsid": "", "usage": 0.9})";
constexpr const char* kIoLoad = R"({
  "version": 1, "faultId": "io7", "dir": "/srv/data",
  "files": ["/srv/data/.chaosd-io-io7-0", "/srv/data/.chaosd-io-io7-1"],
  "dev": 2049, "fsid": "0b1c2d3e4f5a6b7c", "workers": 2, "readShare": 0.5,
  "blockSize": 131072, "direct": true, "fileSize": 8388608, "durationNs": 30000000000})";
constexpr const char* kIoLoadBounded = R"({
  "version": 1, "faultId": "io3", "dir": "/tmp/x",
  "files": ["/tmp/x/.chaosd-io-io3-0"], "dev": 7, "fsid": "", "workers": 1,
  "readShare": 0.0, "blockSize": 65536, "direct": false, "fileSize": 4194304,
  "bytes": 8388608, "durationNs": 0})";
constexpr const char* kTestFile = R"({"file": "/tmp/j/.chaosd-test-d-intent"})";

nlohmann::json parse(const char* text) { return nlohmann::json::parse(text); }

// A damaged record: no throw, and a kInvalid error.
template <typename Record>
void expectRefused(const nlohmann::json& j) {
  Result<Record> r = Record::fromJson(j);
  ASSERT_FALSE(r.ok()) << j.dump();
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalid) << r.error().describe();
}

// Every key of a good record replaced by values of other types: fromJson never throws, and
// whatever it refuses, it refuses as kInvalid.
template <typename Record>
void expectNoThrowOnAnyRetyping(const nlohmann::json& good) {
  const std::vector<nlohmann::json> others = {
      nullptr, "x", -1, 1.5, true, nlohmann::json::array(), nlohmann::json::object()};
  for (const auto& [key, value] : good.items()) {
    for (const auto& other : others) {
      nlohmann::json j = good;
      j[key] = other;
      EXPECT_NO_THROW({
        Result<Record> r = Record::fromJson(j);
        if (!r.ok()) {
          EXPECT_EQ(r.error().code(), ErrorCode::kInvalid) << key << "=" << other;
        }
      });
    }
  }
  for (const auto& whole : others) {
    EXPECT_NO_THROW(expectRefused<Record>(whole));
  }
}

TEST(DiskRecordsTest, FillUndoRecordsOfTodayParseAndConvertBackUnchanged) {
  for (const char* text : {kFillBySize, kFillByUsage, kFillNoop}) {
    const nlohmann::json journalled = parse(text);
    auto u = DiskFillUndo::fromJson(journalled);
    ASSERT_TRUE(u.ok()) << u.error().describe();
    EXPECT_EQ(u->toJson(), journalled);
    EXPECT_EQ(u->toJson().dump(), journalled.dump());
  }
  auto u = DiskFillUndo::fromJson(parse(kFillBySize));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->version, 1);
  EXPECT_EQ(u->faultId, "run7-3");
  EXPECT_EQ(u->dir, "/srv/data");
  EXPECT_EQ(u->file, "/srv/data/.chaosd-fill-run7-3");
  EXPECT_EQ(u->fs.dev, 2049u);
  EXPECT_EQ(u->fs.fsid, "0b1c2d3e4f5a6b7c");
  EXPECT_EQ(u->bytes, 10485760u);
  EXPECT_FALSE(u->noop);
  EXPECT_DOUBLE_EQ(u->usageAtPrepare, 0.4132);
  EXPECT_FALSE(u->usage.has_value());

  auto noop = DiskFillUndo::fromJson(parse(kFillNoop));
  ASSERT_TRUE(noop.ok());
  EXPECT_TRUE(noop->noop);
  EXPECT_EQ(noop->bytes, 0u);
  ASSERT_TRUE(noop->usage.has_value());
  EXPECT_DOUBLE_EQ(*noop->usage, 0.9);
}

TEST(DiskRecordsTest, FillUndoKeepsTheDefaultsOfKeysItNeverRequired) {
  // Only faultId, file and dev were ever required; the directory is the file's.
  auto u = DiskFillUndo::fromJson({{"faultId", "a"}, {"file", "/d/.chaosd-fill-a"}, {"dev", 3}});
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->dir, "/d");
  EXPECT_EQ(u->bytes, 0u);
  EXPECT_FALSE(u->noop);
  EXPECT_EQ(u->fs.fsid, "");
}

TEST(DiskRecordsTest, DamagedFillUndoRecordsFailAsValues) {
  const nlohmann::json good = parse(kFillBySize);
  for (const char* key : {"faultId", "file", "dev"}) {
    nlohmann::json j = good;
    j.erase(key);
    expectRefused<DiskFillUndo>(j);
  }
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json j = good;
    j[key] = std::move(value);
    return j;
  };
  expectRefused<DiskFillUndo>(with("file", "/srv/data/precious"));            // not our name
  expectRefused<DiskFillUndo>(with("file", "/srv/data/.chaosd-fill-other"));  // another fault
  expectRefused<DiskFillUndo>(with("file", "data/.chaosd-fill-run7-3"));      // relative
  expectRefused<DiskFillUndo>(with("dir", 7));                                // not a string
  expectRefused<DiskFillUndo>(with("faultId", "../run7-3"));
  // `dir` names the filesystem in messages only; the file and the filesystem identity decide
  // what is touched (DiskFillTest.TouchesOnlyItsOwnFile refuses a moved file by its identity).
  EXPECT_TRUE(DiskFillUndo::fromJson(with("dir", "/elsewhere")).ok());
  expectRefused<DiskFillUndo>(with("bytes", -1));
  expectRefused<DiskFillUndo>(with("bytes", 1.5));
  expectRefused<DiskFillUndo>(with("bytes", "10MiB"));
  expectRefused<DiskFillUndo>(with("noop", 0));
  expectRefused<DiskFillUndo>(with("dev", "2049"));
  expectRefused<DiskFillUndo>(with("fsid", 7));
  expectRefused<DiskFillUndo>(with("usage", "90%"));
  expectNoThrowOnAnyRetyping<DiskFillUndo>(good);
  expectNoThrowOnAnyRetyping<DiskFillUndo>(parse(kFillByUsage));
}

TEST(DiskRecordsTest, FillArgsTakeASizeOrAUsage) {
  auto bySize = DiskFillArgs::fromJson({{"size", 268435456u}});
  ASSERT_TRUE(bySize.ok()) << bySize.error().describe();
  EXPECT_EQ(bySize->size, 268435456u);
  EXPECT_FALSE(bySize->usage.has_value());
  EXPECT_EQ(bySize->toJson(), (nlohmann::json{{"size", 268435456u}}));

  auto byUsage = DiskFillArgs::fromJson({{"usage", 0.9}});
  ASSERT_TRUE(byUsage.ok()) << byUsage.error().describe();
  EXPECT_FALSE(byUsage->size.has_value());
  ASSERT_TRUE(byUsage->usage.has_value());
  EXPECT_DOUBLE_EQ(*byUsage->usage, 0.9);
  EXPECT_EQ(byUsage->toJson(), (nlohmann::json{{"usage", 0.9}}));

  for (const nlohmann::json& bad :
       {nlohmann::json::object(), nlohmann::json{{"size", 1}, {"usage", 0.5}},
        nlohmann::json{{"size", "1GiB"}}, nlohmann::json{{"size", -5}}, nlohmann::json(nullptr)}) {
    auto r = DiskFillArgs::fromJson(bad);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  }
}

TEST(DiskRecordsTest, IoLoadUndoRecordsOfTodayParseAndConvertBackUnchanged) {
  for (const char* text : {kIoLoad, kIoLoadBounded}) {
    const nlohmann::json journalled = parse(text);
    auto u = IoLoadUndo::fromJson(journalled);
    ASSERT_TRUE(u.ok()) << u.error().describe();
    EXPECT_EQ(u->toJson(), journalled);
    EXPECT_EQ(u->toJson().dump(), journalled.dump());
  }
  auto u = IoLoadUndo::fromJson(parse(kIoLoad));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->faultId, "io7");
  EXPECT_EQ(u->dir, "/srv/data");
  EXPECT_EQ(u->files,
            (std::vector<std::string>{"/srv/data/.chaosd-io-io7-0", "/srv/data/.chaosd-io-io7-1"}));
  EXPECT_EQ(u->fs.dev, 2049u);
  EXPECT_EQ(u->load.workers, 2);
  EXPECT_DOUBLE_EQ(u->load.readShare, 0.5);
  EXPECT_EQ(u->load.blockSize, 131072u);
  EXPECT_TRUE(u->load.direct);
  EXPECT_EQ(u->load.fileSize, 8388608u);
  EXPECT_EQ(u->load.bytes, 0u);  // no bound
  EXPECT_EQ(u->duration, 30s);
  auto bounded = IoLoadUndo::fromJson(parse(kIoLoadBounded));
  ASSERT_TRUE(bounded.ok());
  EXPECT_EQ(bounded->load.bytes, 8388608u);
  EXPECT_FALSE(bounded->load.direct);
}

TEST(DiskRecordsTest, IoLoadUndoOfTheReleaseThatWroteAZeroBoundStillReads) {
  // Before an unset bound was left out, records held "bytes": 0.
  nlohmann::json older = parse(kIoLoad);
  older["bytes"] = 0;
  auto u = IoLoadUndo::fromJson(older);
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->load.bytes, 0u);
  EXPECT_EQ(u->toJson(), parse(kIoLoad));
}

TEST(DiskRecordsTest, DamagedIoLoadUndoRecordsFailAsValues) {
  const nlohmann::json good = parse(kIoLoad);
  for (const char* key : {"faultId", "dir", "files", "dev"}) {
    nlohmann::json j = good;
    j.erase(key);
    expectRefused<IoLoadUndo>(j);
  }
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json j = good;
    j[key] = std::move(value);
    return j;
  };
  // Files out of order, of another directory, of another fault, or not strings.
  expectRefused<IoLoadUndo>(
      with("files", {"/srv/data/.chaosd-io-io7-1", "/srv/data/.chaosd-io-io7-0"}));
  expectRefused<IoLoadUndo>(with("files", {"/etc/.chaosd-io-io7-0"}));
  expectRefused<IoLoadUndo>(with("files", {"/srv/data/.chaosd-io-io8-0"}));
  expectRefused<IoLoadUndo>(with("files", {"/srv/data/.chaosd-io-io7-0", 1}));
  expectRefused<IoLoadUndo>(with("files", "/srv/data/.chaosd-io-io7-0"));
  expectRefused<IoLoadUndo>(with("dir", "srv/data"));
  expectRefused<IoLoadUndo>(with("faultId", ".hidden"));
  expectRefused<IoLoadUndo>(with("workers", "two"));
  expectRefused<IoLoadUndo>(with("workers", 1e12));
  expectRefused<IoLoadUndo>(with("blockSize", -4096));
  expectRefused<IoLoadUndo>(with("direct", "yes"));
  expectRefused<IoLoadUndo>(with("durationNs", 0.5));
  expectNoThrowOnAnyRetyping<IoLoadUndo>(good);
  expectNoThrowOnAnyRetyping<IoLoadUndo>(parse(kIoLoadBounded));
}

TEST(DiskRecordsTest, IoLoadArgsTakeTheSchemasDefaults) {
  // As the schema normalises them (DiskFaults.cpp), defaults filled in.
  const nlohmann::json normalised{{"workers", 2},
                                  {"readShare", 0.5},
                                  {"blockSize", 1048576},
                                  {"direct", true},
                                  {"fileSize", 268435456}};
  auto a = IoLoadArgs::fromJson(normalised);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->workers, 2);
  EXPECT_DOUBLE_EQ(a->readShare, 0.5);
  EXPECT_EQ(a->blockSize, 1048576u);
  EXPECT_TRUE(a->direct);
  EXPECT_EQ(a->fileSize, 268435456u);
  EXPECT_EQ(a->bytes, 0u);
  EXPECT_EQ(a->toJson(), normalised);

  // Keys left out take the same defaults.
  auto empty = IoLoadArgs::fromJson(nlohmann::json::object());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->toJson(), normalised);

  const nlohmann::json bounded{{"workers", 4},    {"readShare", 0.0},     {"blockSize", 65536},
                               {"direct", false}, {"fileSize", 16777216}, {"bytes", 8388608}};
  auto b = IoLoadArgs::fromJson(bounded);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(b->workers, 4);
  EXPECT_DOUBLE_EQ(b->readShare, 0.0);
  EXPECT_FALSE(b->direct);
  EXPECT_EQ(b->bytes, 8388608u);
  EXPECT_EQ(b->toJson(), bounded);

  for (const nlohmann::json& bad :
       {nlohmann::json{{"workers", "2"}}, nlohmann::json{{"readShare", "50%"}},
        nlohmann::json{{"direct", 1}}, nlohmann::json{{"bytes", -1}}, nlohmann::json::array()}) {
    auto r = IoLoadArgs::fromJson(bad);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  }
}

// ---- prepare() writes exactly today's keys, and revert refuses another fault's record ----

class DiskPrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "chaosd-records-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = fs::canonical(tmpl).string();
    target_.name = "data";
    target_.kind = TargetKind::kPath;
    target_.path = dir_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  FaultRequest request(const std::string& id, const std::string& type, nlohmann::json args) {
    FaultRequest r;
    r.runId = "t";
    r.faultId = id;
    r.faultType = type;
    r.target = &target_;
    r.args = std::move(args);
    r.duration = 2s;
    return r;
  }

  static std::vector<std::string> keysOf(const nlohmann::json& j) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.push_back(key);
    return keys;
  }

  std::string dir_;
  TargetSpec target_;
};

TEST_F(DiskPrepareTest, FillRecordHasTodaysKeysAndRoundTrips) {
  DiskFillInjector injector;
  auto prepared = injector.prepare(request("r1", "disk.fill", {{"size", 4096}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  nlohmann::json expectedKeys = parse(kFillBySize);
  EXPECT_EQ(keysOf(prepared->undo), keysOf(expectedKeys));
  EXPECT_EQ(prepared->undo["file"], dir_ + "/.chaosd-fill-r1");
  EXPECT_EQ(prepared->undo["dir"], dir_);
  EXPECT_EQ(prepared->undo["bytes"], 4096);
  auto u = DiskFillUndo::fromJson(nlohmann::json::parse(prepared->undo.dump()));
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->toJson(), prepared->undo);

  auto byUsage = injector.prepare(request("r2", "disk.fill", {{"usage", 0.999}}));
  ASSERT_TRUE(byUsage.ok()) << byUsage.error().describe();
  EXPECT_EQ(keysOf(byUsage->undo), keysOf(parse(kFillByUsage)));

  // Revert and audit act only on their own fault's record; nothing was created.
  EXPECT_FALSE(injector.revert("other", prepared->undo).ok());
  auto reverted = injector.revert("r1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["removed"], false);
  EXPECT_EQ((*reverted)["freedBytes"], 0);
  EXPECT_TRUE(injector.audit(prepared->undo)->empty());
}

TEST_F(DiskPrepareTest, IoLoadRecordHasTodaysKeysAndRoundTrips) {
  IoLoadInjector injector;
  auto prepared = injector.prepare(request(
      "io1", "disk.io-load", {{"workers", 2}, {"blockSize", 4096}, {"fileSize", 1048576 + 100}}));
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_EQ(keysOf(prepared->undo), keysOf(parse(kIoLoad)));
  EXPECT_EQ(prepared->undo["fileSize"], 1048576);  // whole blocks
  EXPECT_EQ(prepared->undo["durationNs"], 2000000000);
  EXPECT_EQ(prepared->undo["files"][1], dir_ + "/.chaosd-io-io1-1");
  auto u = IoLoadUndo::fromJson(nlohmann::json::parse(prepared->undo.dump()));
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->toJson(), prepared->undo);

  auto bounded = injector.prepare(
      request("io2", "disk.io-load", {{"workers", 1}, {"fileSize", 1048576}, {"bytes", 1048576}}));
  ASSERT_TRUE(bounded.ok()) << bounded.error().describe();
  EXPECT_EQ(keysOf(bounded->undo), keysOf(parse(kIoLoadBounded)));

  EXPECT_FALSE(injector.revert("io2", prepared->undo).ok());
  auto reverted = injector.revert("io1", prepared->undo);
  ASSERT_TRUE(reverted.ok()) << reverted.error().describe();
  EXPECT_EQ((*reverted)["filesRemoved"], 0);
  EXPECT_EQ((*reverted)["workersInThisProcess"], false);
}

TEST_F(DiskPrepareTest, IoLoadArgsOutOfRangeAreRefusedAtPrepare) {
  IoLoadInjector injector;
  for (const nlohmann::json& args :
       {nlohmann::json{{"workers", 0}}, nlohmann::json{{"readShare", 1.5}},
        nlohmann::json{{"blockSize", 8192}, {"fileSize", 4096}}}) {
    auto prepared = injector.prepare(request("bad", "disk.io-load", args));
    ASSERT_FALSE(prepared.ok()) << args.dump();
    EXPECT_EQ(prepared.error().code(), ErrorCode::kInvalid);
  }
}

// ---- test.file (FileFaultInjector), the journal and guardian tests' fault ----

TEST(FileFaultRecordsTest, UndoRecordOfTodayParsesAndConvertsBackUnchanged) {
  const nlohmann::json journalled = parse(kTestFile);
  auto u = FileFaultUndo::fromJson(journalled);
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->file, "/tmp/j/.chaosd-test-d-intent");
  EXPECT_EQ(u->toJson(), journalled);
  EXPECT_EQ(u->toJson().dump(), journalled.dump());
  // What prepare writes for that fault.
  EXPECT_EQ(FileFaultUndo{FileFaultInjector::fileFor("/tmp/j", "d-intent")}.toJson(), journalled);
}

TEST(FileFaultRecordsTest, DamagedUndoRecordsFailAsValues) {
  expectRefused<FileFaultUndo>(nlohmann::json::object());
  expectRefused<FileFaultUndo>({{"file", 3}});
  expectRefused<FileFaultUndo>({{"file", "/etc/passwd"}});
  expectNoThrowOnAnyRetyping<FileFaultUndo>(parse(kTestFile));
}

TEST(FileFaultRecordsTest, ArgsNameTheDirectory) {
  auto a = FileFaultArgs::fromJson({{"path", "/tmp/j"}});
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->path, "/tmp/j");
  EXPECT_EQ(a->toJson(), (nlohmann::json{{"path", "/tmp/j"}}));
  for (const nlohmann::json& bad :
       {nlohmann::json::object(), nlohmann::json{{"path", 1}}, nlohmann::json(nullptr)}) {
    auto r = FileFaultArgs::fromJson(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "test.file needs args.path (a directory)");
  }
}

}  // namespace
}  // namespace chaosd
