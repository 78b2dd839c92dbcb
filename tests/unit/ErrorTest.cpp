#include <gtest/gtest.h>

#include <cerrno>

#include "chaosd/base/Result.h"

namespace chaosd {
namespace {

Result<int> half(int v) {
  if (v % 2 != 0) return Error(ErrorCode::kInvalid, "odd value " + std::to_string(v));
  return v / 2;
}

Result<int> quarter(int v) {
  auto h = half(v);
  if (!h) return std::move(h).error().withContext("while quartering");
  return half(*h);
}

TEST(ResultTest, CarriesValueOrError) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(r.error().describe(), "odd value 3");
  auto r2 = quarter(5);
  EXPECT_EQ(r2.error().describe(), "while quartering: odd value 5");
}

TEST(ResultTest, ErrnoMapsToCode) {
  EXPECT_EQ(Error::fromErrno("open", EACCES).code(), ErrorCode::kPermission);
  EXPECT_EQ(Error::fromErrno("kill", ESRCH).code(), ErrorCode::kNotFound);
  EXPECT_EQ(Error::fromErrno("open /x", ENOENT).message(), "open /x: No such file or directory");
}

}  // namespace
}  // namespace chaosd
