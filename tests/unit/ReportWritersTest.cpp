// The report writers against the fixture report.json: JUnit and Markdown byte for byte with
// their goldens (CHAOSD_UPDATE_GOLDEN=1 rewrites them), JUnit valid against junit.xsd, the
// HTML well-formed with its verdict, one fault window per applied fault and its tables, and
// hostile strings escaped in both.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "reports/HtmlReport.h"
#include "reports/JunitReport.h"
#include "reports/MarkdownReport.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd::report {
namespace {

using chaosd::testing::fixtureReport;
using chaosd::testing::readFile;
using chaosd::testing::reportDataPath;

void expectGolden(const std::string& name, const std::string& actual) {
  const std::string path = reportDataPath(name);
  if (chaosd::testing::updateGoldens()) {
    chaosd::testing::writeFile(path, actual);
    GTEST_SKIP() << "rewrote " << path;
  }
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing; CHAOSD_UPDATE_GOLDEN=1";
  EXPECT_EQ(readFile(path), actual)
      << "differs from " << path << " (CHAOSD_UPDATE_GOLDEN=1 rewrites it after a review)";
}

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

class ReportXmllintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int status = 0;
    chaosd::testing::runCommand("xmllint --version 2>&1", &status);
    ASSERT_EQ(status, 0) << "xmllint is missing: scripts/bootstrap installs libxml2-utils";
    dir_ = chaosd::testing::makeTempDir("chaosd-report-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // xmllint's exit status and messages for `args` on `text` written to a file.
  int xmllint(const std::string& args, const std::string& text, std::string* out = nullptr) {
    const std::string path = dir_ + "/doc";
    chaosd::testing::writeFile(path, text);
    int status = -1;
    std::string o = chaosd::testing::runCommand("xmllint " + args + " " + path + " 2>&1", &status);
    if (out) *out = o;
    return status;
  }
  std::string dir_;
};

TEST(ReportGoldenTest, JunitMatchesGolden) { expectGolden("junit.xml", junitXml(fixtureReport())); }

TEST(ReportGoldenTest, MarkdownMatchesGolden) {
  expectGolden("summary.md", markdownSummary(fixtureReport()));
}

TEST(ReportJunitTest, FailureMessagesSayWhatFailedWhereAndTheFirstFailure) {
  const std::string xml = junitXml(fixtureReport());
  EXPECT_NE(xml.find("probe checkout-health failed in the during phase: availability 0.75 &lt; 1"),
            std::string::npos);
  EXPECT_NE(xml.find("first failure 1.2s after fault db-latency was applied: status 503"),
            std::string::npos);
  EXPECT_NE(xml.find("rollback restart-api failed (exit 1)"), std::string::npos);
  EXPECT_NE(xml.find("the audit found what fault fill-logs (disk.fill on logs) left behind"),
            std::string::npos);
  EXPECT_NE(xml.find("<skipped message=\"probe db-port does not run in the after phase\"/>"),
            std::string::npos);
  EXPECT_NE(xml.find("classname=\"chaosd.checkout-tolerates-db-latency.probe\""),
            std::string::npos);
  EXPECT_NE(xml.find("<property name=\"chaosd.resilienceScore\" value=\"0\"/>"), std::string::npos);
  // 2 probes x 3 phases, 2 faults applied + 2 reverted, 2 rollbacks, the audit.
  EXPECT_EQ(countOf(xml, "<testcase "), 13u);
  EXPECT_EQ(countOf(xml, "<failure "), 4u);
}

TEST_F(ReportXmllintTest, JunitValidatesAgainstTheJunitSchema) {
  std::string out;
  EXPECT_EQ(
      xmllint("--noout --schema " + reportDataPath("junit.xsd"), junitXml(fixtureReport()), &out),
      0)
      << out;
}

TEST_F(ReportXmllintTest, JunitOfASkippedPhaseAndAFailedApplyValidates) {
  auto report = fixtureReport();
  report["outcome"] = "error";
  report["phases"][2]["ran"] = false;
  report["phases"][2]["skipped"] = "aborted";
  report["faults"][1]["state"] = "apply-failed";
  report["faults"][1]["error"] = "fallocate: No space left on device";
  for (auto& p : report["probes"]) {
    auto& v = p["verdicts"];
    v.erase(std::remove_if(v.begin(), v.end(), [](const auto& x) { return x["phase"] == "after"; }),
            v.end());
  }
  const std::string xml = junitXml(report);
  EXPECT_NE(xml.find("<skipped message=\"the after phase did not run: aborted\"/>"),
            std::string::npos);
  EXPECT_NE(xml.find("fault fill-logs (disk.fill on logs) could not be applied: fallocate: No "
                     "space left on device"),
            std::string::npos);
  std::string out;
  EXPECT_EQ(xmllint("--noout --schema " + reportDataPath("junit.xsd"), xml, &out), 0) << out;
}

TEST_F(ReportXmllintTest, HtmlIsWellFormedAndSelfContained) {
  const std::string html = htmlReport(fixtureReport());
  std::string out;
  EXPECT_EQ(xmllint("--noout", html, &out), 0) << out;
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org"));  // only namespace names
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
}

TEST(ReportHtmlTest, HasTheVerdictTimelineAndTables) {
  const auto report = fixtureReport();
  const std::string html = htmlReport(report);
  EXPECT_NE(html.find("Verdict: <strong>leftovers</strong> (exit 4)"), std::string::npos);
  EXPECT_EQ(countOf(html, "<svg "), 1u);
  EXPECT_EQ(countOf(html, "class=\"fault-window\""), report["faults"].size());
  for (const auto& f : report["faults"]) {
    EXPECT_NE(html.find("class=\"fault-window\" data-step=\"" + f["step"].get<std::string>()),
              std::string::npos)
        << f["step"];
  }
  EXPECT_EQ(countOf(html, "class=\"lane\""), 2u);
  EXPECT_EQ(countOf(html, "class=\"sample fail\""), 10u);
  EXPECT_EQ(countOf(html, "class=\"phase-label\""), 3u);
  EXPECT_NE(html.find("<table class=\"faults\">"), std::string::npos);
  EXPECT_NE(html.find("<table class=\"probes\">"), std::string::npos);
  EXPECT_NE(html.find("<table class=\"rollbacks\">"), std::string::npos);
  EXPECT_NE(html.find("<ul class=\"leftovers\">"), std::string::npos);
  EXPECT_NE(html.find("23 of 40 samples were slower, where 3.81 were expected"), std::string::npos);
  EXPECT_NE(html.find("p = 3.1e-12, below alpha = 0.01"), std::string::npos);
  // The fault table's time to detect and to recover come from each fault's impact.
  EXPECT_NE(html.find("checkout-health: 1.2s"), std::string::npos);
  EXPECT_NE(html.find("checkout-health: 900ms"), std::string::npos);
}

TEST(ReportHtmlTest, AFaultNeverAppliedHasNoWindow) {
  auto report = fixtureReport();
  report["faults"][1]["state"] = "skipped";
  report["faults"][1]["appliedOffsetNs"] = nullptr;
  report["faults"][1]["revertedOffsetNs"] = nullptr;
  const std::string html = htmlReport(report);
  EXPECT_EQ(countOf(html, "class=\"fault-window\""), 1u);
}

// A hostile experiment name, probe detail, fault step and rollback detail.
nlohmann::json hostileReport() {
  auto report = fixtureReport();
  const std::string evil = "<script>alert('x')</script> & \"q\" \x01\x1b[31m";
  report["experiment"]["metadata"]["name"] = evil;
  report["reasons"].push_back(evil);
  report["faults"][0]["step"] = evil;
  report["faults"][0]["impact"][0]["detail"] = evil;
  report["probes"][0]["verdicts"][1]["firstFailureDetail"] = evil;
  report["probes"][0]["samples"][26]["detail"] = evil;
  report["rollbacks"][1]["detail"] = evil;
  return report;
}

void expectNoRawHostileText(const std::string& out) {
  EXPECT_EQ(out.find("<script"), std::string::npos);
  EXPECT_EQ(out.find('\x01'), std::string::npos);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find("'x'"), std::string::npos);
  EXPECT_EQ(out.find("\"q\""), std::string::npos);
  EXPECT_EQ(out.find(" & "), std::string::npos);
}

