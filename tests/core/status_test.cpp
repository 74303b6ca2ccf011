#include "core/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace embd {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("x must be positive, got " + std::to_string(x));
  return x;
}

Status twice(int x, int* out) {
  EMBD_ASSIGN_OR_RETURN(int v, parse_positive(x));
  *out = 2 * v;
  return ok_status();
}

TEST(Status, ResultCarriesValueOrError) {
  int out = 0;
  EXPECT_TRUE(twice(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = twice(-1, &out);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "InvalidArgument: x must be positive, got -1");
  EXPECT_EQ(s.with_context("request 3").message(), "request 3: x must be positive, got -1");
}

TEST(Status, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(Status, ResultOfErrorAbortsOnValue) {
  Result<int> r = invalid_argument("nope");
  EXPECT_DEATH((void)r.value(), "");
}

}  // namespace
}  // namespace embd
