#include "common/logging.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common::log {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

TEST(LoggingTest, ParsesLevels) {
  EXPECT_THAT(ParseLevel("debug"), IsOkAndHolds(Level::kDebug));
  EXPECT_THAT(ParseLevel("warning"), IsOkAndHolds(Level::kWarn));
  EXPECT_THAT(ParseLevel("loud"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loud")));
}

TEST(LoggingTest, LevelFiltersAndOutputGoesToStderr) {
  const Level saved = GetLevel();
  SetLevel(Level::kWarn);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  ::testing::internal::CaptureStderr();
  SetProcessName("unit");
  Info("hidden {}", 1);
  Warn("shown {} {}", 2, absl::NotFoundError("x"));
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, HasSubstr("[unit] shown 2 NOT_FOUND: x"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("hidden")));
  SetLevel(Level::kOff);
  EXPECT_FALSE(Enabled(Level::kError));
  SetLevel(saved);
}

}  // namespace
}  // namespace petal::common::log
