// chaosctl report: regenerates the files from a run folder's report.json, compares two runs,
// and exits 2 naming the file when report.json is missing or invalid, 5 when it cannot write.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/ReportFixtures.h"

namespace chaosd {
namespace {

using chaosd::testing::readFile;
using chaosd::testing::reportDataPath;
using chaosd::testing::runCommand;

class ReportCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = chaosd::testing::makeTempDir("chaosd-report-cmd");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string runDir(const std::string& name, const std::string& report) {
    const std::string d = dir_ + "/" + name;
    std::filesystem::create_directories(d);
    chaosd::testing::writeFile(d + "/report.json", report);
    return d;
  }
  std::string chaosctl(const std::string& args, int* status) {
    return runCommand(std::string(CHAOSCTL_PATH) + " report " + args + " 2>&1", status);
  }
  std::string dir_;
};

TEST_F(ReportCommandTest, WritesEveryFileByDefault) {
  const auto run = runDir("run", readFile(reportDataPath("deviated-leftovers.json")));
  int status = -1;
  const std::string out = chaosctl(run, &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(readFile(run + "/junit.xml"), readFile(reportDataPath("junit.xml")));
  EXPECT_EQ(readFile(run + "/summary.md"), readFile(reportDataPath("summary.md")));
  EXPECT_NE(readFile(run + "/report.html").find("class=\"fault-window\""), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(run + "/junit.xml.tmp"));
}

TEST_F(ReportCommandTest, FormatWritesOnlyThatFile) {
  const auto run = runDir("run", readFile(reportDataPath("deviated-leftovers.json")));
  int status = -1;
  const std::string out = chaosctl(run + " --format markdown", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(std::filesystem::exists(run + "/summary.md"));
  EXPECT_FALSE(std::filesystem::exists(run + "/junit.xml"));
  EXPECT_FALSE(std::filesystem::exists(run + "/report.html"));
  chaosctl(run + " --format pdf", &status);
  EXPECT_EQ(status, 2);
}

TEST_F(ReportCommandTest, MissingOrInvalidReportIsBadInputNamingTheFile) {
  int status = -1;
  std::string out = chaosctl(dir_ + "/nowhere", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find(dir_ + "/nowhere"), std::string::npos) << out;

  const auto broken = runDir("broken", "{\"schema\": \"chaosd.report/v1\", ");
  out = chaosctl(broken, &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find(broken + "/report.json: not valid JSON"), std::string::npos) << out;

  const auto other = runDir("other", "{\"schema\": \"someone.else/v3\"}");
  out = chaosctl(other, &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("schema 'someone.else/v3' is not chaosd.report/v1"), std::string::npos) << out;
}

TEST_F(ReportCommandTest, AFileItCannotWriteIsARuntimeErrorAndTheOthersAreStillWritten) {
  const auto run = runDir("run", readFile(reportDataPath("deviated-leftovers.json")));
  // A directory where junit.xml goes: the rename over it fails, as root too.
  std::filesystem::create_directories(run + "/junit.xml/x");
  int status = -1;
  const std::string out = chaosctl(run, &status);
  EXPECT_EQ(status, 5) << out;
  EXPECT_NE(out.find("cannot write " + run + "/junit.xml"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(run + "/summary.md"));
  EXPECT_TRUE(std::filesystem::exists(run + "/report.html"));
  EXPECT_FALSE(std::filesystem::exists(run + "/junit.xml.tmp"));
}

TEST_F(ReportCommandTest, CompareInTextAndJson) {
  const std::string fixture = readFile(reportDataPath("deviated-leftovers.json"));
  auto improved = nlohmann::json::parse(fixture);
  improved["runId"] = "aaaabbbbccccdddd";
  improved["probes"][0]["verdicts"][1]["availability"] = 1.0;
  improved["probes"][0]["verdicts"][1]["passed"] = 40;
  const auto oldRun = runDir("old", fixture);
  const auto newRun = runDir("new", improved.dump());
  int status = -1;
  std::string out = chaosctl(newRun + " --compare " + oldRun, &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("availability of probe checkout-health in the during phase: 75% -> 100%"),
            std::string::npos)
      << out;
  out = chaosctl(newRun + " --compare " + oldRun + " --output json", &status);
  EXPECT_EQ(status, 0) << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["better"], 1);
  EXPECT_EQ(j["old"]["runId"], "3f9c2a1b7d4e5f60");
  EXPECT_FALSE(std::filesystem::exists(newRun + "/junit.xml"));  // compare writes nothing

  improved["experiment"]["metadata"]["name"] = "another";
  const auto another = runDir("another", improved.dump());
  out = chaosctl(another + " --compare " + oldRun, &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("compare runs of the same experiment"), std::string::npos) << out;
}

TEST_F(ReportCommandTest, HelpListsTheOptions) {
  int status = -1;
  const std::string out = chaosctl("--help", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("--compare"), std::string::npos) << out;
  EXPECT_NE(out.find("--format"), std::string::npos) << out;
}

}  // namespace
}  // namespace chaosd
