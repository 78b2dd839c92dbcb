// report.html rendered by headless Chromium: the page draws (the PNG is far larger than a
// blank page's rendered the same way), with no network and no script. Skips when chromium is
// not installed (scripts/bootstrap installs it).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>

#include "reports/HtmlReport.h"
#include "tests/support/ReportFixtures.h"

namespace chaosd {
namespace {

using chaosd::testing::runCommand;

struct Png {
  uintmax_t bytes = 0;
  uint32_t width = 0;
  uint32_t height = 0;
};

Png readPng(const std::string& path) {
  Png png;
  const std::string data = chaosd::testing::readFile(path);
  if (data.size() < 24 || data.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return png;
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(data[at + i]);
    return v;
  };
  png.bytes = data.size();
  png.width = be32(16);  // IHDR follows the signature and the chunk's length and type
  png.height = be32(20);
  return png;
}

class ReportRenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int status = -1;
    runCommand("command -v chromium >/dev/null 2>&1", &status);
    if (status != 0) GTEST_SKIP() << "chromium is not installed (scripts/bootstrap installs it)";
    dir_ = chaosd::testing::makeTempDir("chaosd-render");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // Renders file `html` to a PNG as the CI image would; a fresh profile each time.
  Png render(const std::string& html, const std::string& name) {
    const std::string page = dir_ + "/" + name + ".html";
    const std::string png = dir_ + "/" + name + ".png";
    const std::string profile = dir_ + "/profile-" + name;
    chaosd::testing::writeFile(page, html);
    int status = -1;
    const std::string out = runCommand(
        "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--user-data-dir=" +
            profile + " --screenshot=" + png + " --window-size=1280,2000 file://" + page + " 2>&1",
        &status);
    EXPECT_EQ(status, 0) << out;
    return readPng(png);
  }
  std::string dir_;
};

TEST_F(ReportRenderTest, ReportHtmlRendersToANonBlankPage) {
  const Png blank =
      render("<!DOCTYPE html><html><head><title>x</title></head><body></body></html>", "blank");
  const Png report = render(report::htmlReport(chaosd::testing::fixtureReport()), "report");
  ASSERT_GT(blank.bytes, 0u) << "chromium wrote no PNG for the blank page";
  ASSERT_GT(report.bytes, 0u) << "chromium wrote no PNG for report.html";
  EXPECT_EQ(report.width, 1280u);
  EXPECT_EQ(report.height, 2000u);
  // A blank 1280x2000 page compresses to a few KB; text, tables and the timeline's dots do
  // not (about 280 KB here).
  EXPECT_GT(report.bytes, 10 * blank.bytes)
      << "report " << report.bytes << " bytes, blank " << blank.bytes << " bytes";
  EXPECT_GT(report.bytes, 50'000u);
}

}  // namespace
}  // namespace chaosd
