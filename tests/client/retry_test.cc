#include "client/retry.h"

#include <vector>

#include "common/testing/status_matchers.h"
#include "fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::client {
namespace {

using ::petal::client::testing::FakeClock;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

// A "random" source that replays fixed values.
std::function<double()> Replay(std::vector<double> values) {
  return [values, i = size_t{0}]() mutable { return values[i++ % values.size()]; };
}

RetryPolicy Policy() {
  RetryPolicy p;
  p.initial_backoff = absl::Seconds(1);
  p.multiplier = 2.0;
  p.max_backoff = absl::Seconds(5);
  p.jitter = 0.0;
  p.max_attempts = 0;
  p.max_elapsed = absl::Hours(1);
  return p;
}

TEST(RetryPolicyTest, DefaultsAreValidAndBounded) {
  EXPECT_THAT(RetryPolicy().Validate(), IsOk());
  EXPECT_LT(RetryPolicy().max_elapsed, absl::InfiniteDuration());
}

TEST(RetryPolicyTest, RejectsBadValuesNamingTheField) {
  RetryPolicy p = Policy();
  p.multiplier = 0.5;
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiplier")));
  p = Policy();
  p.jitter = 1.5;
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jitter")));
  p = Policy();
  p.max_backoff = absl::Milliseconds(10);
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_backoff")));
  p = Policy();
  p.max_attempts = -1;
  EXPECT_THAT(p.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_attempts")));
  p = Policy();
  p.max_elapsed = absl::InfiniteDuration();
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unbounded")));
  p.max_attempts = 3;
  EXPECT_THAT(p.Validate(), IsOk());
}

TEST(BackoffTest, GrowsExponentiallyUpToTheCap) {
  FakeClock clock;
  Backoff backoff(Policy(), clock, Replay({0.0}));
  std::vector<absl::Duration> got;
  for (int i = 0; i < 5; ++i) got.push_back(*backoff.NextDelay());
  EXPECT_EQ(got, (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                              absl::Seconds(5), absl::Seconds(5)}));
}

TEST(BackoffTest, JitterRemovesAFractionOfTheDelay) {
  FakeClock clock;
  RetryPolicy p = Policy();
  p.jitter = 0.5;
  Backoff backoff(p, clock, Replay({0.0, 0.5, 0.999999}));
  EXPECT_EQ(*backoff.NextDelay(), absl::Seconds(1));                    // u = 0
  EXPECT_EQ(*backoff.NextDelay(), absl::Milliseconds(1500));            // 2 s * (1 - 0.25)
  EXPECT_NEAR(absl::ToDoubleSeconds(*backoff.NextDelay()), 2.0, 1e-5);  // 4 s * (1 - ~0.5)
}

TEST(BackoffTest, FullJitterIsUniformBelowTheBase) {
  FakeClock clock;
  RetryPolicy p = Policy();
  p.jitter = 1.0;
  Backoff backoff(p, clock, MakeJitterSource(7));
  for (int i = 0; i < 50; ++i) {
    const absl::Duration d = *backoff.NextDelay();
    EXPECT_GT(d, absl::ZeroDuration());
    EXPECT_LE(d, absl::Seconds(5));
  }
}

TEST(BackoffTest, SeededJitterIsReproducible) {
  FakeClock clock;
  RetryPolicy p = Policy();
  p.jitter = 1.0;
  Backoff a(p, clock, MakeJitterSource(42));
  Backoff b(p, clock, MakeJitterSource(42));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*a.NextDelay(), *b.NextDelay());
}

TEST(BackoffTest, GivesUpAfterMaxAttempts) {
  FakeClock clock;
  RetryPolicy p = Policy();
  p.max_attempts = 3;
  Backoff backoff(p, clock, Replay({0.0}));
  EXPECT_TRUE(backoff.NextDelay().has_value());   // attempt 1 failed
  EXPECT_TRUE(backoff.NextDelay().has_value());   // attempt 2 failed
  EXPECT_FALSE(backoff.NextDelay().has_value());  // attempt 3 failed: done
  EXPECT_EQ(backoff.attempts(), 3);
}

TEST(BackoffTest, GivesUpWhenTimeRunsOutAndShortensTheLastWait) {
  FakeClock clock;
  RetryPolicy p = Policy();
  p.max_elapsed = absl::Milliseconds(2500);
  Backoff backoff(p, clock, Replay({0.0}));
  absl::Duration d = *backoff.NextDelay();  // t=0: wait 1 s
  EXPECT_EQ(d, absl::Seconds(1));
  clock.Advance(d);
  d = *backoff.NextDelay();  // t=1: base 2 s, cut to the 1.5 s left
  EXPECT_EQ(d, absl::Milliseconds(1500));
  clock.Advance(d);
  EXPECT_FALSE(backoff.NextDelay().has_value());  // t=2.5: out of time
  EXPECT_EQ(backoff.elapsed(), absl::Milliseconds(2500));
}

TEST(BackoffTest, OnConnectedRestartsTheBudgetButKeepsTheDelayLevel) {
  FakeClock clock;
  RetryPolicy p = Policy();
  p.max_attempts = 2;
  Backoff backoff(p, clock, Replay({0.0}));
  EXPECT_EQ(*backoff.NextDelay(), absl::Seconds(1));
  clock.Advance(absl::Minutes(30));
  backoff.OnConnected();
  EXPECT_EQ(backoff.attempts(), 0);
  EXPECT_EQ(backoff.elapsed(), absl::ZeroDuration());
  EXPECT_EQ(*backoff.NextDelay(), absl::Seconds(2));  // level kept
  EXPECT_FALSE(backoff.NextDelay().has_value());      // budget of 2 spent
}

TEST(BackoffTest, ResetStartsEverythingOver) {
  FakeClock clock;
  Backoff backoff(Policy(), clock, Replay({0.0}));
  backoff.NextDelay();
  backoff.NextDelay();
  backoff.Reset();
  EXPECT_EQ(backoff.attempts(), 0);
  EXPECT_EQ(*backoff.NextDelay(), absl::Seconds(1));
}

TEST(SystemClockTest, SleepEndsAtTheDeadlineOrWhenStopped) {
  StopSignal stop;
  const absl::Time start = absl::Now();
  EXPECT_TRUE(SystemClock().SleepUntil(start + absl::Milliseconds(20), stop));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  stop.Stop();
  const absl::Time before = absl::Now();
  EXPECT_FALSE(SystemClock().SleepUntil(before + absl::Hours(1), stop));
  EXPECT_LT(absl::Now() - before, absl::Seconds(5));
}

}  // namespace
}  // namespace petal::client
