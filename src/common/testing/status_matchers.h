// File: testing/status_matchers.h
//
// gMock matchers for absl::Status and absl::StatusOr<T> (Debian's Abseil has no
// status_matchers.h). Prefer asserting the specific error:
//
//   EXPECT_THAT(DecodeNpy(bytes), StatusIs(absl::StatusCode::kInvalidArgument,
//                                          HasSubstr("bad magic")));
//   EXPECT_THAT(ParseLevel("info"), IsOkAndHolds(Level::kInfo));
//   PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, DecodeNpy(bytes));
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace internal

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& s = ::petal::testing::internal::GetStatus(arg);
  if (!s.ok()) *result_listener << "whose status is " << s.ToString();
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = ::petal::testing::internal::GetStatus(arg);
  *result_listener << "whose status is " << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code) + " and a matching message") {
  const absl::Status& s = ::petal::testing::internal::GetStatus(arg);
  *result_listener << "whose status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace petal::testing

#define PETAL_EXPECT_OK(expr) EXPECT_THAT((expr), ::petal::testing::IsOk())
#define PETAL_ASSERT_OK(expr) ASSERT_THAT((expr), ::petal::testing::IsOk())

#define PETAL_TESTING_CONCAT_INNER_(a, b) a##b
#define PETAL_TESTING_CONCAT_(a, b) PETAL_TESTING_CONCAT_INNER_(a, b)
// Asserts `rexpr` (a StatusOr) is OK and moves its value into `lhs`.
#define PETAL_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  PETAL_ASSERT_OK_AND_ASSIGN_IMPL_(PETAL_TESTING_CONCAT_(petal_test_or_, __LINE__), lhs, rexpr)
#define PETAL_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr)      \
  auto statusor = (rexpr);                                          \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString();       \
  lhs = std::move(statusor).value()
