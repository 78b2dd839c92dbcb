// RunAsTest: the helper that runs a built program as another user works wherever the build
// tree lies, even under a folder that user cannot enter (/root is 0700 on a fresh Debian; CI's
// clone is world-readable, so only this test shows the difference there).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/support/DaemonProcess.h"
#include "tests/support/RunAs.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using chaosd::testing::runAs;
using chaosd::testing::TempDir;

constexpr uid_t kNobody = 65534;

TEST(RunAsTest, RunsAProgramThatLiesUnderAFolderTheUserCannotEnter) {
  if (::geteuid() != 0) GTEST_SKIP() << "root tier: changes users";
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  // A build tree under a 0700 folder, as under /root on a fresh Debian.
  const std::string closed = tmp.path() + "/home-0700";
  fs::create_directories(closed + "/build");
  ASSERT_EQ(::chmod(closed.c_str(), 0700), 0);
  const std::string program = closed + "/build/chaosctl";
  fs::copy_file(CHAOSCTL_PATH, program);

  // The folder really keeps nobody out: exec'd straight from there, as nobody, it fails.
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      ::_exit(chaosd::testing::kRunAsSetuidFailed);
    }
    ::execl(program.c_str(), "chaosctl", "--version", static_cast<char*>(nullptr));
    ::_exit(chaosd::testing::kRunAsExecFailed);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), chaosd::testing::kRunAsExecFailed)
      << "nobody could exec a program under a 0700 folder: this test proves nothing here";

  // Through the helper it runs, as nobody.
  const auto r = runAs(kNobody, kNobody, program, {"--version"});
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("chaosctl ", 0), 0u) << r.output;
  // It leaves no scratch copy behind.
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path())) {
    EXPECT_EQ(e.path().filename().string().rfind("chaosd-runas-", 0), std::string::npos)
        << e.path();
  }
}

}  // namespace
}  // namespace chaosd