TEST_F(ReportXmllintTest, HostileStringsAreEscapedInHtml) {
  const std::string html = htmlReport(hostileReport());
  expectNoRawHostileText(html);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot; "
                      "\xEF\xBF\xBD\xEF\xBF\xBD[31m"),
            std::string::npos);
  std::string out;
  EXPECT_EQ(xmllint("--noout", html, &out), 0) << out;
}

TEST_F(ReportXmllintTest, HostileStringsAreEscapedInJunit) {
  const std::string xml = junitXml(hostileReport());
  expectNoRawHostileText(xml);
  EXPECT_NE(xml.find("<testsuite name=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                     "&quot;q&quot; \xEF\xBF\xBD\xEF\xBF\xBD[31m\""),
            std::string::npos);
  std::string out;
  EXPECT_EQ(xmllint("--noout --schema " + reportDataPath("junit.xsd"), xml, &out), 0) << out;
}

TEST(ReportMarkdownTest, HostileStringsAreEscaped) {
  const std::string md = markdownSummary(hostileReport());
  EXPECT_EQ(md.find("<script"), std::string::npos);
  EXPECT_EQ(md.find('\x01'), std::string::npos);
  EXPECT_NE(md.find("&lt;script&gt;"), std::string::npos);
}

TEST(ReportMarkdownTest, TablesHaveOneRowPerFaultAndProbe) {
  const std::string md = markdownSummary(fixtureReport());
  EXPECT_NE(md.find("**Verdict: leftovers** (exit 4), resilience score **0/100** (something was "
                    "left behind)"),
            std::string::npos);
  EXPECT_NE(md.find("| db-latency | network.delay | app-net | reverted | checkout-health 1.2s | "
                    "checkout-health 900ms |"),
            std::string::npos);
  EXPECT_NE(md.find("| checkout-health | 100%, p95 39.9ms | **failed** 75%, p95 1s |"),
            std::string::npos);
}

}  // namespace
}  // namespace chaosd::report
